"""Save and load a ``ModelBundle`` as a Hugging Face model directory."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import torch

from .loading import INFO_FILENAME, ModelBundle, load_model


def save_bundle(bundle: ModelBundle, path: str | Path, **save_pretrained_kwargs) -> None:
    """Write model, tokenizer and ``info`` (``ilf_model_info.json``) into directory ``path``.

    ``save_pretrained_kwargs`` go to ``model.save_pretrained`` (e.g. ``max_shard_size``).

    Atomic: everything is written to a temporary sibling directory that is renamed to
    ``path`` only once complete, so a failure leaves no half-written model. An existing
    ``path`` is replaced.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
    try:
        bundle.model.save_pretrained(tmp, **save_pretrained_kwargs)
        bundle.tokenizer.save_pretrained(tmp)
        info = {
            **bundle.info,
            "dtype": str(next(bundle.model.parameters()).dtype).removeprefix("torch."),
        }
        (tmp / INFO_FILENAME).write_text(json.dumps(info, indent=2, sort_keys=True, default=str))
        if path.exists():
            # Swap: rename the old directory aside first (rename onto a non-empty
            # directory fails), then move the new one in, then delete the old one.
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.old-", dir=path.parent))
            old.rmdir()
            path.rename(old)
            tmp.rename(path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def load_bundle(
    path: str | Path, *, device: str = "auto", dtype: str | torch.dtype = "auto"
) -> ModelBundle:
    """Load a directory written by ``save_bundle`` (or any HF model directory)."""
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"No model directory at {path}")
    return load_model(str(path), device=device, dtype=dtype)

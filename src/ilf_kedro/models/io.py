"""Save and load a ``ModelBundle`` as a Hugging Face model directory."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch

from ilf_kedro.parameters import Model

from .loading import INFO_FILENAME, ModelBundle, load_model, prepare_tokenizer

ADAPTER_CONFIG = "adapter_config.json"  # PEFT's: the directory holds an adapter only
# The ``model`` parameters' device and dtype defaults are load_bundle's too (one source).
_DEFAULTS = Model()


def save_bundle(bundle: ModelBundle, path: str | Path, **save_pretrained_kwargs) -> None:
    """Write model, tokenizer and ``info`` (``ilf_model_info.json``) into directory ``path``.

    A PEFT model (``finetune.lora.save: adapter``) is written as its adapter
    (``adapter_config.json`` + weights) with ``info["adapter_base"]``, the reference
    ``load_bundle`` loads the base model from.

    ``save_pretrained_kwargs`` go to ``model.save_pretrained`` (e.g. ``max_shard_size``).

    Atomic: everything is written to a temporary sibling directory that is renamed to
    ``path`` only once complete, so a failure leaves no half-written model. An existing
    ``path`` is replaced.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if _is_peft(bundle.model) and "adapter_base" not in bundle.info:
        raise ValueError("A LoRA adapter needs info['adapter_base'] to be loaded again")
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
    try:
        bundle.model.save_pretrained(tmp, **save_pretrained_kwargs)
        bundle.tokenizer.save_pretrained(tmp)
        # The weights written: a given ``state_dict`` (a sharded model's, gathered), else
        # the model's own.
        state = save_pretrained_kwargs.get("state_dict")
        weights = iter(state.values()) if state else bundle.model.parameters()
        info = {**bundle.info, "dtype": str(next(weights).dtype).removeprefix("torch.")}
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
    path: str | Path,
    *,
    device: str = _DEFAULTS.device,
    dtype: str | torch.dtype = _DEFAULTS.dtype,
    merge_adapter: bool = True,
) -> ModelBundle:
    """Load a directory written by ``save_bundle`` (or any HF model directory).

    An adapter directory loads its base model from ``info["adapter_base"]`` and merges the
    adapter into it, so sampling runs at the base model's speed (``merge_adapter=False``:
    the PEFT model, as ``finetune`` returns it).
    """
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"No model directory at {path}")
    if (path / ADAPTER_CONFIG).is_file():
        return _load_adapter(path, device=device, dtype=dtype, merge=merge_adapter)
    return load_model(str(path), device=device, dtype=dtype)


def base_reference(bundle: ModelBundle) -> dict[str, Any]:
    """How to load ``bundle``'s weights again: its directory or hub id (``tiny-random``
    with its config and seed). Raises ``ValueError`` for weights only in memory."""
    info = bundle.info
    spec = info.get("loaded_from") or info.get("source")
    if info.get("adapter_base"):
        spec = None  # itself base + adapter: no single directory holds its weights
    if info.get("training_examples") and not info.get("loaded_from"):
        spec = None  # fine-tuned in this process: no file holds these weights
    if not spec:
        raise ValueError(
            "The base model's weights exist only in memory, so a LoRA adapter cannot refer "
            "to them; use finetune.lora.save: merged."
        )
    reference = {"spec": str(spec)}
    if spec == "tiny-random":  # load_model's keywords; one absent gets load_model's default
        reference.update({key: info[key] for key in ("tiny_config", "seed") if key in info})
    return reference


def _is_peft(model) -> bool:
    return type(model).__module__.startswith("peft.")


def _load_adapter(path: Path, *, device, dtype, merge: bool) -> ModelBundle:
    from peft import PeftModel
    from transformers import AutoTokenizer

    info = json.loads((path / INFO_FILENAME).read_text())
    reference = info.get("adapter_base")
    if not reference:
        raise ValueError(f"{path / INFO_FILENAME} has no adapter_base: cannot find the base")
    base = load_model(**reference, device=device, dtype=dtype)
    model = PeftModel.from_pretrained(base.model, str(path))
    if merge:
        model = model.merge_and_unload()
    model.eval()
    tokenizer = AutoTokenizer.from_pretrained(str(path))
    prepare_tokenizer(tokenizer)
    info.update(loaded_from=str(path), device=base.info["device"], dtype=base.info["dtype"])
    return ModelBundle(model=model, tokenizer=tokenizer, info=info)

"""Sampling output written in shards as it goes, so a killed run resumes where it stopped.

A sampling call's shards live in ``<resume_dir>/<key>/``, where the key hashes everything
its output depends on: the sampling parameters, the prompt rows, the model (a fingerprint
of its weights) and the tokenizer. A changed parameter, prompt or model therefore gets a
new directory and never reads another configuration's samples. Each generation batch is
one Parquet file, written to a temporary name and renamed when complete, so a SIGKILL
leaves only whole shards behind. Batches draw from independent seeded streams, so a
resumed run's output is identical to an uninterrupted one.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from ilf_kedro.infra.atomic import atomic_path, write_text_atomic

logger = logging.getLogger(__name__)

MANIFEST = "manifest.json"
# Values of each weight tensor read for the fingerprint: evenly spaced, exact bytes.
_FINGERPRINT_VALUES = 64

# Config entries that saving or training rewrite without changing what the model computes
# (the weights' dtype is hashed with the tensors).
_VOLATILE_CONFIG = {
    "architectures",
    "dtype",
    "torch_dtype",
    "_name_or_path",
    "transformers_version",
    "_commit_hash",
    "use_cache",
}
# (completion, finish_reason, num_new_tokens) of one (prompt row, sample) item
Result = tuple[str, str, int]


def model_fingerprint(model, tokenizer) -> str:
    """A hash of the model's architecture, weights (names, shapes, dtypes and evenly
    spaced values of every tensor) and tokenizer; cheap even for billions of weights."""
    digest = hashlib.sha256()
    digest.update(type(model).__name__.encode())
    config = {k: v for k, v in model.config.to_dict().items() if k not in _VOLATILE_CONFIG}
    digest.update(json.dumps(config, sort_keys=True, default=str).encode())
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            flat = tensor.detach().reshape(-1)
            step = max(1, flat.numel() // _FINGERPRINT_VALUES)
            values = flat[::step][:_FINGERPRINT_VALUES].to("cpu", torch.float32)
            digest.update(f"{name}{tuple(tensor.shape)}{tensor.dtype}".encode())
            digest.update(values.numpy().tobytes())
    digest.update(json.dumps(tokenizer.get_vocab(), sort_keys=True).encode())
    return digest.hexdigest()


def sampling_key(
    params: Mapping[str, Any], prompts: pd.DataFrame, fingerprint: str
) -> tuple[str, dict]:
    """The shard directory name for these parameters, prompts and model, and the manifest
    recorded in it."""
    prompt_hash = hashlib.sha256(
        prompts.reset_index(drop=True).to_json(orient="split", default_handler=str).encode()
    ).hexdigest()
    manifest = {
        "params": dict(params),
        "prompts_sha256": prompt_hash,
        "n_prompts": len(prompts),
        "model_fingerprint": fingerprint,
    }
    blob = json.dumps(manifest, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:20], manifest


class ShardStore:
    """The finished batches of one sampling configuration under ``directory``."""

    def __init__(self, directory: str | Path, manifest: Mapping[str, Any]):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / MANIFEST
        if not path.exists():
            write_text_atomic(path, json.dumps(manifest, indent=2, sort_keys=True, default=str))

    @classmethod
    def for_sampling(
        cls, resume_dir: str | Path, params: Mapping[str, Any], prompts: pd.DataFrame, model, tok
    ) -> ShardStore:
        key, manifest = sampling_key(params, prompts, model_fingerprint(model, tok))
        return cls(Path(resume_dir) / key, manifest)

    def _path(self, batch: int) -> Path:
        return self.directory / f"batch-{batch:06d}.parquet"

    def finished(self) -> set[int]:
        """Indices of the batches already written."""
        return {int(p.stem.split("-")[1]) for p in self.directory.glob("batch-*.parquet")}

    def read(self, batch: int) -> dict[tuple[int, int], Result]:
        frame = pd.read_parquet(self._path(batch))
        return {
            (int(r.row), int(r.sample)): (r.completion, r.finish_reason, int(r.num_new_tokens))
            for r in frame.itertuples(index=False)
        }

    def write(self, batch: int, results: Mapping[tuple[int, int], Result]) -> None:
        """Write one batch's results; atomic (temporary file renamed into place)."""
        frame = pd.DataFrame(
            [(row, k, *result) for (row, k), result in results.items()],
            columns=["row", "sample", "completion", "finish_reason", "num_new_tokens"],
        )
        with atomic_path(self._path(batch)) as tmp:
            frame.to_parquet(tmp, index=False)

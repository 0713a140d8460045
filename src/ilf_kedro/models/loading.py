"""Load causal language models: a Hugging Face id / local directory, or ``tiny-random``."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ilf_kedro.parameters import Model

logger = logging.getLogger(__name__)

# The ``model`` parameters' defaults are load_model's (one source: the schema).
_DEFAULTS = Model()

TINY_RANDOM = "tiny-random"
INFO_FILENAME = "ilf_model_info.json"

_DTYPES = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
    "float16": torch.float16,
    "fp16": torch.float16,
}


@dataclass
class ModelBundle:
    """A causal LM, its tokenizer and JSON-serialisable metadata.

    ``info`` records at least ``source`` (HF id, directory or ``"tiny-random"``),
    ``random_weights``, ``device`` and ``dtype``; after ``finetune`` also
    ``training_examples`` (and ``untrained_reason`` when nothing was trained).
    """

    model: Any
    tokenizer: Any
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def device(self) -> torch.device:
        """Device of the model's parameters."""
        return next(self.model.parameters()).device


def context_length(model) -> int | None:
    """The longest sequence ``model`` takes (from its config), or None if it says nothing."""
    config = getattr(model, "config", None)
    for name in ("n_positions", "max_position_embeddings", "n_ctx"):
        value = getattr(config, name, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


def resolve_device(device: str) -> str:
    """``"auto"`` -> ``"cuda"`` when available, else ``"cpu"``; anything else unchanged."""
    if device in (None, "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    return str(device)


def resolve_dtype(dtype: str | torch.dtype, device: str = "cpu") -> torch.dtype:
    """``"auto"`` -> bfloat16 on a bf16-capable CUDA device, else float32.

    Named dtypes (``"float32"``, ``"bf16"``, ...) and ``torch.dtype`` pass through.
    """
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype in (None, "auto"):
        if str(device).startswith("cuda") and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    try:
        return _DTYPES[str(dtype).lower()]
    except KeyError:
        raise ValueError(f"Unknown dtype {dtype!r}; use auto or one of {sorted(_DTYPES)}") from None


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def warn_if_random(info: dict[str, Any]) -> None:
    """Log a WARNING when the bundle's weights are random (or trained from random)."""
    if not info.get("random_weights"):
        return
    trained = info.get("training_examples") or 0
    state = (
        f"weights trained from RANDOM initialisation on only {trained} example(s)"
        if trained
        else "RANDOM, UNTRAINED weights"
    )
    logger.warning(
        "Model %r has %s: it is not a pretrained code model, so its samples and every "
        "metric computed from them say nothing about ILF. Set base_model to a Hugging Face "
        "id or a local model directory for real results.",
        info.get("source"),
        state,
    )


def prepare_tokenizer(tokenizer) -> None:
    # Causal LMs like CodeGen ship without a pad token; padding positions are masked anyway.
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"


def load_model(
    spec: str,
    *,
    device: str = _DEFAULTS.device,
    dtype: str | torch.dtype = _DEFAULTS.dtype,
    tiny_config: dict[str, Any] | None = None,
    seed: int = _DEFAULTS.seed,
) -> ModelBundle:
    """Load a causal LM and its tokenizer.

    Args:
        spec: A Hugging Face model id, a local directory written by ``save_pretrained``
            (e.g. by ``HFModelDataset``), or ``"tiny-random"`` for a tiny architecture with
            random weights and a download-free tokenizer.
        device: ``"auto"`` (CUDA if available else CPU), ``"cpu"``, ``"cuda"``, ``"cuda:1"``...
        dtype: ``"auto"`` (bf16 on CUDA, float32 on CPU) or a dtype name.
        tiny_config: Overrides of ``tiny.TINY_DEFAULTS`` (only for ``tiny-random``).
        seed: Seeds the random weights of ``tiny-random`` (same seed, same weights).

    Returns:
        A ``ModelBundle`` in eval mode on the chosen device and dtype.

    Raises:
        OSError: The model cannot be found locally or downloaded (e.g. offline); the
            message names ``spec``.
    """
    device = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, device)
    if spec == TINY_RANDOM:
        from .tiny import build_tiny_model, build_tiny_tokenizer

        cfg = dict(tiny_config or {})
        tokenizer = build_tiny_tokenizer(cfg.get("vocab_size", 1024))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model, resolved = build_tiny_model(tokenizer, cfg)
        info = {
            "source": TINY_RANDOM,
            "random_weights": True,
            "tiny_config": resolved,
            "seed": seed,
        }
    else:
        model, tokenizer, info = _load_pretrained(spec, torch_dtype)
    prepare_tokenizer(tokenizer)
    model.to(device=device, dtype=torch_dtype)
    model.eval()
    info.update(device=device, dtype=_dtype_name(torch_dtype))
    warn_if_random(info)
    return ModelBundle(model=model, tokenizer=tokenizer, info=info)


def declares_random_weights(spec: str) -> bool:
    """Whether ``spec`` has random weights, without loading it: ``tiny-random``, or a
    directory we saved whose ``ilf_model_info.json`` says so."""
    if spec == TINY_RANDOM:
        return True
    info_file = Path(spec) / INFO_FILENAME
    if not info_file.is_file():
        return False
    return bool(json.loads(info_file.read_text()).get("random_weights"))


def _load_pretrained(spec: str, torch_dtype: torch.dtype):
    """``from_pretrained`` for model and tokenizer; restores our saved info if present."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = Path(spec)
    is_dir = path.is_dir()
    try:
        tokenizer = AutoTokenizer.from_pretrained(spec)
        model = AutoModelForCausalLM.from_pretrained(spec, dtype=torch_dtype)
    except (OSError, ValueError) as exc:
        where = "local directory" if is_dir else "Hugging Face model id"
        raise OSError(
            f"Could not load model {spec!r} (as a {where}): {exc}. If you are offline, "
            "download it first or set base_model=tiny-random for the offline default."
        ) from exc
    info: dict[str, Any] = {"source": spec, "random_weights": False}
    info_file = path / INFO_FILENAME
    if is_dir and info_file.is_file():
        # A directory we saved: keep its history (random weights, training set size...).
        info = {**json.loads(info_file.read_text()), "loaded_from": spec}
    return model, tokenizer, info

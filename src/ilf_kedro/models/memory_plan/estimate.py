"""What a model's training and sampling state takes in memory, from its configuration
alone (no weights): its shape (parameters counted on PyTorch's ``meta`` device, LoRA
adapters, the largest decoder block), and the bytes of each part of a sampling or
fine-tune stage. ``memory_plan`` compares them with the devices.

Offline, the CodeGen checkpoints' published hyperparameters stand in for their
``config.json``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, get_args

import torch

from ... import parameters

logger = logging.getLogger(__name__)

GIB = 1024**3
# The ``finetune`` parameters' strategies and defaults are the estimator's (one source).
_FINETUNE = parameters.Finetune()
STRATEGIES = get_args(parameters.Finetune.model_fields["strategy"].annotation)
_BYTES = {
    torch.float32: 4,
    torch.bfloat16: 2,
    torch.float16: 2,
}

# Published hyperparameters of the CodeGen checkpoints (their config.json), used when the
# hub cannot be reached, so the paper's plan works offline.
_CODEGEN = {
    "350M": {"n_layer": 20, "n_embd": 1024, "n_head": 16, "rotary_dim": 32},
    "2B": {"n_layer": 32, "n_embd": 2560, "n_head": 32, "rotary_dim": 64},
    "6B": {"n_layer": 33, "n_embd": 4096, "n_head": 16, "rotary_dim": 64},
    "16B": {"n_layer": 34, "n_embd": 6144, "n_head": 24, "rotary_dim": 64},
}
KNOWN_CONFIGS: dict[str, dict[str, Any]] = {
    f"Salesforce/codegen-{size}-{data}": {
        "model_type": "codegen",
        "vocab_size": 51200,
        "n_positions": 2048,
        "n_ctx": 2048,
        **shape,
    }
    for size, shape in _CODEGEN.items()
    for data in ("mono", "multi", "nl")
}


@dataclass(frozen=True)
class ModelShape:
    """What the plan needs to know about a causal LM (from its config, no weights)."""

    name: str
    n_params: int
    n_layer: int
    hidden: int
    n_head: int
    kv_dim: int  # width of one token's keys (= values) in one layer
    vocab: int
    context: int
    largest_block_params: int  # parameters of the biggest decoder layer (FSDP's unit)
    eager_attention: bool  # attention scores materialised (no SDPA/flash kernel)
    # (module name, in_features, out_features) of every Linear but the output embedding
    linear_layers: tuple[tuple[str, int, int], ...] = field(repr=False)

    def lora_params(
        self, r: int, target_modules: str | Sequence[str] = _FINETUNE.lora.target_modules
    ) -> int:
        """Trainable parameters of a LoRA adapter of rank ``r`` on ``target_modules``
        (PEFT's matching: ``"all-linear"`` or module-name suffixes)."""
        return sum(r * (n_in + n_out) for name, n_in, n_out in self._targets(target_modules))

    def _targets(self, target_modules):
        if target_modules in (None, "all-linear"):
            return self.linear_layers
        if isinstance(target_modules, str):
            target_modules = [target_modules]
        return [
            layer
            for layer in self.linear_layers
            if any(layer[0] == t or layer[0].endswith("." + t) for t in target_modules)
        ]


def load_config(spec: str, tiny_config: Mapping[str, Any] | None = None):
    """The transformers config of ``spec`` (``tiny-random``, a local directory or a hub
    id) without loading any weights."""
    import transformers

    from ..loading import TINY_RANDOM

    if spec == TINY_RANDOM:
        from ..tiny import build_tiny_tokenizer, tiny_model_config

        cfg = dict(tiny_config or {})
        tokenizer = build_tiny_tokenizer(cfg.get("vocab_size", 1024))
        return tiny_model_config(tokenizer, cfg)[0]
    try:
        return transformers.AutoConfig.from_pretrained(spec)
    except (OSError, ValueError) as exc:
        known = KNOWN_CONFIGS.get(spec)
        if known is None:
            raise OSError(
                f"Cannot read the configuration of model {spec!r} for the memory plan: {exc}. "
                "Point base_model at a local directory with a config.json, or download it."
            ) from exc
        logger.info("Memory plan: %r from its published hyperparameters (offline)", spec)
        return transformers.CodeGenConfig(**{k: v for k, v in known.items() if k != "model_type"})


def model_shape(config, name: str = "") -> ModelShape:
    """Count parameters and layer sizes of ``config``'s model, built on the meta device."""
    from transformers import AutoModelForCausalLM

    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    output = model.get_output_embeddings()
    linears = tuple(
        (n, m.in_features, m.out_features)
        for n, m in model.named_modules()
        if isinstance(m, torch.nn.Linear) and m is not output
    )
    blocks = [m for m in model.modules() if isinstance(m, torch.nn.ModuleList)]
    layers = max(blocks, key=len) if blocks else [model]
    hidden = _first(config, "hidden_size", "n_embd", "d_model")
    n_head = _first(config, "num_attention_heads", "n_head")
    kv_heads = getattr(config, "num_key_value_heads", None) or n_head
    head_dim = getattr(config, "head_dim", None) or hidden // n_head
    return ModelShape(
        name=name or getattr(config, "_name_or_path", "") or config.model_type,
        n_params=sum(p.numel() for p in model.parameters()),
        n_layer=_first(config, "num_hidden_layers", "n_layer"),
        hidden=hidden,
        n_head=n_head,
        kv_dim=kv_heads * head_dim,
        vocab=config.vocab_size,
        context=_first(config, "n_positions", "max_position_embeddings", "n_ctx"),
        largest_block_params=max(sum(p.numel() for p in b.parameters()) for b in layers),
        eager_attention=model.config._attn_implementation == "eager",
        linear_layers=linears,
    )


def _first(config, *names):
    for name in names:
        value = getattr(config, name, None)
        if value:
            return int(value)
    raise ValueError(f"config {type(config).__name__} has none of {names}")


def _bytes(dtype) -> int:
    from ..loading import resolve_dtype

    return _BYTES[resolve_dtype(dtype)]


def sampling_memory(
    shape: ModelShape, *, batch_size: int, max_new_tokens: int, max_prompt_tokens: int, dtype
) -> dict[str, float]:
    """Bytes on the device while sampling one batch, by component."""
    width = _bytes(dtype)
    seq = min(shape.context, max_prompt_tokens + max_new_tokens)
    prompt = min(max_prompt_tokens, seq)
    parts = {
        "weights": shape.n_params * width,
        "kv_cache": 2 * shape.n_layer * batch_size * seq * shape.kv_dim * width,
        # CodeGen computes attention in float32: one layer's scores at a time.
        "attention_scores": (
            batch_size * shape.n_head * prompt * prompt * 4 if shape.eager_attention else 0
        ),
        # Prefill: the MLP's 4h-wide activation of every prompt token, one layer at a time.
        "activations": batch_size * prompt * 4 * shape.hidden * width,
        # Next-token logits in float32, and the sampler's processed copy.
        "logits": 2 * batch_size * shape.vocab * 4,
    }
    return parts


def finetune_memory(
    shape: ModelShape,
    *,
    strategy: str = _FINETUNE.strategy,
    num_processes: int = _FINETUNE.num_processes,
    distributed: str = "ddp",
    per_device_batch_size: int = _FINETUNE.per_device_batch_size,
    max_seq_length: int = _FINETUNE.max_seq_length,
    gradient_checkpointing: bool = True,
    bf16: bool = True,
    master_dtype: str = _FINETUNE.master_dtype,
    dtype="bfloat16",
    lora: Mapping[str, Any] | None = None,
) -> dict[str, float]:
    """Bytes on ONE device (one process) while fine-tuning, by component.

    ``full``: the trained copy in ``master_dtype`` with its gradients and AdamW moments
    (all sharded over the processes with ``fsdp``, plus one gathered layer); the base
    model is not on the device meanwhile. ``lora``: the frozen weights in ``dtype`` and the
    adapter's parameters, gradients and moments in float32. A setting left out is the
    ``finetune`` parameters' default, as a run on CUDA resolves it (checkpointing and bf16
    on, ``ddp``, weights in bfloat16).
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"finetune.strategy must be one of {STRATEGIES}, not {strategy!r}")
    if distributed not in ("ddp", "fsdp"):
        raise ValueError(f"distributed must be 'ddp' or 'fsdp' here, not {distributed!r}")
    b, s, h, n = per_device_batch_size, max_seq_length, shape.hidden, num_processes
    compute = 2 if bf16 else 4
    parts: dict[str, float] = {}
    if strategy == "full":
        master = _bytes(master_dtype)
        shard = n if distributed == "fsdp" else 1
        state = shape.n_params * master / shard
        parts["weights"] = state
        parts["gradients"] = state
        parts["optimizer"] = 2 * state
        if distributed == "fsdp" and n > 1:
            # The gathered current and prefetched layer.
            parts["gathered_layers"] = 2 * shape.largest_block_params * master
        elif n > 1:
            parts["ddp_buckets"] = shape.n_params * master  # gradient all-reduce buckets
        if bf16 and master > 2:
            # Autocast keeps a bf16 copy of every weight used in the forward pass.
            parts["autocast_copies"] = shape.n_params * 2 / shard
    else:
        cfg = parameters.section(parameters.Lora, lora, "finetune.lora")
        trainable = shape.lora_params(cfg.r, cfg.target_modules)
        parts["weights"] = shape.n_params * _bytes(dtype)
        parts["adapter"] = trainable * 4
        parts["gradients"] = trainable * 4
        parts["optimizer"] = 2 * trainable * 4
    # Korthikanti et al. 2022: one layer holds s*b*h*(34 + 5*a*s/h) bytes at 16 bits.
    layer = s * b * h * (34 + 5 * shape.n_head * s / h) * compute / 2
    if gradient_checkpointing:
        parts["activations"] = shape.n_layer * s * b * h * compute + layer
    else:
        parts["activations"] = shape.n_layer * layer
    # Logits, log-softmax and their gradient, in float32.
    parts["logits"] = 3 * b * s * shape.vocab * 4
    return parts

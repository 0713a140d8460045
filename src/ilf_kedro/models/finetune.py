"""One supervised fine-tune for pi_Refine and pi_theta*: prompt -> completion, loss on the
completion (and EOS) only, built on transformers' ``Trainer``."""

from __future__ import annotations

import copy
import logging
import math
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from .loading import ModelBundle

logger = logging.getLogger(__name__)

IGNORE_INDEX = -100  # label value the causal-LM loss ignores


def _encode(tokenizer, prompt: str, completion: str, max_seq_length: int):
    """``encode_example`` plus the number of prompt tokens cut off (for logging)."""
    if tokenizer.eos_token_id is None:
        raise ValueError("the tokenizer has no eos_token; the completion target needs one")
    prompt_ids = list(tokenizer(prompt)["input_ids"])
    target = list(tokenizer(completion, add_special_tokens=False)["input_ids"])
    target.append(tokenizer.eos_token_id)
    # A BOS the tokenizer adds (Llama-style) stays first when the prompt is cut.
    head = []
    bos = tokenizer.bos_token_id
    if prompt_ids and bos is not None and bos != tokenizer.eos_token_id and prompt_ids[0] == bos:
        head, prompt_ids = [bos], prompt_ids[1:]
    room = max_seq_length - len(head) - len(target)
    if room < 0:
        # Even the target alone does not fit: keep its start, drop the prompt entirely.
        cut = len(prompt_ids)
        prompt_ids, target = [], target[: max_seq_length - len(head)]
    else:
        cut = max(0, len(prompt_ids) - room)
        prompt_ids = prompt_ids[cut:]
    prompt_ids = head + prompt_ids
    input_ids = prompt_ids + target
    labels = [IGNORE_INDEX] * len(prompt_ids) + target
    return {
        "input_ids": input_ids,
        "labels": labels,
        "attention_mask": [1] * len(input_ids),
    }, cut


def encode_example(tokenizer, prompt: str, completion: str, max_seq_length: int) -> dict:
    """Tokenise one training pair for completion-only causal-LM loss.

    ``input_ids = prompt tokens + completion tokens + EOS``; ``labels`` are -100 on every
    prompt token and equal ``input_ids`` on every completion token and the EOS.
    Prompt and completion are tokenised separately, like at sampling time, where the
    completion is generated after the prompt's tokens.

    Truncation: when the total exceeds ``max_seq_length``, tokens are cut from the START
    of the prompt (a BOS the tokenizer adds is kept). Callers therefore put the part that
    may be lost first (the refinement prompt starts with the old code). If the completion
    plus EOS alone is longer, the prompt is dropped and the completion keeps its first
    ``max_seq_length`` tokens (no EOS).

    Returns:
        ``{"input_ids", "labels", "attention_mask"}``, lists of ints of equal length.
    """
    return _encode(tokenizer, prompt, completion, max_seq_length)[0]


class _RightPadCollator:
    """Pads a list of encoded examples on the right (labels with -100)."""

    def __init__(self, pad_token_id: int):
        self.pad_token_id = pad_token_id

    def __call__(self, features: list[dict]) -> dict[str, torch.Tensor]:
        width = max(len(f["input_ids"]) for f in features)
        batch = {"input_ids": [], "labels": [], "attention_mask": []}
        for f in features:
            pad = width - len(f["input_ids"])
            batch["input_ids"].append(f["input_ids"] + [self.pad_token_id] * pad)
            batch["labels"].append(f["labels"] + [IGNORE_INDEX] * pad)
            batch["attention_mask"].append(f["attention_mask"] + [0] * pad)
        return {k: torch.tensor(v, dtype=torch.long) for k, v in batch.items()}


def _checkpointing_arg() -> str:
    # transformers 5 renamed gradient_checkpointing (deprecated alias, removed in v6).
    from transformers import TrainingArguments

    fields = TrainingArguments.__dataclass_fields__
    return (
        "activation_checkpointing"
        if "activation_checkpointing" in fields
        else "gradient_checkpointing"
    )


def finetune(
    bundle: ModelBundle,
    pairs: pd.DataFrame,
    *,
    learning_rate: float = 5e-6,
    per_device_batch_size: int = 1,
    gradient_accumulation_steps: int = 32,
    num_epochs: float = 2,
    max_seq_length: int = 1024,
    seed: int = 0,
    output_dir: str | None = None,
    gradient_checkpointing: bool | str = "auto",
    bf16: bool | str = "auto",
    lr_scheduler_type: str = "linear",
    warmup_steps: int = 0,
    weight_decay: float = 0.0,
    master_dtype: str | None = "float32",
    copy_model: bool = True,
    strategy: str = "full",
    lora: dict[str, Any] | None = None,
    num_processes: int = 1,
    distributed: str = "auto",
    progress: bool = True,
    trainer_kwargs: dict[str, Any] | None = None,
) -> ModelBundle:
    """Fine-tune a causal LM on (prompt, completion) pairs; loss on completion + EOS only.

    Args:
        bundle: The model to start from (``load_model``/``HFModelDataset``).
        pairs: Columns ``prompt`` and ``completion``; rows with a missing value are
            dropped. Truncation follows ``encode_example``.
        learning_rate, per_device_batch_size, gradient_accumulation_steps, num_epochs,
            max_seq_length: The paper's hyperparameters (5e-6, 1, 32, 2, 1024).
        seed: Seeds shuffling and dropout (``TrainingArguments.seed``).
        output_dir: Trainer directory; when given, the trained model, tokenizer and info
            are also saved there. ``None``: a temporary directory, nothing kept.
        gradient_checkpointing, bf16: ``"auto"`` turns each on when training on CUDA
            (bf16 autocast if the GPU supports it).
        lr_scheduler_type, warmup_steps, weight_decay: Passed to ``TrainingArguments``.
        master_dtype: Weights are trained in this dtype (float32 master weights; bf16 is
            then autocast) and cast back to the bundle's dtype after. ``None``: as loaded.
        copy_model: Train a deep copy so ``bundle`` stays the base model (a base model in
            memory may be shared by several stages); ``False`` trains in place.
        progress: Show the Trainer's progress bar.
        trainer_kwargs: Extra ``TrainingArguments`` (override everything above).

    Returns:
        A new ``ModelBundle`` in eval mode with ``info`` from ``bundle`` plus
        ``training_examples``, ``prompt_tokens_truncated_examples``, ``train_loss``,
        ``train_steps`` and ``finetune`` (the hyperparameters). With no usable pairs
        nothing is trained: a warning is logged and the base model is returned with
        ``training_examples = 0`` and ``untrained_reason`` set.
    """
    from transformers import Trainer, TrainingArguments

    missing = {"prompt", "completion"} - set(pairs.columns)
    if missing:
        raise ValueError(f"pairs is missing column(s) {sorted(missing)}")
    usable = pairs.dropna(subset=["prompt", "completion"])
    if len(usable) < len(pairs):
        logger.warning(
            "Dropped %d pair(s) with a missing prompt/completion", len(pairs) - len(usable)
        )
    hyper = {
        "learning_rate": learning_rate,
        "per_device_batch_size": per_device_batch_size,
        "gradient_accumulation_steps": gradient_accumulation_steps,
        "num_epochs": num_epochs,
        "max_seq_length": max_seq_length,
        "seed": seed,
        "lr_scheduler_type": lr_scheduler_type,
        "warmup_steps": warmup_steps,
        "weight_decay": weight_decay,
    }
    if usable.empty:
        reason = "the training set is empty (no pairs to fine-tune on); this is the base model"
        logger.warning("NOT fine-tuning: %s, returned unchanged.", reason)
        info = {**bundle.info, "training_examples": 0, "untrained_reason": reason}
        return ModelBundle(model=bundle.model, tokenizer=bundle.tokenizer, info=info)

    tokenizer = bundle.tokenizer
    encoded, n_truncated = [], 0
    for prompt, completion in zip(usable["prompt"], usable["completion"], strict=True):
        example, cut = _encode(tokenizer, str(prompt), str(completion), max_seq_length)
        encoded.append(example)
        n_truncated += cut > 0
    if n_truncated:
        logger.info(
            "%d of %d example(s) had the start of their prompt cut to fit %d tokens",
            n_truncated,
            len(encoded),
            max_seq_length,
        )

    model = copy.deepcopy(bundle.model) if copy_model else bundle.model
    on_cuda = bundle.device.type == "cuda"
    original_dtype = next(model.parameters()).dtype
    if master_dtype is not None:
        from .loading import resolve_dtype

        model.to(dtype=resolve_dtype(master_dtype))
    use_bf16 = (on_cuda and torch.cuda.is_bf16_supported()) if bf16 == "auto" else bool(bf16)
    use_gc = on_cuda if gradient_checkpointing == "auto" else bool(gradient_checkpointing)
    if use_gc:
        model.config.use_cache = False  # incompatible with checkpointing; restored below

    with tempfile.TemporaryDirectory(prefix="ilf_finetune_") as tmp:
        args = TrainingArguments(
            **{
                "output_dir": output_dir or tmp,
                "per_device_train_batch_size": per_device_batch_size,
                "gradient_accumulation_steps": gradient_accumulation_steps,
                "num_train_epochs": num_epochs,
                "learning_rate": learning_rate,
                "lr_scheduler_type": lr_scheduler_type,
                "warmup_steps": warmup_steps,
                "weight_decay": weight_decay,
                "seed": seed,
                "bf16": use_bf16,
                _checkpointing_arg(): use_gc,
                "use_cpu": not on_cuda,
                "report_to": "none",
                "save_strategy": "no",
                "logging_steps": 1,
                "disable_tqdm": not progress,
                "remove_unused_columns": False,
                "dataloader_pin_memory": on_cuda,
                **(trainer_kwargs or {}),
            }
        )
        trainer = Trainer(
            model=model,
            args=args,
            train_dataset=encoded,
            data_collator=_RightPadCollator(tokenizer.pad_token_id),
        )
        result = trainer.train()

    model = trainer.model
    if use_gc:
        disable = getattr(model, "activation_checkpointing_disable", None)
        (disable or model.gradient_checkpointing_disable)()
    model.config.use_cache = True
    model.to(dtype=original_dtype)
    model.eval()
    loss = float(result.training_loss)
    info = {
        **{k: v for k, v in bundle.info.items() if k != "untrained_reason"},
        "training_examples": len(encoded),
        "prompt_tokens_truncated_examples": int(n_truncated),
        "train_loss": loss if math.isfinite(loss) else None,
        "train_steps": int(result.global_step),
        "finetune": hyper,
        "device": str(bundle.device),
    }
    out = ModelBundle(model=model, tokenizer=tokenizer, info=info)
    if output_dir:
        from .io import save_bundle

        save_bundle(out, Path(output_dir))
    return out

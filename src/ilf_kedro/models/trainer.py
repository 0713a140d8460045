"""What every fine-tune shares, one process or several: the training examples (prompt ->
completion, loss on the completion and EOS only), their right-padding collator, the LoRA
configuration, and the ``Trainer`` driver, on which ``finetune_job.train_rank`` (every
rank of every launcher) builds."""

from __future__ import annotations

import copy
import gc
import logging
import math
import tempfile
from collections.abc import Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pandas as pd
import torch

logger = logging.getLogger(__name__)

IGNORE_INDEX = -100  # label value the causal-LM loss ignores


def encode_with_cut(tokenizer, prompt: str, completion: str, max_seq_length: int):
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
    return encode_with_cut(tokenizer, prompt, completion, max_seq_length)[0]


def right_padding_collator(tokenizer):
    """transformers' ``DataCollatorForSeq2Seq`` padding on the right: ``input_ids`` with
    the pad token, ``attention_mask`` with 0, ``labels`` with ``IGNORE_INDEX``. (The
    tokenizer pads on the left for generation; training pads a copy on the right so
    every example keeps positions 0..n.)"""
    from transformers import DataCollatorForSeq2Seq

    right = copy.copy(tokenizer)
    right.padding_side = "right"
    return DataCollatorForSeq2Seq(right, label_pad_token_id=IGNORE_INDEX, return_tensors="pt")


def checkpointing_arg() -> str:
    # transformers 5 renamed gradient_checkpointing (deprecated alias, removed in v6).
    from transformers import TrainingArguments

    fields = TrainingArguments.__dataclass_fields__
    return (
        "activation_checkpointing"
        if "activation_checkpointing" in fields
        else "gradient_checkpointing"
    )


@dataclass(frozen=True)
class TrainSettings:
    """What the ``Trainer`` is given besides the model and the data."""

    learning_rate: float
    per_device_batch_size: int
    gradient_accumulation_steps: int
    num_epochs: float
    seed: int
    lr_scheduler_type: str
    warmup_steps: int
    weight_decay: float
    train_sampling_strategy: str
    gradient_checkpointing: bool | str
    bf16: bool | str
    progress: bool
    output_dir: str | None
    trainer_kwargs: dict[str, Any]


@dataclass(frozen=True)
class TrainOutcome:
    """The trained model and what the ``Trainer`` reported."""

    model: Any
    train_loss: float
    steps: int
    loss_curve: list[float]  # the logged loss of every optimizer step
    runtime_s: float  # the Trainer's train_runtime

    def info(
        self, base_info: Mapping[str, Any], n_examples: int, n_truncated: int, hyper: dict
    ) -> dict[str, Any]:
        """The trained model's ``info``: the base model's (less ``untrained_reason``) plus
        what training reported and the hyperparameters (``finetune``)."""
        return {
            **{k: v for k, v in base_info.items() if k != "untrained_reason"},
            "training_examples": n_examples,
            "prompt_tokens_truncated_examples": int(n_truncated),
            "train_loss": self.train_loss if math.isfinite(self.train_loss) else None,
            "train_steps": self.steps,
            "loss_curve": self.loss_curve,
            "train_runtime_s": self.runtime_s,
            "finetune": hyper,
        }


def encode_pairs(tokenizer, pairs: pd.DataFrame, max_seq_length: int) -> tuple[list[dict], int]:
    """Every (prompt, completion) row encoded by ``encode_example``; also how many had the
    start of their prompt cut."""
    encoded, n_truncated = [], 0
    for prompt, completion in zip(pairs["prompt"], pairs["completion"], strict=True):
        example, cut = encode_with_cut(tokenizer, str(prompt), str(completion), max_seq_length)
        encoded.append(example)
        n_truncated += cut > 0
    if n_truncated:
        logger.info(
            "%d of %d example(s) had the start of their prompt cut to fit %d tokens",
            n_truncated,
            len(encoded),
            max_seq_length,
        )
    return encoded, n_truncated


@contextmanager
def on_cpu_meanwhile(model):
    """Moves ``model`` to the CPU for the duration (no-op when already there)."""
    device = next(model.parameters()).device
    if device.type == "cpu":
        yield
        return
    model.to("cpu")
    free_device_memory()
    try:
        yield
    finally:
        free_device_memory()
        model.to(device)


def free_device_memory() -> None:
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def lora_config(lora: Mapping[str, Any]):
    """PEFT's ``LoraConfig`` from ``finetune.lora``. Module names are name suffixes, as the
    memory plan counts them: PEFT reads a single string other than ``all-linear`` as a
    regular expression on the full module name, so one name goes to it as a list."""
    from peft import LoraConfig

    targets = lora["target_modules"]
    if isinstance(targets, str) and targets != "all-linear":
        targets = [targets]
    return LoraConfig(
        r=int(lora["r"]),
        lora_alpha=float(lora["alpha"]),
        lora_dropout=float(lora["dropout"]),
        target_modules=targets if isinstance(targets, str) else list(targets),
        task_type="CAUSAL_LM",
    )


def with_lora(model, lora: Mapping[str, Any], seed: int):
    """``model`` with a new LoRA adapter initialised from ``seed`` (the caller's random
    state untouched), so every process of a distributed fine-tune starts from the same
    adapter as a one-process run."""
    from peft import get_peft_model

    cuda = next(model.parameters()).device.type == "cuda"
    with torch.random.fork_rng(devices=[torch.cuda.current_device()] if cuda else []):
        torch.manual_seed(seed)
        return get_peft_model(model, lora_config(lora))


def run_trainer(
    model, encoded, tokenizer, settings: TrainSettings, device, finish=None
) -> TrainOutcome:
    """Train ``model`` (already on ``device``) with transformers' ``Trainer``; the Trainer
    and its optimizer state are gone when this returns. ``finish(trainer)``, when given,
    runs after training, before the Trainer goes (e.g. to gather a sharded model)."""
    from transformers import Trainer, TrainingArguments

    on_cuda = torch.device(device).type == "cuda"
    use_bf16 = (
        (on_cuda and torch.cuda.is_bf16_supported())
        if settings.bf16 == "auto"
        else bool(settings.bf16)
    )
    use_gc = (
        on_cuda
        if settings.gradient_checkpointing == "auto"
        else bool(settings.gradient_checkpointing)
    )
    use_cache = model.config.use_cache
    if use_gc:
        model.config.use_cache = False  # incompatible with checkpointing; restored below
    with tempfile.TemporaryDirectory(prefix="ilf_finetune_") as tmp:
        args = TrainingArguments(
            **{
                "output_dir": settings.output_dir or tmp,
                "per_device_train_batch_size": settings.per_device_batch_size,
                "gradient_accumulation_steps": settings.gradient_accumulation_steps,
                "num_train_epochs": settings.num_epochs,
                "learning_rate": settings.learning_rate,
                "lr_scheduler_type": settings.lr_scheduler_type,
                "warmup_steps": settings.warmup_steps,
                "weight_decay": settings.weight_decay,
                "train_sampling_strategy": settings.train_sampling_strategy,
                "seed": settings.seed,
                "bf16": use_bf16,
                checkpointing_arg(): use_gc,
                f"{checkpointing_arg()}_kwargs": {"use_reentrant": False} if use_gc else None,
                "use_cpu": not on_cuda,
                "report_to": "none",
                "save_strategy": "no",
                "logging_steps": 1,
                "disable_tqdm": not settings.progress,
                "remove_unused_columns": False,
                "dataloader_pin_memory": on_cuda,
                # Token-weighted loss over the whole effective batch, on every process.
                "average_tokens_across_devices": True,
                **settings.trainer_kwargs,
            }
        )
        trainer = Trainer(
            model=model,
            args=args,
            train_dataset=encoded,
            data_collator=right_padding_collator(tokenizer),
        )
        result = trainer.train()
        if finish is not None:
            finish(trainer)
        trained = trainer.model
        curve = [float(log["loss"]) for log in trainer.state.log_history if "loss" in log]
        del trainer
    if use_gc:
        base = getattr(trained, "get_base_model", lambda: trained)()
        disable = getattr(base, "activation_checkpointing_disable", None)
        (disable or base.gradient_checkpointing_disable)()
    trained.config.use_cache = use_cache
    trained.eval()
    return TrainOutcome(
        model=trained,
        train_loss=float(result.training_loss),
        steps=int(result.global_step),
        loss_curve=curve,
        runtime_s=float(result.metrics.get("train_runtime", float("nan"))),
    )

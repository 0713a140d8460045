"""One supervised fine-tune for pi_Refine and pi_theta*: prompt -> completion, loss on the
completion (and EOS) only, built on transformers' ``Trainer``."""

from __future__ import annotations

import copy
import logging
from collections.abc import Mapping
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

import pandas as pd

from ilf_kedro.parameters import Finetune, section

from .io import base_reference
from .loading import ModelBundle
from .trainer import (
    IGNORE_INDEX,
    TrainOutcome,
    TrainSettings,
    encode_example,
    encode_pairs,
    free_device_memory,
    lora_config,
    on_cpu_meanwhile,
    run_trainer,
    with_lora,
)

logger = logging.getLogger(__name__)

# The ``finetune`` settings the Trainer takes under the same name.
TRAINER_KEYS = {f.name for f in fields(TrainSettings)} & set(Finetune.model_fields)
# What a trained model records of how it was trained (``info["finetune"]``), besides the
# sequence length, strategy, processes and LoRA settings.
RECORDED_KEYS = (
    "learning_rate",
    "per_device_batch_size",
    "gradient_accumulation_steps",
    "num_epochs",
    "seed",
    "lr_scheduler_type",
    "warmup_steps",
    "weight_decay",
)

# The shared training pieces live in ``trainer``; these names stay importable from here.
__all__ = [
    "IGNORE_INDEX",
    "TrainSettings",
    "base_reference",
    "encode_example",
    "encode_pairs",
    "finetune",
]


def finetune(
    bundle: ModelBundle,
    pairs: pd.DataFrame,
    params: Finetune | Mapping[str, Any] | None = None,
    *,
    output_dir: str | None = None,
    lr_scheduler_type: str = "linear",
    warmup_steps: int = 0,
    weight_decay: float = 0.0,
    copy_model: bool = True,
    progress: bool = True,
    trainer_kwargs: dict[str, Any] | None = None,
    **overrides: Any,
) -> ModelBundle:
    """Fine-tune a causal LM on (prompt, completion) pairs; loss on completion + EOS only.

    Args:
        bundle: The model to start from (``load_model``/``HFModelDataset``).
        pairs: Columns ``prompt`` and ``completion``; rows with a missing value are
            dropped. Truncation follows ``encode_example``.
        params: The ``finetune`` parameters (``ilf_kedro.parameters.Finetune``: their
            defaults, the paper's, and rules); ``overrides`` (e.g. ``num_epochs=3``)
            replace some of them. ``gradient_accumulation_steps`` is the total over all
            processes; ``seed`` seeds shuffling and dropout; ``gradient_checkpointing``
            and ``bf16`` ``auto`` turn each on when training on CUDA; ``master_dtype``
            (``full``): the dtype the weights train in, cast back to the bundle's after;
            ``strategy`` ``full`` (every weight) or ``lora`` (a PEFT adapter on the frozen
            base model, trained in place and restored after, so its weights are never
            copied on the device); ``lora.save`` ``merged`` returns the base weights with
            the adapter merged in, ``adapter`` a PEFT model, which ``save_bundle`` writes
            as the adapter plus a reference to its base; ``num_processes`` > 1 trains in
            that many processes launched with ``accelerate`` (``distributed``: ``ddp``,
            ``fsdp`` or ``auto``, from the memory plan); ``compute`` (the ``compute``
            section) with ``backend: ray`` trains as a Ray Train job of
            ``compute.finetune.num_workers`` workers (``ilf_kedro.compute.ray_train``).
        output_dir: Trainer directory; when given, the trained model, tokenizer and info
            are also saved there. ``None``: a temporary directory, nothing kept.
        lr_scheduler_type, warmup_steps, weight_decay: Passed to ``TrainingArguments``.
        copy_model: ``full``: train a copy so ``bundle`` stays the base model (a base
            model in memory is shared by several stages). The base model waits on the CPU
            meanwhile, so the device never holds two full copies. ``False`` trains in place.
        progress: Show the Trainer's progress bar.
        trainer_kwargs: Extra ``TrainingArguments`` (override everything above).

    Returns:
        A new ``ModelBundle`` in eval mode with ``info`` from ``bundle`` plus
        ``training_examples``, ``prompt_tokens_truncated_examples``, ``train_loss``,
        ``train_steps``, ``loss_curve`` and ``finetune`` (the hyperparameters). With no
        usable pairs nothing is trained: a warning is logged and the base model is
        returned with ``training_examples = 0`` and ``untrained_reason`` set.
    """
    settings = section(Finetune, params, "finetune", **overrides)
    usable = _usable_pairs(pairs)
    if usable.empty:
        return _untrained(bundle)
    train = TrainSettings(
        **settings.model_dump(include=TRAINER_KEYS),
        lr_scheduler_type=lr_scheduler_type,
        warmup_steps=warmup_steps,
        weight_decay=weight_decay,
        progress=progress,
        output_dir=output_dir,
        trainer_kwargs=dict(trainer_kwargs or {}),
    )
    lora = settings.lora.model_dump()
    strategy, max_seq_length = settings.strategy, settings.max_seq_length
    hyper = _hyperparameters(train, max_seq_length, strategy, settings.num_processes, lora)
    if settings.compute.backend == "ray" or settings.num_processes > 1:
        from .distributed import Launch, finetune_in_processes

        # What every launcher of the training job (Ray Train, accelerate ranks) is handed.
        launch = Launch(
            hyper, max_seq_length, settings.master_dtype, strategy, lora, settings.distributed
        )
        if settings.compute.backend == "ray":
            from ilf_kedro.compute.ray_train import finetune_on_ray

            return finetune_on_ray(bundle, usable, train, launch, settings.compute.model_dump())
        return finetune_in_processes(bundle, usable, train, launch, settings.num_processes)

    encoded, n_truncated = encode_pairs(bundle.tokenizer, usable, max_seq_length)
    if strategy == "lora":
        outcome = _train_lora(bundle, encoded, train, lora)
    else:
        outcome = _train_full(bundle, encoded, train, settings.master_dtype, copy_model)
    info = _trained_info(bundle, outcome, len(encoded), n_truncated, hyper)
    out = ModelBundle(model=outcome.model, tokenizer=bundle.tokenizer, info=info)
    if output_dir:
        from .io import save_bundle

        save_bundle(out, Path(output_dir))
    return out


def _usable_pairs(pairs: pd.DataFrame) -> pd.DataFrame:
    """The pairs with both a prompt and a completion (a warning counts those dropped);
    raises ``ValueError`` when either column is missing."""
    missing = {"prompt", "completion"} - set(pairs.columns)
    if missing:
        raise ValueError(f"pairs is missing column(s) {sorted(missing)}")
    usable = pairs.dropna(subset=["prompt", "completion"])
    if len(usable) < len(pairs):
        logger.warning(
            "Dropped %d pair(s) with a missing prompt/completion", len(pairs) - len(usable)
        )
    return usable


def _untrained(bundle: ModelBundle) -> ModelBundle:
    """The base model, returned unchanged with a warning, when there is nothing to train on."""
    reason = "the training set is empty (no pairs to fine-tune on); this is the base model"
    logger.warning("NOT fine-tuning: %s, returned unchanged.", reason)
    info = {**bundle.info, "training_examples": 0, "untrained_reason": reason}
    return ModelBundle(model=bundle.model, tokenizer=bundle.tokenizer, info=info)


def _hyperparameters(
    settings: TrainSettings,
    max_seq_length: int,
    strategy: str,
    num_processes: int,
    lora_settings: dict[str, Any],
) -> dict[str, Any]:
    """The hyperparameters recorded in the trained model's ``info["finetune"]``."""
    return {
        **{key: getattr(settings, key) for key in RECORDED_KEYS},
        "max_seq_length": max_seq_length,
        "strategy": strategy,
        "num_processes": num_processes,
        **({"lora": lora_settings} if strategy == "lora" else {}),
    }


def _trained_info(
    bundle: ModelBundle,
    outcome: TrainOutcome,
    n_examples: int,
    n_truncated: int,
    hyper: dict[str, Any],
) -> dict[str, Any]:
    """The base model's ``info`` (less ``untrained_reason``) plus what training reported;
    an adapter saved on its own also records how to load its base (``adapter_base``)."""
    info = outcome.info(bundle.info, n_examples, n_truncated, hyper)
    info["device"] = str(bundle.device)
    if hyper["strategy"] == "lora" and hyper["lora"]["save"] == "adapter":
        info["adapter_base"] = base_reference(bundle)
    return info


def _train_full(bundle, encoded, settings, master_dtype, copy_model) -> TrainOutcome:
    """Every weight trains, in ``master_dtype``, on the bundle's device; the base model
    waits on the CPU while its copy trains."""
    from .loading import resolve_dtype

    device = bundle.device
    original_dtype = next(bundle.model.parameters()).dtype
    target_dtype = resolve_dtype(master_dtype) if master_dtype is not None else original_dtype
    if not copy_model:
        bundle.model.to(dtype=target_dtype)
        outcome = run_trainer(bundle.model, encoded, bundle.tokenizer, settings, device)
        outcome.model.to(dtype=original_dtype)
        return outcome
    with on_cpu_meanwhile(bundle.model):
        model = copy.deepcopy(bundle.model)  # made on the CPU
        model.to(device=device, dtype=target_dtype)
        outcome = run_trainer(model, encoded, bundle.tokenizer, settings, device)
        del model
        outcome.model.to(dtype=original_dtype)
        free_device_memory()  # the optimizer state, before the base model comes back
    return outcome


def _train_lora(bundle, encoded, settings, lora: dict[str, Any]) -> TrainOutcome:
    """A LoRA adapter trained on the base model in place (its weights frozen and never
    copied on the device), then taken off again: the base model is left as it was. The
    result is a CPU copy of the base with the adapter (merged or not), on the device."""
    from peft import get_peft_model, get_peft_model_state_dict, set_peft_model_state_dict

    base = bundle.model
    device = bundle.device
    requires_grad = {name: p.requires_grad for name, p in base.named_parameters()}
    peft_model = with_lora(base, lora, settings.seed)
    try:
        outcome = run_trainer(peft_model, encoded, bundle.tokenizer, settings, device)
        adapter = {
            k: v.detach().to("cpu", copy=True)
            for k, v in get_peft_model_state_dict(outcome.model).items()
        }
    finally:
        peft_model.unload()  # removes the LoRA layers, leaves the base weights untouched
        for name, p in base.named_parameters():
            p.requires_grad_(requires_grad[name])
        base.eval()
    del peft_model
    free_device_memory()

    with on_cpu_meanwhile(base):
        trained = get_peft_model(copy.deepcopy(base), lora_config(lora))  # on the CPU
    set_peft_model_state_dict(trained, adapter)
    if lora["save"] == "merged":
        trained = trained.merge_and_unload()
    trained.to(device)
    trained.eval()
    return replace(outcome, model=trained)

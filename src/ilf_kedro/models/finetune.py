"""One supervised fine-tune for pi_Refine and pi_theta*: prompt -> completion, loss on the
completion (and EOS) only, built on transformers' ``Trainer``."""

from __future__ import annotations

import copy
import gc
import logging
import math
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, replace
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


STRATEGIES = ("full", "lora")
LORA_DEFAULTS: dict[str, Any] = {
    "r": 16,
    "alpha": 32,
    "dropout": 0.05,
    "target_modules": "all-linear",
    "save": "merged",
}
LORA_SAVE = ("merged", "adapter")


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


def check_strategy(
    strategy: str, lora: dict[str, Any] | None, num_processes: int, distributed: str
) -> dict[str, Any]:
    """Validate the strategy parameters; returns the LoRA settings with defaults filled.

    Raises ``ValueError`` naming the ``finetune.*`` parameter and its allowed values.
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"finetune.strategy must be one of {STRATEGIES}, not {strategy!r}")
    unknown = set(lora or {}) - set(LORA_DEFAULTS)
    if unknown:
        raise ValueError(
            f"Unknown finetune.lora key(s) {sorted(unknown)}; allowed: {sorted(LORA_DEFAULTS)}"
        )
    settings = {**LORA_DEFAULTS, **(lora or {})}
    if settings["save"] not in LORA_SAVE:
        raise ValueError(f"finetune.lora.save must be one of {LORA_SAVE}, not {settings['save']!r}")
    if int(settings["r"]) < 1:
        raise ValueError(f"finetune.lora.r must be >= 1, not {settings['r']!r}")
    if not isinstance(num_processes, int) or num_processes < 1:
        raise ValueError(f"finetune.num_processes must be an integer >= 1, not {num_processes!r}")
    if distributed not in ("auto", "ddp", "fsdp"):
        raise ValueError(
            f"finetune.distributed must be one of ('auto', 'ddp', 'fsdp'), not {distributed!r}"
        )
    return settings


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
    compute: dict[str, Any] | None = None,
) -> ModelBundle:
    """Fine-tune a causal LM on (prompt, completion) pairs; loss on completion + EOS only.

    Args:
        bundle: The model to start from (``load_model``/``HFModelDataset``).
        pairs: Columns ``prompt`` and ``completion``; rows with a missing value are
            dropped. Truncation follows ``encode_example``.
        learning_rate, per_device_batch_size, gradient_accumulation_steps, num_epochs,
            max_seq_length: The paper's hyperparameters (5e-6, 1, 32, 2, 1024).
            ``gradient_accumulation_steps`` is the total over all processes.
        seed: Seeds shuffling and dropout (``TrainingArguments.seed``).
        output_dir: Trainer directory; when given, the trained model, tokenizer and info
            are also saved there. ``None``: a temporary directory, nothing kept.
        gradient_checkpointing, bf16: ``"auto"`` turns each on when training on CUDA
            (bf16 autocast if the GPU supports it).
        lr_scheduler_type, warmup_steps, weight_decay: Passed to ``TrainingArguments``.
        master_dtype: ``full``: weights are trained in this dtype (float32 master weights;
            bf16 is then autocast) and cast back to the bundle's dtype after. ``None``: as
            loaded.
        copy_model: ``full``: train a copy so ``bundle`` stays the base model (a base
            model in memory is shared by several stages). The base model waits on the CPU
            meanwhile, so the device never holds two full copies. ``False`` trains in place.
        strategy: ``full`` (every weight) or ``lora`` (a PEFT LoRA adapter on the frozen
            base model, which is trained in place and restored after, so its weights are
            never copied on the device).
        lora: ``r``, ``alpha``, ``dropout``, ``target_modules`` (``"all-linear"`` or module
            names) and ``save``: ``merged`` returns the base weights with the adapter
            merged in; ``adapter`` returns a PEFT model, which ``save_bundle`` writes as the
            adapter plus a reference to its base.
        num_processes: >1 trains in that many processes launched with ``accelerate``
            (see ``ilf_kedro.models.distributed``).
        distributed: With several processes: ``ddp``, ``fsdp`` or ``auto`` (from the
            memory plan: DDP when one process's state fits a device).
        progress: Show the Trainer's progress bar.
        trainer_kwargs: Extra ``TrainingArguments`` (override everything above).
        compute: The ``compute`` section; ``backend: ray`` trains as a Ray Train job of
            ``compute.finetune.num_workers`` workers (``ilf_kedro.compute.ray_train``).

    Returns:
        A new ``ModelBundle`` in eval mode with ``info`` from ``bundle`` plus
        ``training_examples``, ``prompt_tokens_truncated_examples``, ``train_loss``,
        ``train_steps``, ``loss_curve`` and ``finetune`` (the hyperparameters). With no
        usable pairs nothing is trained: a warning is logged and the base model is
        returned with ``training_examples = 0`` and ``untrained_reason`` set.
    """
    lora_settings = check_strategy(strategy, lora, num_processes, distributed)
    usable = _usable_pairs(pairs)
    if usable.empty:
        return _untrained(bundle)
    settings = TrainSettings(
        learning_rate=learning_rate,
        per_device_batch_size=per_device_batch_size,
        gradient_accumulation_steps=gradient_accumulation_steps,
        num_epochs=num_epochs,
        seed=seed,
        lr_scheduler_type=lr_scheduler_type,
        warmup_steps=warmup_steps,
        weight_decay=weight_decay,
        gradient_checkpointing=gradient_checkpointing,
        bf16=bf16,
        progress=progress,
        output_dir=output_dir,
        trainer_kwargs=dict(trainer_kwargs or {}),
    )
    hyper = _hyperparameters(settings, max_seq_length, strategy, num_processes, lora_settings)
    if compute and compute.get("backend") == "ray":
        from ilf_kedro.compute.ray_train import finetune_on_ray

        return finetune_on_ray(
            bundle,
            usable,
            settings,
            hyper=hyper,
            max_seq_length=max_seq_length,
            master_dtype=master_dtype,
            strategy=strategy,
            lora=lora_settings,
            distributed=distributed,
            compute=compute,
        )
    if num_processes > 1:
        from .distributed import finetune_in_processes

        return finetune_in_processes(
            bundle,
            usable,
            settings,
            hyper=hyper,
            max_seq_length=max_seq_length,
            master_dtype=master_dtype,
            strategy=strategy,
            lora=lora_settings,
            num_processes=num_processes,
            distributed=distributed,
        )

    encoded, n_truncated = encode_pairs(bundle.tokenizer, usable, max_seq_length)
    if strategy == "lora":
        outcome = _train_lora(bundle, encoded, settings, lora_settings)
    else:
        outcome = _train_full(bundle, encoded, settings, master_dtype, copy_model)
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
        "learning_rate": settings.learning_rate,
        "per_device_batch_size": settings.per_device_batch_size,
        "gradient_accumulation_steps": settings.gradient_accumulation_steps,
        "num_epochs": settings.num_epochs,
        "max_seq_length": max_seq_length,
        "seed": settings.seed,
        "lr_scheduler_type": settings.lr_scheduler_type,
        "warmup_steps": settings.warmup_steps,
        "weight_decay": settings.weight_decay,
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
    info = {
        **{k: v for k, v in bundle.info.items() if k != "untrained_reason"},
        "training_examples": n_examples,
        "prompt_tokens_truncated_examples": int(n_truncated),
        "train_loss": outcome.train_loss if math.isfinite(outcome.train_loss) else None,
        "train_steps": outcome.steps,
        "loss_curve": outcome.loss_curve,
        "train_runtime_s": outcome.runtime_s,
        "finetune": hyper,
        "device": str(bundle.device),
    }
    if hyper["strategy"] == "lora" and hyper["lora"]["save"] == "adapter":
        info["adapter_base"] = base_reference(bundle)
    return info


def encode_pairs(tokenizer, pairs: pd.DataFrame, max_seq_length: int) -> tuple[list[dict], int]:
    """Every (prompt, completion) row encoded by ``encode_example``; also how many had the
    start of their prompt cut."""
    encoded, n_truncated = [], 0
    for prompt, completion in zip(pairs["prompt"], pairs["completion"], strict=True):
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
    return encoded, n_truncated


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
    if spec == "tiny-random":
        reference.update(tiny_config=info.get("tiny_config"), seed=info.get("seed", 0))
    return reference


@contextmanager
def _on_cpu_meanwhile(model):
    """Moves ``model`` to the CPU for the duration (no-op when already there)."""
    device = next(model.parameters()).device
    if device.type == "cpu":
        yield
        return
    model.to("cpu")
    _free_device_memory()
    try:
        yield
    finally:
        _free_device_memory()
        model.to(device)


def _free_device_memory() -> None:
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _train_full(bundle, encoded, settings, master_dtype, copy_model) -> TrainOutcome:
    """Every weight trains, in ``master_dtype``, on the bundle's device; the base model
    waits on the CPU while its copy trains."""
    from .loading import resolve_dtype

    device = bundle.device
    original_dtype = next(bundle.model.parameters()).dtype
    target_dtype = resolve_dtype(master_dtype) if master_dtype is not None else original_dtype
    if not copy_model:
        bundle.model.to(dtype=target_dtype)
        outcome = _run_trainer(bundle.model, encoded, bundle.tokenizer, settings, device)
        outcome.model.to(dtype=original_dtype)
        return outcome
    with _on_cpu_meanwhile(bundle.model):
        model = copy.deepcopy(bundle.model)  # made on the CPU
        model.to(device=device, dtype=target_dtype)
        outcome = _run_trainer(model, encoded, bundle.tokenizer, settings, device)
        del model
        outcome.model.to(dtype=original_dtype)
        _free_device_memory()  # the optimizer state, before the base model comes back
    return outcome


def _lora_config(lora: dict[str, Any]):
    from peft import LoraConfig

    targets = lora["target_modules"]
    return LoraConfig(
        r=int(lora["r"]),
        lora_alpha=float(lora["alpha"]),
        lora_dropout=float(lora["dropout"]),
        target_modules=targets if isinstance(targets, str) else list(targets),
        task_type="CAUSAL_LM",
    )


def _with_lora(model, lora: dict[str, Any], seed: int):
    """``model`` with a new LoRA adapter initialised from ``seed`` (the caller's random
    state untouched), so every process of a distributed fine-tune starts from the same
    adapter as a one-process run."""
    from peft import get_peft_model

    cuda = next(model.parameters()).device.type == "cuda"
    with torch.random.fork_rng(devices=[torch.cuda.current_device()] if cuda else []):
        torch.manual_seed(seed)
        return get_peft_model(model, _lora_config(lora))


def _train_lora(bundle, encoded, settings, lora: dict[str, Any]) -> TrainOutcome:
    """A LoRA adapter trained on the base model in place (its weights frozen and never
    copied on the device), then taken off again: the base model is left as it was. The
    result is a CPU copy of the base with the adapter (merged or not), on the device."""
    from peft import get_peft_model, get_peft_model_state_dict, set_peft_model_state_dict

    base = bundle.model
    device = bundle.device
    requires_grad = {name: p.requires_grad for name, p in base.named_parameters()}
    peft_model = _with_lora(base, lora, settings.seed)
    try:
        outcome = _run_trainer(peft_model, encoded, bundle.tokenizer, settings, device)
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
    _free_device_memory()

    with _on_cpu_meanwhile(base):
        trained = get_peft_model(copy.deepcopy(base), _lora_config(lora))  # on the CPU
    set_peft_model_state_dict(trained, adapter)
    if lora["save"] == "merged":
        trained = trained.merge_and_unload()
    trained.to(device)
    trained.eval()
    return replace(outcome, model=trained)


def _run_trainer(
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
                "seed": settings.seed,
                "bf16": use_bf16,
                _checkpointing_arg(): use_gc,
                f"{_checkpointing_arg()}_kwargs": {"use_reentrant": False} if use_gc else None,
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
            data_collator=_RightPadCollator(tokenizer.pad_token_id),
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
    trained.config.use_cache = True
    trained.eval()
    return TrainOutcome(
        model=trained,
        train_loss=float(result.training_loss),
        steps=int(result.global_step),
        loss_curve=curve,
        runtime_s=float(result.metrics.get("train_runtime", float("nan"))),
    )

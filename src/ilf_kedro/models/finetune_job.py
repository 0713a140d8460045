"""One fine-tune, described once, and the one function that trains a rank of it.

A :class:`FinetuneJob` is built once from the validated ``finetune`` section and the base
model (its reference, info and dtype); it is frozen and serialisable, and it travels
unchanged to whichever :class:`Launcher` runs it: in this process
(:class:`~ilf_kedro.models.finetune.InProcess`), in ``accelerate`` ranks
(:class:`~ilf_kedro.models.distributed.Accelerate`) or as a Ray Train job
(``ilf_kedro.compute.ray_train.RayTrain``). A launcher decides its :class:`Ranks` with
:func:`plan_ranks` (how many, on which device, DDP or FSDP: ``finetune.distributed: auto``
decided by the memory plan, alike for every launcher) and runs :func:`train_rank` in
each rank; rank 0 saves the trained model through ``save_bundle``.
"""

from __future__ import annotations

import copy
import os
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal, Protocol

import pandas as pd
import torch
from pydantic import BaseModel, ConfigDict

from ilf_kedro.parameters import Finetune

from .io import base_reference, save_bundle
from .loading import ModelBundle, load_model, resolve_dtype
from .trainer import (
    TrainOutcome,
    TrainSettings,
    encode_pairs,
    free_device_memory,
    lora_config,
    on_cpu_meanwhile,
    run_trainer,
    with_lora,
)

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
    "train_sampling_strategy",
)


class FinetuneJob(BaseModel):
    """Everything one fine-tune needs apart from the base model's weights and the pairs."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    settings: Finetune  # the validated ``finetune`` section
    base: dict[str, Any] | None  # how to load the base again (``base_reference``); None:
    # its weights exist only in the caller's memory
    base_info: dict[str, Any]  # the base model's ``info``, which the trained model extends
    dtype: str  # the base weights' dtype, which the trained model keeps
    output_dir: str | None = None  # where the caller wants the trained model saved too
    copy_model: bool = True  # in process, ``full``: train a copy, the base stays as it was
    progress: bool = True
    trainer_kwargs: dict[str, Any] = {}

    @classmethod
    def build(cls, bundle: ModelBundle, settings: Finetune, **options: Any) -> FinetuneJob:
        """The job of fine-tuning ``bundle`` with ``settings``; ``options``: the other
        fields. Raises ``ValueError`` for an adapter of a base whose weights exist only in
        memory (nothing could load it again)."""
        try:
            base = base_reference(bundle)
        except ValueError:
            base = None
            if settings.strategy == "lora" and settings.lora.save == "adapter":
                raise
        dtype = str(next(bundle.model.parameters()).dtype).removeprefix("torch.")
        return cls(settings=settings, base=base, base_info=bundle.info, dtype=dtype, **options)

    @property
    def saves_adapter(self) -> bool:
        return self.settings.strategy == "lora" and self.settings.lora.save == "adapter"

    def train_settings(self, ranks: Ranks, model=None) -> TrainSettings:
        """What the ``Trainer`` of one of ``ranks`` is given: the accumulation steps split
        over the ranks (the effective batch of one process), and for several ranks no
        output directory or progress bar, and their DDP or FSDP arguments (FSDP wraps
        ``model``'s blocks)."""
        s = self.settings
        extra: dict[str, Any] = {}
        if ranks.distributed is not None:
            extra["ddp_backend"] = "gloo" if ranks.device == "cpu" else "nccl"
            if ranks.distributed == "fsdp":
                blocks = getattr(model, "_no_split_modules", None) or []
                extra.update(
                    fsdp="full_shard auto_wrap",
                    fsdp_config={"transformer_layer_cls_to_wrap": list(blocks)},
                )
            else:
                extra["ddp_find_unused_parameters"] = False
        one = ranks.distributed is None
        recorded = {key: getattr(s, key) for key in RECORDED_KEYS}
        recorded["gradient_accumulation_steps"] //= ranks.count
        return TrainSettings(
            **recorded,
            gradient_checkpointing=s.gradient_checkpointing,
            bf16=s.bf16,
            progress=self.progress and one,
            output_dir=self.output_dir if one else None,
            trainer_kwargs={**self.trainer_kwargs, **extra},
        )

    def hyperparameters(self, ranks: Ranks) -> dict[str, Any]:
        """What the trained model records in ``info["finetune"]``."""
        s = self.settings
        return {
            **{key: getattr(s, key) for key in RECORDED_KEYS},
            "max_seq_length": s.max_seq_length,
            "strategy": s.strategy,
            "num_processes": s.num_processes,
            **({"lora": s.lora.model_dump()} if s.strategy == "lora" else {}),
            **ranks.record,
        }

    def load_base(self, location: dict[str, Any] | None = None) -> ModelBundle:
        """The base model as a rank loads it, on the CPU (the ``Trainer`` places it): from
        ``location`` (``load_model`` arguments), else from the job's reference; ``full``
        in the dtype it trains in."""
        location = location or self.base
        if location is None:
            raise ValueError("the base model's weights exist only in memory: pass a location")
        dtype = self.settings.master_dtype if self.settings.strategy == "full" else self.dtype
        return load_model(**location, device="cpu", dtype=dtype)


class Ranks(BaseModel):
    """How a launcher runs a job: ``count`` ranks on ``device`` (``cpu`` or ``cuda``),
    trained with ``distributed`` (``ddp`` or ``fsdp``; None: one process, no process
    group); ``record``: what the trained model records of it (``info["finetune"]``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    count: int = 1
    device: str = "cpu"
    distributed: Literal["ddp", "fsdp"] | None = None
    record: dict[str, Any] = {}


class Launcher(Protocol):
    """Runs a :class:`FinetuneJob` on ``pairs`` from ``bundle`` and returns the trained
    model as one process does: on ``bundle``'s device, in its dtype (a PEFT model when
    the job saves an adapter), saved to ``job.output_dir`` as well when that is set."""

    def launch(self, job: FinetuneJob, bundle: ModelBundle, pairs: pd.DataFrame) -> ModelBundle: ...


def plan_ranks(
    job: FinetuneJob,
    bundle: ModelBundle,
    count: int,
    device: str,
    *,
    parameter: str,
    device_gib: float | None = None,
    **record: Any,
) -> Ranks:
    """The ranks of a multi-rank launcher: ``count`` ranks (the launcher's setting
    ``parameter``) on ``device``. ``finetune.distributed: auto`` is decided by the memory
    plan, as ``model_loading`` plans the run (the job's whole ``finetune`` section, with
    ``count`` processes): DDP when one rank's full training state fits one device of
    ``device_gib`` (default: this machine's first CUDA device), else FSDP; on CPU, DDP.

    Raises:
        ValueError: accumulation steps that do not split over the ranks, FSDP on CPU,
            or LoRA under FSDP; before anything starts.
    """
    from .memory_plan import device_memory_gib, model_shape, resolve_distributed

    s = job.settings
    if s.gradient_accumulation_steps % count:
        raise ValueError(
            f"finetune.gradient_accumulation_steps={s.gradient_accumulation_steps} must be a "
            f"multiple of {parameter}={count} to keep the effective batch"
        )
    distributed = s.distributed
    if distributed == "fsdp" and device != "cuda":
        raise ValueError(
            f"finetune.distributed=fsdp needs CUDA devices for the ranks of {parameter}; "
            "use ddp on CPU"
        )
    if distributed == "auto":
        distributed = "ddp"
        if device == "cuda":
            gib = device_gib if device_gib is not None else device_memory_gib("cuda")
            distributed = resolve_distributed(
                model_shape(bundle.model.config),
                s.model_copy(update={"num_processes": count}),
                gib,
                on_cuda=True,
                dtype=next(bundle.model.parameters()).dtype,
            )
    if distributed == "fsdp" and s.strategy == "lora":
        raise ValueError("finetune.strategy=lora trains with ddp; set finetune.distributed=ddp")
    return Ranks(
        count=count,
        device=device,
        distributed=distributed,
        record={"distributed": distributed, **record},
    )


def rank_device(ranks: Ranks) -> torch.device:
    """This rank's device: its CUDA device (``LOCAL_RANK``), or the CPU."""
    if ranks.device == "cuda":
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    return torch.device("cpu")


def train_rank(
    job: FinetuneJob,
    base: ModelBundle,
    pairs: pd.DataFrame,
    ranks: Ranks,
    device: torch.device,
    save_to: str | Path | None = None,
) -> ModelBundle | None:
    """Train one rank of ``job`` on ``pairs`` from ``base`` on ``device``; the only
    training code of every launcher.

    One process (``ranks.distributed`` None): ``base`` is the caller's model, left as it
    was (``full`` trains a copy while the base waits on the CPU, unless
    ``job.copy_model`` is off; ``lora`` trains an adapter on it in place and takes it off
    again). Several ranks: ``base`` is this rank's own copy, trained as it is.

    Returns:
        Rank 0: the trained model in the base's dtype (``info``: the base's plus what
        training reported), saved to ``save_to`` through ``save_bundle`` when given;
        other ranks: None.
    """
    s = job.settings
    encoded, n_truncated = encode_pairs(base.tokenizer, pairs, s.max_seq_length)
    settings = job.train_settings(ranks, base.model)
    state: dict[str, Any] = {}
    if s.strategy == "lora":
        outcome = _train_lora(job, base, encoded, settings, ranks, device)
    else:
        outcome = _train_full(job, base, encoded, settings, ranks, device, state)
    if outcome is None:  # not rank 0
        return None
    info = outcome.info(job.base_info, len(encoded), n_truncated, job.hyperparameters(ranks))
    info["device"] = str(device)
    if job.saves_adapter:
        info["adapter_base"] = job.base  # the caller's base, not a rank's copy of it
    trained = ModelBundle(model=outcome.model, tokenizer=base.tokenizer, info=info)
    if save_to:
        if "full" in state:  # FSDP: the module holds this rank's shard, save the whole
            dtype = resolve_dtype(job.dtype)
            full = {k: v.to(dtype) for k, v in state["full"].items()}
            save_bundle(trained, save_to, state_dict=full)
        else:
            save_bundle(trained, save_to)
    return trained


def _rank_zero() -> bool:
    """Whether this process is rank 0 of its process group (``RANK``, set by the
    launcher: torchrun under accelerate, Ray Train)."""
    return int(os.environ.get("RANK", "0")) == 0


def _train_full(job, base, encoded, settings, ranks, device, state) -> TrainOutcome | None:
    """Every weight trains, in ``master_dtype``; the result is cast back to the base's
    dtype. Under FSDP every rank gathers the full state (a collective) into ``state``.
    None on ranks other than 0."""
    original = resolve_dtype(job.dtype)
    target = resolve_dtype(job.settings.master_dtype)
    if ranks.distributed is not None:

        def gather(trainer) -> None:
            state["full"] = trainer.accelerator.get_state_dict(trainer.model)

        finish = gather if ranks.distributed == "fsdp" else None
        model = base.model.to(dtype=target)
        outcome = run_trainer(model, encoded, base.tokenizer, settings, device, finish=finish)
        if not _rank_zero():
            return None
        if ranks.distributed == "ddp":
            outcome.model.to(dtype=original)
        return outcome
    if not job.copy_model:
        base.model.to(dtype=target)
        outcome = run_trainer(base.model, encoded, base.tokenizer, settings, device)
        outcome.model.to(dtype=original)
        return outcome
    with on_cpu_meanwhile(base.model):
        model = copy.deepcopy(base.model)  # made on the CPU
        model.to(device=device, dtype=target)
        outcome = run_trainer(model, encoded, base.tokenizer, settings, device)
        del model
        outcome.model.to(dtype=original)
        free_device_memory()  # the optimizer state, before the base model comes back
    return outcome


def _train_lora(job, base, encoded, settings, ranks, device) -> TrainOutcome | None:
    """A LoRA adapter trained on the base model in place, its weights frozen. One
    process: the adapter is then taken off again, so the base is left as it was, and the
    result is a CPU copy of the base with the adapter (merged or not) on ``device``.
    Several ranks: rank 0's model, on the CPU, is the result (merged or not); None on
    the other ranks."""
    from peft import get_peft_model, get_peft_model_state_dict, set_peft_model_state_dict

    lora = job.settings.lora.model_dump()
    dtype = resolve_dtype(job.dtype)
    if ranks.distributed is not None:
        peft_model = with_lora(base.model, lora, settings.seed)
        outcome = run_trainer(peft_model, encoded, base.tokenizer, settings, device)
        if not _rank_zero():
            return None
        trained = outcome.model.cpu()
        if lora["save"] == "merged":
            trained = trained.merge_and_unload()
        return replace(outcome, model=trained.to(dtype=dtype))

    model = base.model
    requires_grad = {name: p.requires_grad for name, p in model.named_parameters()}
    peft_model = with_lora(model, lora, settings.seed)
    try:
        outcome = run_trainer(peft_model, encoded, base.tokenizer, settings, device)
        adapter = {
            k: v.detach().to("cpu", copy=True)
            for k, v in get_peft_model_state_dict(outcome.model).items()
        }
    finally:
        peft_model.unload()  # removes the LoRA layers, leaves the base weights untouched
        for name, p in model.named_parameters():
            p.requires_grad_(requires_grad[name])
        model.eval()
    del peft_model
    free_device_memory()

    with on_cpu_meanwhile(model):
        trained = get_peft_model(copy.deepcopy(model), lora_config(lora))  # on the CPU
    set_peft_model_state_dict(trained, adapter)
    if lora["save"] == "merged":
        trained = trained.merge_and_unload()
    trained.to(device)
    trained.eval()
    return replace(outcome, model=trained)

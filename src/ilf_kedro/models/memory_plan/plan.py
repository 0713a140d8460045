"""The plan: each GPU stage's need per device (:mod:`.estimate`) against the devices'
memory, and settings that would fit where a stage does not."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import torch

from ... import parameters
from .estimate import (
    GIB,
    ModelShape,
    finetune_memory,
    load_config,
    model_shape,
    sampling_memory,
)

logger = logging.getLogger(__name__)

# The ``memory_plan`` and ``model`` parameters' defaults are the plan's (one source).
_OPTIONS = parameters.MemoryPlan()
_MODEL = parameters.Model()


class MemoryPlanError(ValueError):
    """A configured GPU stage does not fit the memory of its devices."""


@dataclass(frozen=True)
class StagePlan:
    """One GPU stage's need on one device against that device's memory."""

    stage: str  # "sampling" or "finetune"
    setting: str  # e.g. "full, 2 processes (fsdp)"
    components: dict[str, float]  # bytes
    device_gib: float | None  # memory of one device; None: unknown (not checked)
    reserved_gib: float = _OPTIONS.reserved_gib  # CUDA context, workspaces, fragmentation

    @property
    def need_gib(self) -> float:
        return sum(self.components.values()) / GIB + self.reserved_gib

    @property
    def fits(self) -> bool:
        return self.device_gib is None or self.need_gib <= self.device_gib

    def describe(self) -> str:
        parts = ", ".join(f"{k} {v / GIB:.1f}" for k, v in self.components.items() if v)
        have = "unknown" if self.device_gib is None else f"{self.device_gib:.1f}"
        return (
            f"{self.stage} ({self.setting}): needs {self.need_gib:.1f} GiB per device "
            f"[{parts}, reserved {self.reserved_gib:.1f}] of {have} GiB"
        )


@dataclass
class MemoryPlan:
    """The plan of every GPU stage of a run, and settings that would fit where one does not."""

    model: str
    n_params: int
    stages: list[StagePlan]
    suggestions: dict[str, list[str]] = field(default_factory=dict)

    @property
    def fits(self) -> bool:
        return all(stage.fits for stage in self.stages)

    def to_frame(self) -> pd.DataFrame:
        """One row per stage: need, device memory, fit, components in GiB, suggestions."""
        rows = []
        for stage in self.stages:
            rows.append(
                {
                    "model": self.model,
                    "n_params": self.n_params,
                    "stage": stage.stage,
                    "setting": stage.setting,
                    "need_gib": round(stage.need_gib, 2),
                    "device_gib": stage.device_gib,
                    "fits": stage.fits,
                    **{f"{k}_gib": round(v / GIB, 3) for k, v in stage.components.items()},
                    "reserved_gib": stage.reserved_gib,
                    "would_fit": "; ".join(self.suggestions.get(stage.stage, [])),
                }
            )
        return pd.DataFrame(rows)

    def check(self) -> None:
        """Raise ``MemoryPlanError`` naming the numbers and fitting settings if a stage
        does not fit."""
        failing = [s for s in self.stages if not s.fits]
        if not failing:
            return
        lines = [f"The run does not fit its devices ({self.model}, {self.n_params / 1e9:.2f}B):"]
        for stage in failing:
            lines.append("  " + stage.describe())
            fitting = self.suggestions.get(stage.stage) or ["none found among those tried"]
            lines.append("    settings that would fit: " + "; ".join(fitting))
        lines.append(
            "Nothing was loaded. Change the parameters above, or set "
            "memory_plan.device_memory_gib if the device memory was misread."
        )
        raise MemoryPlanError("\n".join(lines))


@dataclass(frozen=True)
class PlanInputs:
    """The parameters the plan reads (the run's ``sampling``, ``finetune``, ``model`` and
    ``memory_plan`` parameter groups)."""

    sampling: parameters.Sampling
    finetune: parameters.Finetune
    device: str = "cuda"
    dtype: str = _MODEL.dtype
    max_prompt_tokens: int | None = _OPTIONS.max_prompt_tokens
    reserved_gib: float = _OPTIONS.reserved_gib


def device_memory_gib(device: str, stated: float | None = None) -> float | None:
    """Memory of one device: ``stated`` if given; else CUDA's total memory of the device;
    else, on CPU, the machine's physical memory; None when unknown."""
    if stated is not None:
        return float(stated)
    if str(device).startswith("cuda"):
        if not torch.cuda.is_available():
            return None
        index = torch.device(device).index or 0
        return torch.cuda.get_device_properties(index).total_memory / GIB
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / GIB
    except (ValueError, OSError, AttributeError):
        return None


def _finetune_settings(finetune: parameters.Finetune, on_cuda: bool) -> dict[str, Any]:
    gc, bf16 = finetune.gradient_checkpointing, finetune.bf16
    return {
        "strategy": finetune.strategy,
        "num_processes": finetune.num_processes,
        "per_device_batch_size": finetune.per_device_batch_size,
        "max_seq_length": finetune.max_seq_length,
        "gradient_checkpointing": on_cuda if gc == "auto" else bool(gc),
        "bf16": on_cuda if bf16 == "auto" else bool(bf16),
        "master_dtype": finetune.master_dtype,
        "lora": finetune.lora.model_dump(),
    }


def _setting_label(s: Mapping[str, Any], distributed: str) -> str:
    procs = s["num_processes"]
    label = s["strategy"]
    if s["strategy"] == "lora":
        label += f" r={s['lora']['r']}"
    label += f", {procs} process{'es' if procs > 1 else ''}"
    if procs > 1:
        label += f" ({distributed})"
    label += f", batch {s['per_device_batch_size']}x{s['max_seq_length']}"
    if s["gradient_checkpointing"]:
        label += ", checkpointing"
    if s["strategy"] == "full" and s["master_dtype"] not in ("float32", "fp32"):
        label += f", {s['master_dtype']} master weights"
    return label


def resolve_distributed(
    shape: ModelShape,
    finetune: parameters.Finetune | Mapping[str, Any],
    device_gib: float | None,
    *,
    on_cuda: bool = True,
    dtype: Any = "bfloat16",
    reserved_gib: float = _OPTIONS.reserved_gib,
) -> str:
    """``finetune.distributed`` with ``auto`` resolved: DDP when one process's full state
    fits one device, else FSDP."""
    finetune = parameters.section(parameters.Finetune, finetune, "finetune")
    if finetune.distributed != "auto":
        return finetune.distributed
    settings = _finetune_settings(finetune, on_cuda)
    if settings["num_processes"] == 1 or device_gib is None:
        return "ddp"
    need = finetune_memory(shape, distributed="ddp", dtype=dtype, **settings)
    fits = sum(need.values()) / GIB + reserved_gib <= device_gib
    return "ddp" if fits else "fsdp"


def build_plan(shape: ModelShape, inputs: PlanInputs, device_gib: float | None) -> MemoryPlan:
    """Plan the sampling and fine-tune stages of ``inputs`` for ``shape`` on devices of
    ``device_gib`` each, with settings that would fit where a stage does not."""
    from ..loading import resolve_dtype

    on_cuda = str(inputs.device).startswith("cuda")
    dtype = resolve_dtype(inputs.dtype, "cuda" if on_cuda else "cpu")
    if on_cuda and inputs.dtype in (None, "auto"):
        dtype = torch.bfloat16  # planning ahead for a device not present here
    smp = inputs.sampling
    ft = _finetune_settings(inputs.finetune, on_cuda)
    prompt_tokens = int(inputs.max_prompt_tokens or ft["max_seq_length"])
    reserved = inputs.reserved_gib

    def sampling_stage(batch_size: int, max_new: int) -> StagePlan:
        parts = sampling_memory(
            shape,
            batch_size=batch_size,
            max_new_tokens=max_new,
            max_prompt_tokens=prompt_tokens,
            dtype=dtype,
        )
        label = f"batch {batch_size}, {prompt_tokens}+{max_new} tokens"
        return StagePlan("sampling", label, parts, device_gib, reserved)

    def finetune_stage(settings: Mapping[str, Any], distributed: str | None = None) -> StagePlan:
        settings = dict(settings)
        distributed = distributed or resolve_distributed(
            shape,
            {**inputs.finetune.model_dump(), **settings},
            device_gib,
            on_cuda=on_cuda,
            dtype=dtype,
            reserved_gib=reserved,
        )
        parts = finetune_memory(shape, distributed=distributed, dtype=dtype, **settings)
        return StagePlan(
            "finetune", _setting_label(settings, distributed), parts, device_gib, reserved
        )

    batch, max_new = smp.batch_size, smp.max_new_tokens
    sampling = sampling_stage(batch, max_new)
    finetune = finetune_stage(ft)
    suggestions: dict[str, list[str]] = {}
    if not sampling.fits:
        options = [
            (f"sampling.batch_size={b}", sampling_stage(b, max_new))
            for b in sorted({max(1, batch // d) for d in (2, 3, 4, 6, 8, 16, 32)}, reverse=True)
        ]
        suggestions["sampling"] = _fitting(options, limit=1)
    if not finetune.fits:
        options = []
        if not ft["gradient_checkpointing"]:
            options.append(
                (
                    "finetune.gradient_checkpointing=true",
                    finetune_stage({**ft, "gradient_checkpointing": True}),
                )
            )
        checkpointed = {**ft, "gradient_checkpointing": True}
        for procs in (2, 4, 8):
            if procs > ft["num_processes"] and ft["strategy"] == "full":
                options.append(
                    (
                        f"finetune.num_processes={procs} (fsdp)",
                        finetune_stage({**checkpointed, "num_processes": procs}, "fsdp"),
                    )
                )
        if ft["strategy"] == "full":
            options.append(
                ("finetune.strategy=lora", finetune_stage({**checkpointed, "strategy": "lora"}))
            )
        if ft["per_device_batch_size"] > 1:
            options.append(
                (
                    "finetune.per_device_batch_size=1 (raise gradient_accumulation_steps)",
                    finetune_stage({**checkpointed, "per_device_batch_size": 1}),
                )
            )
        suggestions["finetune"] = _fitting(options, limit=4)
    return MemoryPlan(shape.name, shape.n_params, [sampling, finetune], suggestions)


def _fitting(options: list[tuple[str, StagePlan]], limit: int) -> list[str]:
    return [f"{label} -> {p.need_gib:.1f} GiB" for label, p in options if p.fits][:limit]


def plan_run(
    base_model: str,
    model: parameters.Model | Mapping[str, Any],
    sampling: parameters.Sampling | Mapping[str, Any],
    finetune: parameters.Finetune | Mapping[str, Any],
    memory_plan: parameters.MemoryPlan | Mapping[str, Any] | None = None,
) -> MemoryPlan:
    """The plan of a run from its parameters: ``base_model``, ``model`` (device, dtype,
    tiny_config), ``sampling``, ``finetune`` and ``memory_plan`` (``device_memory_gib``:
    state the memory of one device instead of reading it; ``max_prompt_tokens``: prompt
    length sampling is planned for, default ``finetune.max_seq_length``; ``reserved_gib``:
    kept free per device)."""
    from ..loading import resolve_device

    model = parameters.section(parameters.Model, model, "model")
    sampling = parameters.section(parameters.Sampling, sampling, "sampling")
    finetune = parameters.section(parameters.Finetune, finetune, "finetune")
    options = parameters.section(parameters.MemoryPlan, memory_plan, "memory_plan")
    device = resolve_device(model.device)
    config = load_config(base_model, model.tiny_config)
    shape = model_shape(config, name=base_model)
    inputs = PlanInputs(
        sampling=sampling,
        finetune=finetune,
        device=device,
        dtype=model.dtype,
        max_prompt_tokens=options.max_prompt_tokens,
        reserved_gib=options.reserved_gib,
    )
    device_gib = device_memory_gib(device, options.device_memory_gib)
    processes = finetune.num_processes
    if str(device).startswith("cuda") and torch.cuda.is_available():
        available = torch.cuda.device_count()
        if processes > available:
            raise MemoryPlanError(
                f"finetune.num_processes={processes} but only {available} CUDA device(s) "
                "are visible; use at most that many."
            )
    return build_plan(shape, inputs, device_gib)

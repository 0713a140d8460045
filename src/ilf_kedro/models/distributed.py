"""Fine-tune in several processes: ``accelerate launch`` of ``finetune_worker`` (DDP, or
FSDP for models whose training state does not fit one device).

The caller's process writes the training pairs and a ``LaunchSpec`` to a temporary
directory, launches ``num_processes`` ranks (one per GPU; gloo on CPU), streams their
logs into its logger, and waits. A rank that fails writes its error to
``errors/rank<N>.json``; the launch then fails with that rank's exception. Rank 0 writes
the trained model as a ``save_bundle`` directory, which is loaded back on the caller's
device, so the result is the ``ModelBundle`` the catalog expects.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import tempfile
from collections import deque
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from ilf_kedro.infra.ports import free_port
from ilf_kedro.parameters import Finetune

from .io import base_reference
from .loading import ModelBundle
from .trainer import TrainSettings

logger = logging.getLogger(__name__)

SPEC_FILENAME = "launch.json"
ERRORS_DIRNAME = "errors"


@dataclass(frozen=True)
class LaunchSpec:
    """Everything a rank needs, written as JSON beside the training pairs."""

    base: dict[str, Any]  # load_model arguments: spec (+ tiny_config, seed)
    pairs_path: str
    output_dir: str
    errors_dir: str
    settings: dict[str, Any]  # TrainSettings, accumulation steps per process
    max_seq_length: int
    master_dtype: str | None
    model_dtype: str  # the dtype the result is saved in (the base model's)
    strategy: str
    lora: dict[str, Any]
    distributed: str  # "ddp" or "fsdp"
    device: str  # "cpu" or "cuda"
    hyper: dict[str, Any]
    base_info: dict[str, Any]
    adapter_base: dict[str, Any] | None = None  # the caller's base, which an adapter names

    def write(self, directory: Path) -> Path:
        path = directory / SPEC_FILENAME
        path.write_text(json.dumps(asdict(self), indent=2, default=str))
        return path

    @classmethod
    def read(cls, path: str | Path) -> LaunchSpec:
        return cls(**json.loads(Path(path).read_text()))


@dataclass(frozen=True)
class Launch:
    """What ``finetune`` hands a launcher of ranks (accelerate here, Ray Train in
    :mod:`ilf_kedro.compute.ray_train`): the settings every rank trains with."""

    hyper: dict[str, Any]  # recorded in the trained model's info["finetune"]
    max_seq_length: int
    master_dtype: str | None
    strategy: str
    lora: dict[str, Any]
    distributed: str  # as configured: auto, ddp or fsdp

    @property
    def saves_adapter(self) -> bool:
        return self.strategy == "lora" and self.lora["save"] == "adapter"

    def adapter_base(self, bundle: ModelBundle) -> dict[str, Any] | None:
        """The reference an adapter names: the caller's base, not the ranks' copy of it
        (raises, as one process does, for a base whose weights exist only in memory)."""
        return base_reference(bundle) if self.saves_adapter else None

    def rank_spec(
        self,
        bundle: ModelBundle,
        per_rank: TrainSettings,
        choice: str,
        device: str,
        **hyper: Any,
    ) -> dict[str, Any]:
        """The :class:`LaunchSpec` fields every launcher fills alike (``hyper``: what
        else the trained model records, e.g. ``ray_workers``).

        Raises:
            ValueError: LoRA under FSDP (``choice``), or an adapter of a base in memory.
        """
        if choice == "fsdp" and self.strategy == "lora":
            raise ValueError("finetune.strategy=lora trains with ddp; set finetune.distributed=ddp")
        return {
            "settings": asdict(per_rank),
            "max_seq_length": self.max_seq_length,
            "master_dtype": self.master_dtype,
            "model_dtype": model_dtype(bundle),
            "strategy": self.strategy,
            "lora": self.lora,
            "distributed": choice,
            "device": device,
            "hyper": {**self.hyper, "distributed": choice, **hyper},
            "base_info": bundle.info,
            "adapter_base": self.adapter_base(bundle),
        }


def rank_settings(settings: TrainSettings, ranks: int, parameter: str) -> TrainSettings:
    """``settings`` for one of ``ranks`` ranks: ``gradient_accumulation_steps`` split over
    them (the same effective batch as one process), no output directory or progress bar.

    Raises:
        ValueError: the steps do not split evenly over ``parameter`` (the ranks' setting).
    """
    accumulation = settings.gradient_accumulation_steps
    if accumulation % ranks:
        raise ValueError(
            f"finetune.gradient_accumulation_steps={accumulation} must be a multiple of "
            f"{parameter}={ranks} to keep the effective batch"
        )
    return replace(
        settings, gradient_accumulation_steps=accumulation // ranks, output_dir=None, progress=False
    )


def model_dtype(bundle: ModelBundle) -> str:
    """The dtype of ``bundle``'s weights, by name: what the trained model is saved in."""
    return str(next(bundle.model.parameters()).dtype).removeprefix("torch.")


def load_trained(directory: str | Path, bundle: ModelBundle, launch: Launch, output_dir):
    """Rank 0's model in ``directory`` as one process returns it: on ``bundle``'s device
    and dtype, a PEFT model when saving an adapter; also saved to ``output_dir`` if set."""
    from .io import load_bundle, save_bundle

    trained = load_bundle(
        directory,
        device=str(bundle.device),
        dtype=model_dtype(bundle),
        merge_adapter=not launch.saves_adapter,
    )
    trained.info.pop("loaded_from", None)  # the launch's directory is about to go
    trained.info["device"] = str(bundle.device)
    if output_dir:
        save_bundle(trained, output_dir)
    return trained


@dataclass(frozen=True)
class RankError:
    """The exception one rank raised (``errors/rank<N>.json``)."""

    rank: int
    type: str
    message: str
    traceback: str


def resolve_distributed(
    bundle: ModelBundle, settings: dict[str, Any], distributed: str, num_processes: int
) -> str:
    """``auto`` -> ``ddp`` when one process's full training state fits one device (the
    memory plan), else ``fsdp``; on CPU always ``ddp`` (FSDP needs GPUs)."""
    device = bundle.device.type
    if distributed == "fsdp" and device != "cuda":
        raise ValueError("finetune.distributed=fsdp needs CUDA devices; use ddp on CPU")
    if distributed != "auto" or device != "cuda":
        return "ddp" if distributed == "auto" else distributed
    from .memory_plan import device_memory_gib, model_shape
    from .memory_plan import resolve_distributed as plan_choice

    shape = model_shape(bundle.model.config)
    return plan_choice(
        shape,
        {**settings, "num_processes": num_processes, "distributed": "auto"},
        device_memory_gib("cuda"),
        on_cuda=True,
        dtype=next(bundle.model.parameters()).dtype,
    )


def finetune_in_processes(
    bundle: ModelBundle,
    pairs: pd.DataFrame,
    settings: TrainSettings,
    launch: Launch,
    num_processes: int,
) -> ModelBundle:
    """Train ``bundle`` on ``pairs`` in ``num_processes`` ranks; the same effective batch
    as one process (``gradient_accumulation_steps`` is split over the ranks).

    Raises:
        ValueError: The accumulation steps do not split evenly, too few devices, or FSDP
            on CPU; before anything is launched.
        RuntimeError: A rank failed: its exception type, message and traceback.
    """
    per_rank = rank_settings(settings, num_processes, "finetune.num_processes")
    device = bundle.device.type
    if device == "cuda" and torch.cuda.device_count() < num_processes:
        raise ValueError(
            f"finetune.num_processes={num_processes} but {torch.cuda.device_count()} CUDA "
            "device(s) are visible"
        )
    planned = {"strategy": launch.strategy, **launch.hyper, "master_dtype": launch.master_dtype}
    choice = resolve_distributed(
        bundle,
        {k: v for k, v in planned.items() if k in Finetune.model_fields},
        launch.distributed,
        num_processes,
    )
    fields = launch.rank_spec(bundle, per_rank, choice, device)
    with tempfile.TemporaryDirectory(prefix="ilf_launch_") as tmp:
        tmp = Path(tmp)
        spec = LaunchSpec(
            base=_base_for_ranks(bundle, tmp),
            pairs_path=str(tmp / "pairs.parquet"),
            output_dir=str(tmp / "model"),
            errors_dir=str(tmp / ERRORS_DIRNAME),
            **fields,
        )
        pairs[["prompt", "completion"]].to_parquet(spec.pairs_path)
        logger.info(
            "Fine-tuning in %d processes (%s, %s), %d accumulation steps each",
            num_processes,
            choice,
            device,
            per_rank.gradient_accumulation_steps,
        )
        _launch(spec.write(tmp), num_processes, device, Path(spec.errors_dir))
        return load_trained(spec.output_dir, bundle, launch, settings.output_dir)


def _base_for_ranks(bundle: ModelBundle, tmp: Path) -> dict[str, Any]:
    """Where the ranks load the base model from: its own reference when it has one, else
    a copy saved into the launch directory."""
    try:
        return base_reference(bundle)
    except ValueError:
        from .io import save_bundle

        save_bundle(bundle, tmp / "base")
        return {"spec": str(tmp / "base")}


def launch_command(spec_path: Path, num_processes: int, device: str) -> list[str]:
    """The ``accelerate launch`` command line of the ranks (torchrun underneath)."""
    return [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--multi_gpu",  # accelerate's torchrun launcher; the ranks pick gloo on CPU
        "--num_processes",
        str(num_processes),
        "--num_machines",
        "1",
        "--mixed_precision",
        "no",  # the Trainer's bf16 setting decides
        "--dynamo_backend",
        "no",
        "--main_process_ip",
        "127.0.0.1",
        "--main_process_port",
        str(free_port()),
        "-m",
        "ilf_kedro.models.finetune_worker",
        str(spec_path),
    ]


def _launch(spec_path: Path, num_processes: int, device: str, errors_dir: Path) -> None:
    """Run the ranks, stream their output into the log, raise the failing rank's error."""
    import ilf_kedro

    env = dict(os.environ)
    src = str(Path(ilf_kedro.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH")) if p)
    env.setdefault("OMP_NUM_THREADS", "1")
    if device == "cpu":
        env["ACCELERATE_USE_CPU"] = "true"
    cmd = launch_command(spec_path, num_processes, device)
    logger.info("Launching: %s", " ".join(cmd))
    tail: deque[str] = deque(maxlen=80)  # the launcher's own report alone is ~30 lines
    with subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        bufsize=1,
    ) as proc:
        for line in proc.stdout:
            line = line.rstrip()
            tail.append(line)
            logger.info("%s", line)
        code = proc.wait()
    if code == 0:
        return
    errors = sorted(
        (RankError(**json.loads(p.read_text())) for p in errors_dir.glob("rank*.json")),
        key=lambda e: e.rank,
    )
    if errors:
        first = errors[0]
        raise RuntimeError(
            f"Fine-tuning failed in rank {first.rank} of {num_processes}: "
            f"{first.type}: {first.message}\n{first.traceback}"
        )
    raise RuntimeError(
        f"Fine-tuning in {num_processes} processes exited with {code} and no rank reported "
        "an error (killed?). Last output:\n" + "\n".join(tail)
    )

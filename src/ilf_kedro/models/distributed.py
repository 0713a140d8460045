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

    def write(self, directory: Path) -> Path:
        path = directory / SPEC_FILENAME
        path.write_text(json.dumps(asdict(self), indent=2, default=str))
        return path

    @classmethod
    def read(cls, path: str | Path) -> LaunchSpec:
        return cls(**json.loads(Path(path).read_text()))


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
    *,
    hyper: dict[str, Any],
    max_seq_length: int,
    master_dtype: str | None,
    strategy: str,
    lora: dict[str, Any],
    num_processes: int,
    distributed: str,
) -> ModelBundle:
    """Train ``bundle`` on ``pairs`` in ``num_processes`` ranks; the same effective batch
    as one process (``gradient_accumulation_steps`` is split over the ranks).

    Raises:
        ValueError: The accumulation steps do not split evenly, too few devices, or FSDP
            on CPU; before anything is launched.
        RuntimeError: A rank failed: its exception type, message and traceback.
    """
    accumulation = settings.gradient_accumulation_steps
    if accumulation % num_processes:
        raise ValueError(
            f"finetune.gradient_accumulation_steps={accumulation} must be a multiple of "
            f"finetune.num_processes={num_processes} to keep the effective batch"
        )
    device = bundle.device.type
    if device == "cuda" and torch.cuda.device_count() < num_processes:
        raise ValueError(
            f"finetune.num_processes={num_processes} but {torch.cuda.device_count()} CUDA "
            "device(s) are visible"
        )
    planned = {"strategy": strategy, **hyper, "master_dtype": master_dtype}
    choice = resolve_distributed(
        bundle,
        {k: v for k, v in planned.items() if k in Finetune.model_fields},
        distributed,
        num_processes,
    )
    if choice == "fsdp" and strategy == "lora":
        raise ValueError("finetune.strategy=lora trains with ddp; set finetune.distributed=ddp")
    adapter = strategy == "lora" and lora["save"] == "adapter"
    # An adapter refers to its base: the caller's reference, not the ranks' temporary copy
    # (raises, as one process does, for a base whose weights exist only in memory).
    reference = base_reference(bundle) if adapter else None
    per_rank = replace(
        settings,
        gradient_accumulation_steps=accumulation // num_processes,
        output_dir=None,
        progress=False,
    )
    model_dtype = str(next(bundle.model.parameters()).dtype).removeprefix("torch.")
    with tempfile.TemporaryDirectory(prefix="ilf_launch_") as tmp:
        tmp = Path(tmp)
        spec = LaunchSpec(
            base=_base_for_ranks(bundle, tmp),
            pairs_path=str(tmp / "pairs.parquet"),
            output_dir=str(tmp / "model"),
            errors_dir=str(tmp / ERRORS_DIRNAME),
            settings=asdict(per_rank),
            max_seq_length=max_seq_length,
            master_dtype=master_dtype,
            model_dtype=model_dtype,
            strategy=strategy,
            lora=lora,
            distributed=choice,
            device=device,
            hyper={**hyper, "distributed": choice},
            base_info=bundle.info,
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
        from .io import load_bundle

        trained = load_bundle(
            spec.output_dir,
            device=str(bundle.device),
            dtype=model_dtype,
            merge_adapter=not adapter,  # a PEFT model, as one process returns it
        )
    trained.info.pop("loaded_from", None)  # the temporary directory is gone
    if adapter:
        trained.info["adapter_base"] = reference
    trained.info["device"] = str(bundle.device)
    if settings.output_dir:
        from .io import save_bundle

        save_bundle(trained, settings.output_dir)
    return trained


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
    tail: deque[str] = deque(maxlen=30)
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

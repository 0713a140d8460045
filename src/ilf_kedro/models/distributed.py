"""Fine-tune in several processes: ``accelerate launch`` of ``finetune_worker`` (DDP, or
FSDP for models whose training state does not fit one device).

:class:`Accelerate` writes the job (``job.json``), its ranks (``ranks.json``) and the
training pairs to a temporary launch directory (with a copy of the base model when its
weights exist only in memory), launches ``num_processes`` ranks (one per GPU; gloo on
CPU), streams their logs into its logger, and waits. Each rank runs
:func:`~ilf_kedro.models.finetune_job.train_rank`; a rank that fails writes its error to
``errors/rank<N>.json`` and the launch then fails with that rank's exception. Rank 0
saves the trained model with ``save_bundle``; it is loaded back on the caller's device,
so the result is the ``ModelBundle`` one process returns.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import tempfile
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from ilf_kedro.infra.ports import free_port

from .finetune_job import FinetuneJob, Ranks, plan_ranks
from .io import load_bundle, save_bundle
from .loading import ModelBundle

logger = logging.getLogger(__name__)

JOB_FILENAME = "job.json"
RANKS_FILENAME = "ranks.json"
PAIRS_FILENAME = "pairs.parquet"
BASE_DIRNAME = "base"  # the base model, when its weights exist only in the caller's memory
MODEL_DIRNAME = "model"  # rank 0's trained model
ERRORS_DIRNAME = "errors"


@dataclass(frozen=True)
class RankError:
    """The exception one rank raised (``errors/rank<N>.json``)."""

    rank: int
    type: str
    message: str
    traceback: str


@dataclass(frozen=True)
class LaunchDirectory:
    """What the ranks of one launch read and write, in one directory."""

    path: Path

    def write(self, job: FinetuneJob, ranks: Ranks, bundle: ModelBundle, pairs) -> None:
        (self.path / JOB_FILENAME).write_text(job.model_dump_json(indent=2, fallback=str))
        (self.path / RANKS_FILENAME).write_text(ranks.model_dump_json(indent=2))
        pairs[["prompt", "completion"]].to_parquet(self.path / PAIRS_FILENAME)
        if job.base is None:
            save_bundle(bundle, self.path / BASE_DIRNAME)

    def job(self) -> FinetuneJob:
        return FinetuneJob.model_validate_json((self.path / JOB_FILENAME).read_text())

    def ranks(self) -> Ranks:
        return Ranks.model_validate_json((self.path / RANKS_FILENAME).read_text())

    def pairs(self) -> pd.DataFrame:
        return pd.read_parquet(self.path / PAIRS_FILENAME)

    def base_location(self) -> dict[str, Any] | None:
        """Where the ranks load the base from: the copy here, else the job's reference."""
        copied = self.path / BASE_DIRNAME
        return {"spec": str(copied)} if copied.is_dir() else None

    @property
    def model_dir(self) -> Path:
        return self.path / MODEL_DIRNAME

    @property
    def errors_dir(self) -> Path:
        return self.path / ERRORS_DIRNAME


def load_trained(directory: str | Path, bundle: ModelBundle, job: FinetuneJob) -> ModelBundle:
    """Rank 0's model in ``directory`` as one process returns it: on ``bundle``'s device
    and dtype, a PEFT model when saving an adapter; also saved to ``job.output_dir``."""
    trained = load_bundle(
        directory,
        device=str(bundle.device),
        dtype=job.dtype,
        merge_adapter=not job.saves_adapter,
    )
    trained.info.pop("loaded_from", None)  # the launch's directory is about to go
    trained.info["device"] = str(bundle.device)
    if job.output_dir:
        save_bundle(trained, job.output_dir)
    return trained


@dataclass(frozen=True)
class Accelerate:
    """The launcher of ``num_processes`` ranks on this machine (``accelerate launch``)."""

    num_processes: int

    def ranks(self, job: FinetuneJob, bundle: ModelBundle, device_gib=None) -> Ranks:
        """One rank per process on ``bundle``'s device (``plan_ranks``)."""
        device = bundle.device.type
        n = self.num_processes
        return plan_ranks(
            job, bundle, n, device, parameter="finetune.num_processes", device_gib=device_gib
        )

    def launch(self, job: FinetuneJob, bundle: ModelBundle, pairs: pd.DataFrame) -> ModelBundle:
        """Train in the ranks; the same effective batch as one process.

        Raises:
            ValueError: The accumulation steps do not split evenly, too few devices, FSDP
                on CPU, LoRA under FSDP; before anything is launched.
            RuntimeError: A rank failed: its exception type, message and traceback.
        """
        n = self.num_processes
        device = bundle.device.type
        ranks = self.ranks(job, bundle)
        if device == "cuda" and torch.cuda.device_count() < n:
            raise ValueError(
                f"finetune.num_processes={n} but {torch.cuda.device_count()} CUDA "
                "device(s) are visible"
            )
        with tempfile.TemporaryDirectory(prefix="ilf_launch_") as tmp:
            launch_dir = LaunchDirectory(Path(tmp))
            launch_dir.write(job, ranks, bundle, pairs)
            logger.info(
                "Fine-tuning in %d processes (%s, %s), %d accumulation steps each",
                n,
                ranks.distributed,
                device,
                job.train_settings(ranks).gradient_accumulation_steps,
            )
            _launch(launch_dir.path, n, device, launch_dir.errors_dir)
            return load_trained(launch_dir.model_dir, bundle, job)


def launch_command(launch_dir: Path, num_processes: int, device: str) -> list[str]:
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
        str(launch_dir),
    ]


def _launch(launch_dir: Path, num_processes: int, device: str, errors_dir: Path) -> None:
    """Run the ranks, stream their output into the log, raise the failing rank's error."""
    import ilf_kedro

    env = dict(os.environ)
    src = str(Path(ilf_kedro.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH")) if p)
    env.setdefault("OMP_NUM_THREADS", "1")
    # torchrun keeps a log folder per launch (torchelastic_*) in the temporary folder:
    # inside the launch's own, it goes when the launch does.
    env["TMPDIR"] = str(launch_dir)
    if device == "cpu":
        env["ACCELERATE_USE_CPU"] = "true"
    cmd = launch_command(launch_dir, num_processes, device)
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

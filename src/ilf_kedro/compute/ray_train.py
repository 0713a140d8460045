"""The fine-tune as a Ray Train job: a ``TorchTrainer`` of ``compute.finetune.num_workers``
workers across the cluster's nodes: :class:`RayTrain`, the third launcher of a
:class:`~ilf_kedro.models.finetune_job.FinetuneJob` beside ``InProcess`` and
``Accelerate``. Each worker runs the project's one rank of a fine-tune
(:func:`~ilf_kedro.models.finetune_job.train_rank`: full or LoRA, DDP over gloo on CPU or
NCCL on GPUs, FSDP), with ``finetune.distributed: auto`` decided by the memory plan as
for ``accelerate`` (:func:`~ilf_kedro.models.finetune_job.plan_ranks`).

Ray Train starts the workers and their process group (the ``RANK``/``WORLD_SIZE``
environment the ``Trainer`` reads); the training pairs and the base model travel with
the job (the model by its reference when it has one, a hub id or ``tiny-random``, else
as a packed directory), so nodes need no shared disk for them. Rank 0 reports the trained
model as a Ray Train checkpoint under ``compute.finetune.storage_path`` (shared storage,
NFS or ``s3://``, on a real cluster; by default a temporary directory of this machine),
which is loaded back here. ``gradient_accumulation_steps`` is split over the workers, so
the effective batch, and the loss curve, are those of one process. A worker (or node)
lost midway restarts the job from the start on the nodes left
(``compute.finetune.max_failures``); these fine-tunes are short, so no mid-run checkpoint.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from ilf_kedro.compute.cluster import connect, pack, unpack
from ilf_kedro.models.distributed import load_trained
from ilf_kedro.models.finetune_job import (
    FinetuneJob,
    Ranks,
    plan_ranks,
    rank_device,
    train_rank,
)
from ilf_kedro.models.io import base_reference, save_bundle
from ilf_kedro.models.loading import ModelBundle
from ilf_kedro.parameters import Compute, section

logger = logging.getLogger(__name__)


def _base_for_workers(bundle: ModelBundle) -> tuple[dict[str, Any] | None, bytes | None]:
    """How workers load the base model: its reference when no local path is needed
    (a hub id, ``tiny-random``), else its saved directory packed into the job."""
    try:
        reference = base_reference(bundle)
        if not Path(reference["spec"]).exists():
            return reference, None
    except ValueError:
        pass  # weights only in memory: packed below
    with tempfile.TemporaryDirectory(prefix="ilf_ray_base_") as tmp:
        save_bundle(bundle, Path(tmp))
        return None, pack(Path(tmp))


def _train_loop(config: dict[str, Any]) -> None:
    """One Ray Train worker: unpack the job's inputs, train this rank, report (rank 0:
    the trained model as the checkpoint)."""
    import ray.train

    job: FinetuneJob = config["job"]
    rank = ray.train.get_context().get_world_rank()
    with tempfile.TemporaryDirectory(prefix="ilf_ray_rank_") as tmp:
        tmp = Path(tmp)
        location = config["base"]
        if config["packed_base"] is not None:
            location = {"spec": str(unpack(config["packed_base"], tmp / "base"))}
        base = job.load_base(location)
        ranks = config["ranks"]
        trained = train_rank(
            job, base, config["pairs"], ranks, rank_device(ranks), save_to=tmp / "model"
        )
        node = ray.get_runtime_context().get_node_id()
        if trained is not None:
            checkpoint = ray.train.Checkpoint.from_directory(tmp / "model")
            ray.train.report({"rank": rank, "node": node}, checkpoint=checkpoint)
        else:
            ray.train.report({"rank": rank, "node": node})


@dataclass(frozen=True)
class RayTrain:
    """The launcher of a Ray Train job on the cluster of the ``compute`` section
    (``compute.finetune``: workers, CPUs and GPUs each, placement, storage, restarts)."""

    compute: Compute

    def __post_init__(self) -> None:  # the section, or a mapping of it (library callers)
        object.__setattr__(self, "compute", section(Compute, self.compute, "compute"))

    def ranks(self, job: FinetuneJob, bundle: ModelBundle, device_gib=None) -> Ranks:
        """One rank per worker, on CUDA when workers have GPUs (``plan_ranks``: ``auto``
        decided by the memory plan, as for ``accelerate``)."""
        workers = self.compute.finetune
        return plan_ranks(
            job,
            bundle,
            workers.num_workers,
            "cuda" if workers.gpus_per_worker > 0 else "cpu",
            parameter="compute.finetune.num_workers",
            device_gib=device_gib,
            ray_workers=workers.num_workers,
        )

    def launch(self, job: FinetuneJob, bundle: ModelBundle, pairs: pd.DataFrame) -> ModelBundle:
        """Train with a Ray Train ``TorchTrainer`` (see the module docstring); the result
        is the ``ModelBundle`` a one-process fine-tune returns.

        Raises:
            ValueError: accumulation steps that do not split over the workers, or FSDP or
                LoRA settings the workers cannot run; before anything starts.
            RuntimeError: the Ray Train job failed (its workers' error is chained).
        """
        from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
        from ray.train.torch import TorchTrainer

        workers = self.compute.finetune
        use_gpu = workers.gpus_per_worker > 0
        ranks = self.ranks(job, bundle)
        base, packed = _base_for_workers(bundle)
        connect(self.compute.address)
        resources = {"CPU": workers.num_cpus_per_worker}
        if use_gpu:
            resources["GPU"] = workers.gpus_per_worker
        logger.info(
            "Fine-tuning with Ray Train: %d worker(s) (%s), %s each, %d accumulation steps each",
            workers.num_workers,
            ranks.distributed,
            resources,
            job.train_settings(ranks).gradient_accumulation_steps,
        )
        with tempfile.TemporaryDirectory(prefix="ilf_ray_train_") as tmp:
            trainer = TorchTrainer(
                _train_loop,
                train_loop_config={
                    "job": job,
                    "ranks": ranks,
                    "base": base,
                    "packed_base": packed,
                    "pairs": pairs[["prompt", "completion"]].reset_index(drop=True),
                },
                scaling_config=ScalingConfig(
                    num_workers=workers.num_workers,
                    use_gpu=use_gpu,
                    resources_per_worker=resources,
                    placement_strategy=workers.placement,
                ),
                run_config=RunConfig(
                    name="ilf_finetune",
                    storage_path=workers.storage_path or tmp,
                    checkpoint_config=CheckpointConfig(num_to_keep=1),
                    failure_config=FailureConfig(max_failures=workers.max_failures),
                ),
            )
            try:
                result = trainer.fit()
            except Exception as exc:
                raise RuntimeError(f"the Ray Train fine-tune failed: {exc}") from exc
            with result.checkpoint.as_directory() as directory:
                return load_trained(directory, bundle, job)

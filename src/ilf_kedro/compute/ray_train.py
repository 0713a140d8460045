"""The fine-tune as a Ray Train job: a ``TorchTrainer`` of ``compute.finetune.num_workers``
workers across the cluster's nodes, each running the project's own rank of a distributed
fine-tune (:func:`ilf_kedro.models.finetune_worker.train`: the ``Trainer`` setup, full or
LoRA, DDP over gloo on CPU or NCCL on GPUs, FSDP with ``finetune.distributed: fsdp``).

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

import io
import logging
import tarfile
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from ilf_kedro.models.distributed import Launch, load_trained, rank_settings
from ilf_kedro.models.io import base_reference
from ilf_kedro.models.loading import ModelBundle
from ilf_kedro.models.trainer import TrainSettings

logger = logging.getLogger(__name__)


def _pack(directory: Path) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        tar.add(directory, arcname=".")
    return buffer.getvalue()


def _base_for_workers(bundle: ModelBundle) -> tuple[dict[str, Any], bytes | None]:
    """How workers load the base model: its reference when no local path is needed
    (a hub id, ``tiny-random``), else its saved directory packed into the job."""
    try:
        reference = base_reference(bundle)
        if not Path(reference["spec"]).exists():
            return reference, None
    except ValueError:
        pass  # weights only in memory: packed below
    from ilf_kedro.models.io import save_bundle

    with tempfile.TemporaryDirectory(prefix="ilf_ray_base_") as tmp:
        save_bundle(bundle, Path(tmp))
        return {"spec": None}, _pack(Path(tmp))


def _train_loop(config: dict[str, Any]) -> None:
    """One Ray Train worker: unpack the job's inputs, train this rank, report (rank 0:
    the trained model as the checkpoint)."""
    import ray.train

    from ilf_kedro.models.distributed import LaunchSpec
    from ilf_kedro.models.finetune_worker import train

    rank = ray.train.get_context().get_world_rank()
    with tempfile.TemporaryDirectory(prefix="ilf_ray_rank_") as tmp:
        tmp = Path(tmp)
        base = dict(config["base"])
        if config["packed_base"] is not None:
            with tarfile.open(fileobj=io.BytesIO(config["packed_base"])) as tar:
                tar.extractall(tmp / "base", filter="data")
            base["spec"] = str(tmp / "base")
        pairs_path = tmp / "pairs.parquet"
        config["pairs"].to_parquet(pairs_path)
        spec = LaunchSpec(
            **{
                **config["spec"],
                "base": base,
                "pairs_path": str(pairs_path),
                "output_dir": str(tmp / "model"),
                "errors_dir": str(tmp / "errors"),
            }
        )
        train(spec)
        node = ray.get_runtime_context().get_node_id()
        if rank == 0:
            checkpoint = ray.train.Checkpoint.from_directory(spec.output_dir)
            ray.train.report({"rank": rank, "node": node}, checkpoint=checkpoint)
        else:
            ray.train.report({"rank": rank, "node": node})


def finetune_on_ray(
    bundle: ModelBundle,
    pairs: pd.DataFrame,
    settings: TrainSettings,
    launch: Launch,
    compute: Mapping[str, Any],
) -> ModelBundle:
    """Train ``bundle`` on ``pairs`` with a Ray Train ``TorchTrainer`` (see the module
    docstring); the result is the ``ModelBundle`` a one-process fine-tune returns.

    Raises:
        ValueError: accumulation steps that do not split over the workers, or FSDP or
            LoRA settings the workers cannot run; before anything starts.
        RuntimeError: the Ray Train job failed (its workers' error is chained).
    """
    from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    from ilf_kedro.compute.cluster import connect
    from ilf_kedro.parameters import Compute

    cluster = Compute.model_validate(dict(compute))
    workers = cluster.finetune
    per_rank = rank_settings(settings, workers.num_workers, "compute.finetune.num_workers")
    use_gpu = workers.gpus_per_worker > 0
    choice = "fsdp" if launch.distributed == "fsdp" else "ddp"
    if choice == "fsdp" and not use_gpu:
        raise ValueError(
            "finetune.distributed=fsdp needs GPUs (compute.finetune.gpus_per_worker > 0); "
            "use ddp on CPU"
        )
    device = "cuda" if use_gpu else "cpu"
    spec = launch.rank_spec(bundle, per_rank, choice, device, ray_workers=workers.num_workers)
    base, packed = _base_for_workers(bundle)
    connect(cluster.address)
    resources = {"CPU": workers.num_cpus_per_worker}
    if use_gpu:
        resources["GPU"] = workers.gpus_per_worker
    logger.info(
        "Fine-tuning with Ray Train: %d worker(s) (%s), %s each, %d accumulation steps each",
        workers.num_workers,
        choice,
        resources,
        per_rank.gradient_accumulation_steps,
    )
    with tempfile.TemporaryDirectory(prefix="ilf_ray_train_") as tmp:
        trainer = TorchTrainer(
            _train_loop,
            train_loop_config={
                "spec": spec,
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
            return load_trained(directory, bundle, launch, settings.output_dir)

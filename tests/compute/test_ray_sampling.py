"""``sampling.backend: ray``: replicas on the 2-node loopback cluster give the ``hf``
backend's rows, seeds and stops, and write the same resumable shards."""

from __future__ import annotations

import time

import pandas as pd
import pytest

from ilf_kedro.models import load_model, sample_programs
from tests.models.conftest import ROUND_TRIP

SETTINGS = {
    "num_samples": 3,
    "temperature": 0.8,
    "top_p": 0.95,
    "max_new_tokens": 24,
    "batch_size": 2,
    "seed": 5,
    "stop_sequences": ["\ndef ", "\n#"],
    "progress": False,
}


@pytest.fixture(scope="module")
def bundle():
    return load_model("tiny-random", device="cpu", seed=0)


@pytest.fixture(scope="module")
def prompts():
    return ROUND_TRIP[["task_id", "prompt"]].assign(split="test")


def _replica_nodes(address: str, since_ms: int) -> set[str]:
    """Nodes of the cluster at ``address`` that ran sampling shards since ``since_ms``."""
    from ray.util.state import list_tasks

    shards = [("name", "=", "_generate_shard")]
    tasks = list_tasks(address=address, filters=shards, detail=True, limit=10_000)
    return {t.node_id for t in tasks if t.node_id and (t.start_time_ms or 0) >= since_ms}


def test_replicas_give_the_hf_samples_and_resume_from_shards(
    ray_cluster, bundle, prompts, tmp_path
):
    compute = {
        "backend": "ray",
        "address": ray_cluster.address,
        "sampling": {"batches_per_shard": 1},  # one CPU each: two at once use both nodes
    }
    started_ms = int(time.time() * 1000)
    hf = sample_programs(bundle, prompts, backend="hf", **SETTINGS)
    on_ray = sample_programs(
        bundle, prompts, backend="ray", compute=compute, resume_dir=str(tmp_path), **SETTINGS
    )
    pd.testing.assert_frame_equal(on_ray, hf)
    assert len(on_ray) == len(prompts) * SETTINGS["num_samples"]
    assert set(on_ray["finish_reason"]) <= {"stop", "eos", "length"}
    time.sleep(2)  # actor events reach the GCS about once a second
    # Replicas ran as Ray tasks (which nodes: test_ilf_on_ray checks both nodes take part).
    assert _replica_nodes(ray_cluster.address, started_ms)

    # A lost worker costs only its batches: drop two shards, the rest are read back.
    (shard_dir,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    shards = sorted(shard_dir.glob("batch-*.parquet"))
    assert len(shards) == -(-len(on_ray) // SETTINGS["batch_size"])
    kept = {p: p.stat().st_mtime_ns for p in shards[2:]}
    for lost in shards[:2]:
        lost.unlink()
    resumed = sample_programs(
        bundle, prompts, backend="ray", compute=compute, resume_dir=str(tmp_path), **SETTINGS
    )
    pd.testing.assert_frame_equal(resumed, hf)
    assert all(p.stat().st_mtime_ns == t for p, t in kept.items())  # not regenerated
    assert all(p.exists() for p in shards[:2])

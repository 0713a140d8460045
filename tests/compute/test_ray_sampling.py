"""``sampling.backend: ray``: replicas on the 2-node loopback cluster give the ``hf``
backend's rows, seeds and stops, and write the same resumable shards."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from ilf_kedro.compute.ray_sampling import RaySampling
from ilf_kedro.models import load_model, sample_programs
from tests.compute.conftest import every_node_at_once, seen_on
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


# The server replicas' settings: greedy, as in the server backend's own test, so the rows
# do not hang on the server's sampling streams; one row per shard.
SERVED = {**SETTINGS, "temperature": 0, "batch_size": 1}


@pytest.fixture(scope="module")
def more(prompts):
    """The prompts four times over, under other task ids: rows enough to lose replicas in."""
    return pd.concat([prompts.assign(task_id=prompts["task_id"] + 10 * i) for i in range(4)])


@pytest.fixture(scope="module")
def served(bundle, more):
    """The ``server`` backend's rows for ``more`` (its first copy is ``prompts``), served
    once for both server-replica tests: greedy rows of one prompt do not depend on the
    others."""
    return sample_programs(bundle, more, backend="server", **SERVED)


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
    with every_node_at_once(ray_cluster):
        on_ray = _on_ray(bundle, prompts, compute, tmp_path, SETTINGS)
    pd.testing.assert_frame_equal(on_ray, hf)
    assert len(on_ray) == len(prompts) * SETTINGS["num_samples"]
    assert set(on_ray["finish_reason"]) <= {"stop", "eos", "length"}
    nodes = ray_cluster.node_ids()
    ran = seen_on(lambda: ray_cluster.task_nodes("_generate_shard", started_ms), nodes)
    assert nodes <= ran

    # A lost worker costs only its batches: drop two shards, the rest are read back.
    _lose_two_shards_and_resume(
        tmp_path,
        -(-len(on_ray) // SETTINGS["batch_size"]),
        lambda: _on_ray(bundle, prompts, compute, tmp_path, SETTINGS),
        hf,
    )


def _on_ray(bundle, prompts, compute, resume_dir, settings) -> pd.DataFrame:
    """``prompts`` sampled by the Ray replicas of ``compute``, shards kept in ``resume_dir``."""
    return sample_programs(
        bundle,
        prompts,
        backend="ray",
        replicas=RaySampling(compute),
        resume_dir=str(resume_dir),
        **settings,
    )


def _lose_two_shards_and_resume(tmp_path, num_shards, resample, expected) -> None:
    """Delete the first two of the ``num_shards`` shards under ``tmp_path``; ``resample``
    must give ``expected`` again, writing only those two."""
    (shard_dir,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    shards = sorted(shard_dir.glob("batch-*.parquet"))
    assert len(shards) == num_shards
    kept = {p: p.stat().st_mtime_ns for p in shards[2:]}
    for lost in shards[:2]:
        lost.unlink()
    pd.testing.assert_frame_equal(resample(), expected)
    assert all(p.stat().st_mtime_ns == t for p, t in kept.items())  # not regenerated
    assert all(p.exists() for p in shards[:2])


@pytest.mark.skipif(
    shutil.which("transformers") is None, reason="the transformers CLI is not installed"
)
def test_server_replicas_give_the_server_backends_rows_and_resume_from_shards(
    ray_cluster, bundle, prompts, served, tmp_path
):
    # Each replica serves the model with `transformers serve` (sampling.server.command's
    # default; `vllm serve` on GPU nodes) on its own node; 3 shards of one row.
    compute = {
        "backend": "ray",
        "address": ray_cluster.address,
        "sampling": {"engine": "server", "replicas": 2},  # one CPU each: both nodes
    }
    served = served[served["task_id"].isin(prompts["task_id"])].reset_index(drop=True)
    on_ray = _on_ray(bundle, prompts, compute, tmp_path, SERVED)
    pd.testing.assert_frame_equal(on_ray, served)
    nodes = ray_cluster.node_ids()
    assert nodes <= seen_on(lambda: ray_cluster.actor_nodes("ServerReplica"), nodes)

    # Two shards to redo: one replica does them (a server start less than two).
    one = {**compute, "sampling": {"engine": "server", "replicas": 1}}
    _lose_two_shards_and_resume(
        tmp_path,
        len(prompts),
        lambda: _on_ray(bundle, prompts, one, tmp_path, SERVED),
        served,
    )


def _replica_servers() -> set[int]:
    """Pids of the replicas' servers still running on this machine (every loopback node)."""
    found = set()
    for entry in os.listdir("/proc"):
        with contextlib.suppress(OSError):
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
            if b"serve" in cmdline and b"ilf_replica_" in cmdline:
                found.add(int(entry))
    return found


def _parent(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def _logs(pids: set[int]) -> set[str]:
    """The files the servers ``pids`` write their output to (their log)."""
    found = set()
    for pid in pids:
        with contextlib.suppress(OSError):
            found.add(os.readlink(f"/proc/{pid}/fd/1"))
    return found


@pytest.mark.skipif(
    shutil.which("transformers") is None, reason="the transformers CLI is not installed"
)
def test_lost_server_replicas_cost_only_their_shards(ray_cluster, bundle, more, served):
    from ray.util.state import list_actors

    compute = {"backend": "ray", "address": ray_cluster.address}
    compute["sampling"] = {"engine": "server", "replicas": 2}
    killed: dict[str, int] = {}
    logs: set[str] = set()

    def kill_replicas() -> None:
        # Once both replicas serve: one replica's process SIGKILLed (as when its node
        # dies: Ray restarts it), and the other one's server alone (it is replaced).
        deadline = time.monotonic() + 300
        while len(killed) < 2 and time.monotonic() < deadline:
            alive = list_actors(
                address=ray_cluster.address,
                filters=[("class_name", "=", "ServerReplica"), ("state", "=", "ALIVE")],
                detail=True,
            )
            if len(alive) == 2:
                first, second = alive
                running = _replica_servers()
                logs.update(_logs(running))
                servers = [p for p in running if _parent(p) == second.pid]
                os.kill(first.pid, signal.SIGKILL)
                killed["replica"] = first.pid
                for pid in servers:
                    os.kill(pid, signal.SIGKILL)
                    killed["server"] = pid
            time.sleep(0.2)

    killer = threading.Thread(target=kill_replicas, daemon=True)
    killer.start()
    on_ray = sample_programs(bundle, more, backend="ray", replicas=RaySampling(compute), **SERVED)
    killer.join()
    assert set(killed) == {"replica", "server"}, f"killed only {killed}"
    pd.testing.assert_frame_equal(on_ray, served)
    # The killed replica's server went with it (it dies with its parent), and the others
    # were stopped: no server is left holding a device.
    deadline = time.monotonic() + 30
    while _replica_servers() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not _replica_servers()
    # Nor their logs: the killed replica's went when Ray started it again, the others at
    # the end.
    assert logs and not [log for log in logs if Path(log).exists()]

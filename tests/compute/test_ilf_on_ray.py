"""`kedro run --pipelines=ilf` with ``compute.backend: ray`` on the 2-node loopback
cluster: work runs on both nodes, every Parquet output equals a local run's, and the
second node killed in the middle of a verdict stage costs only its unfinished shards."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from tests.compute.conftest import seen_on
from tests.kedro_project import copy_project, run_pipeline

# 5 tasks per split: 10 programs or sequences per stage, so every stage still has several
# shards below (4 verdict shards, 3 sampling shards) for both nodes and the killed one.
SMALL = {
    "max_tasks_per_split": 5,
    "sampling.num_samples": 2,
    "sampling.max_new_tokens": 24,
    "finetune.num_epochs": 1,
    "finetune.strategy": "lora",  # the Ray Train test checks full fine-tunes
    "sampling.batch_size": 4,
    "execution.progress": False,
}
# One CPU per node and one per task, replica and fine-tune worker: work in parallel runs
# on both nodes. Small shards, so every stage has several.
ON_RAY = {
    "compute.backend": "ray",
    "sampling.backend": "ray",
    "compute.verdicts.programs_per_task": 3,
    "compute.sampling.batches_per_shard": 1,
}
# Clock readings: the only columns allowed to differ between two runs.
TIMINGS = {"duration_s", "gold_duration_s"}


def _parquet_outputs(project: Path) -> dict[str, pd.DataFrame]:
    data = project / "data"
    return {
        str(path.relative_to(data)): pd.read_parquet(path)
        for path in sorted(data.rglob("*.parquet"))
        if not any(part.startswith(".") for part in path.relative_to(data).parts)  # shards
        and "01_raw" not in path.parts
    }


def _processes() -> dict[int, tuple[int, int]]:
    """pid -> (parent pid, process group) of every live process."""
    table = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
                table[int(entry)] = (int(fields[1]), int(fields[2]))
            except (FileNotFoundError, ProcessLookupError, IndexError):
                continue
    return table


def _node_tree(pgid: int) -> list[int]:
    """Every process started by the node whose ``ray start`` leads process group ``pgid``
    (Ray workers, their sandbox servers, programs)."""
    table = _processes()

    def on_node(pid: int) -> bool:
        for _ in range(64):
            if pid not in table:
                return False
            parent, group = table[pid]
            if group == pgid:
                return True
            pid = parent
        return False

    return [pid for pid in table if on_node(pid)]


class NodeKiller(threading.Thread):
    """Once ``armed()`` turns true, arms the cluster's kill gate for the second node
    (``node_gate/sitecustomize.py``): the next verdict shard that starts there waits
    for its death. Then kills the node, every process it started (SIGKILL, as when the
    machine dies), and starts a fresh node in its place, as a cluster's autoscaler would."""

    def __init__(self, cluster, armed):
        super().__init__(daemon=True)
        self.cluster, self.armed = cluster, armed
        self.stop = threading.Event()
        self.killed: list[int] = []

    def run(self) -> None:
        gate = self.cluster.node_gate
        while not self.armed():
            if self.stop.wait(0.1):
                return
        (gate / "gated_port").write_text(str(self.cluster.ports["node1"]))
        while not any(gate.glob("judging.*")):
            if self.stop.wait(0.1):
                return
        pgid = self.cluster.processes["node1"].pid
        tree = _node_tree(pgid)
        for pid in tree:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.cluster.kill("node1")
        (gate / "gated_port").unlink()  # the replacement's raylet port differs anyway
        self.killed = tree
        self.cluster.start_node("node1")


def _ran_on(cluster, since_ms: int) -> dict[str, Callable[[], set[str]]]:
    """Per kind of work, the query of the nodes that ran it since ``since_ms``, from Ray's
    own task and actor state."""
    return {
        "verdicts": lambda: cluster.task_nodes("_run_shard", since_ms),
        "sampling": lambda: cluster.task_nodes("_generate_shard", since_ms),
        "finetune": lambda: cluster.actor_nodes("RayTrainWorker"),
    }


def test_ilf_on_two_nodes_equals_a_local_run_despite_a_lost_node(
    ray_cluster, tmp_path, monkeypatch
):
    monkeypatch.setenv("ILF_KEDRO_MLFLOW", "false")
    local = copy_project(tmp_path / "local")
    run_pipeline(local, "ilf", params=SMALL)

    on_ray = copy_project(tmp_path / "ray")
    nodes = ray_cluster.node_ids()
    assert len(nodes) == 2
    # Armed once pi_theta* is trained: by then sampling, fine-tunes and verdicts have all
    # run on both nodes, and the evaluation's verdict stages are still to come.
    killer = NodeKiller(ray_cluster, lambda: (on_ray / "data/06_models/ilf_model").exists())
    since_ms = int(time.time() * 1000)
    killer.start()
    try:
        run_pipeline(
            on_ray, "ilf", params={**SMALL, **ON_RAY, "compute.address": ray_cluster.address}
        )
    finally:
        killer.stop.set()
        killer.join()
    try:
        assert killer.killed, "the second node was never killed mid-verdict"
        expected, got = _parquet_outputs(local), _parquet_outputs(on_ray)
        assert sorted(got) == sorted(expected)
        for name, frame in expected.items():
            timing = sorted(TIMINGS & set(frame.columns))
            pd.testing.assert_frame_equal(
                got[name].drop(columns=timing), frame.drop(columns=timing), obj=name
            )

        for kind, query in _ran_on(ray_cluster, since_ms).items():
            ran = seen_on(query, nodes)
            assert nodes <= ran, f"{kind} did not run on both nodes: {ran}"
    finally:
        ray_cluster.wait_for_nodes()  # the replacement up, the killed node known dead

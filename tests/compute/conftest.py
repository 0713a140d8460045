"""A real 2-node Ray cluster on loopback: a head and a second node, each its own
``ray start --block`` process group with one CPU, started once per session."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from ilf_kedro.compute import connect

START_TIMEOUT_S = 120
NODE_ARGS = [
    "--node-ip-address=127.0.0.1",
    "--num-cpus=1",
    "--object-store-memory=100000000",
    "--disable-usage-stats",
    "--block",
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class LoopbackCluster:
    """The head and second node of a loopback Ray cluster and how to reach them."""

    address: str
    temp_dir: Path
    log_dir: Path
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)

    def start_node(self, name: str, *args: str) -> None:
        env = {
            **os.environ,
            "RAY_USAGE_STATS_ENABLED": "0",
            "RAY_memory_monitor_refresh_ms": "0",  # no OOM killer on a 2-core CI box
        }
        log = open(self.log_dir / f"{name}.log", "wb")  # noqa: SIM115 - lives with the node
        self.processes[name] = subprocess.Popen(
            [shutil.which("ray") or "ray", "start", *args, *NODE_ARGS],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,  # the node's processes share one group: killpg ends it
        )

    def wait_for_nodes(self, count: int) -> list[str]:
        """The ids of the ``count`` alive nodes, once the cluster has them; fails with the
        nodes' logs otherwise."""
        import ray

        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            for name, proc in self.processes.items():
                if proc.poll() is not None:
                    self.fail(f"ray node {name!r} exited with {proc.returncode}")
            if ray.is_initialized():
                alive = [n["NodeID"] for n in ray.nodes() if n["Alive"]]
                if len(alive) >= count:
                    return alive
            else:
                try:
                    with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                        pass
                    connect(self.address)  # as the pipeline does: ships ilf_kedro
                except (OSError, RuntimeError):
                    pass
            time.sleep(0.5)
        self.fail(f"the cluster did not reach {count} node(s) in {START_TIMEOUT_S} s")
        return []

    @property
    def port(self) -> int:
        return int(self.address.rsplit(":", 1)[1])

    def fail(self, reason: str) -> None:
        logs = "\n".join(
            f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}"
            for p in sorted(self.log_dir.glob("*.log"))
        )
        pytest.fail(f"{reason}\n{logs}")

    def kill(self, name: str) -> None:
        """SIGKILL every process of node ``name`` (its process group), as a machine dies."""
        proc = self.processes.pop(name)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()

    def stop(self) -> None:
        for name in list(self.processes):
            self.kill(name)


@pytest.fixture(scope="session")
def ray_cluster():
    """The running 2-node cluster, this process connected to it as a driver. If it cannot
    start, every test using it fails with the reason and the nodes' logs."""
    import ray

    if ray.is_initialized():
        ray.shutdown()
    temp_dir = Path(tempfile.mkdtemp(prefix="ray", dir="/tmp"))  # short: socket paths
    log_dir = temp_dir / "logs"
    log_dir.mkdir()
    port = _free_port()
    cluster = LoopbackCluster(address=f"127.0.0.1:{port}", temp_dir=temp_dir, log_dir=log_dir)
    try:
        cluster.start_node(
            "head",
            "--head",
            f"--port={port}",
            f"--temp-dir={temp_dir}",
            f"--ray-client-server-port={_free_port()}",
            # The dashboard serves Ray's state API (where tasks and actors ran).
            "--include-dashboard=true",
            "--dashboard-host=127.0.0.1",
            f"--dashboard-port={_free_port()}",
        )
        cluster.wait_for_nodes(1)
        cluster.start_node("worker", f"--address={cluster.address}")
        cluster.wait_for_nodes(2)
        yield cluster
    finally:
        if ray.is_initialized():
            ray.shutdown()
        cluster.stop()
        shutil.rmtree(temp_dir, ignore_errors=True)


def node_ids(cluster: LoopbackCluster) -> dict[str, str]:
    """``{"head": node id, "worker": node id}`` of the alive nodes."""
    import ray

    ids = {}
    for node in ray.nodes():
        if node["Alive"]:
            ids["head" if node.get("Resources", {}).get("node:__internal_head__") else "worker"] = (
                node["NodeID"]
            )
    return ids

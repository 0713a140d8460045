"""A Ray cluster of several nodes on this machine's loopback: each node is its own
``ray start --block`` process (group), as on separate machines, so one can be killed
alone. What the tests and ``benchmarks/bench_ray.py`` run against, and a way to try
``compute.backend: ray`` with real node boundaries on one machine::

    with LoopbackCluster(nodes=2, num_cpus=1) as cluster:
        kedro_params = {"compute.backend": "ray", "compute.address": cluster.address}
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from ilf_kedro.infra.commands import find_command
from ilf_kedro.infra.ports import free_port

HEAD = "head"
RAY_COMMAND = "LoopbackCluster(ray_command=...)"


class LoopbackCluster:
    """``nodes`` Ray nodes on 127.0.0.1 (the first is the head, with the dashboard that
    serves Ray's state API), ``num_cpus`` CPUs and ``object_store_mb`` of object store
    each. ``start()`` returns once every node has joined and this process is connected
    as a driver (through :func:`ilf_kedro.compute.connect`); ``stop()`` kills them all.
    A node that does not come up raises ``RuntimeError`` with the nodes' logs. The nodes
    run ``ray_command`` found next to this interpreter first, then on PATH, so they run
    this environment's Ray and packages even from a venv that is not activated."""

    def __init__(
        self,
        nodes: int = 2,
        num_cpus: float = 1,
        object_store_mb: int = 100,
        start_timeout_s: float = 120.0,
        ray_command: str = "ray",
    ):
        self.n_nodes, self.num_cpus = nodes, num_cpus
        self.object_store_mb, self.start_timeout_s = object_store_mb, start_timeout_s
        self.temp_dir = Path(tempfile.mkdtemp(prefix="ray", dir="/tmp"))  # socket paths: short
        self.log_dir = self.temp_dir / "logs"
        self.log_dir.mkdir()
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.processes: dict[str, subprocess.Popen] = {}
        self.ray_command = ray_command

    def __enter__(self) -> LoopbackCluster:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> LoopbackCluster:
        try:
            self.start_node(HEAD)
            self.wait_for_nodes(1)
            for i in range(1, self.n_nodes):
                self.start_node(f"node{i}")
            self.wait_for_nodes(self.n_nodes)
        except BaseException:
            self.stop()
            raise
        return self

    def start_node(self, name: str) -> None:
        """Start node ``name`` (the head when ``name`` is ``"head"``) and return at once."""
        args = [
            "--node-ip-address=127.0.0.1",
            f"--num-cpus={self.num_cpus}",
            f"--object-store-memory={self.object_store_mb * 10**6}",
            "--disable-usage-stats",
            "--block",
        ]
        if name == HEAD:
            args += [
                "--head",
                f"--port={self.port}",
                f"--temp-dir={self.temp_dir}",
                f"--ray-client-server-port={free_port()}",
                "--include-dashboard=true",  # serves the state API (where work ran)
                "--dashboard-host=127.0.0.1",
                f"--dashboard-port={free_port()}",
            ]
        else:
            args.append(f"--address={self.address}")
        env = {
            **os.environ,
            "RAY_USAGE_STATS_ENABLED": "0",
            "RAY_memory_monitor_refresh_ms": "0",  # no OOM killer on a small machine
            # A token in ~/.ray/auth_token (``ray.init()`` of a local cluster writes one)
            # would switch token authentication on for these nodes but not for drivers
            # that lack the token; loopback nodes are this machine's only.
            "RAY_AUTH_MODE": "disabled",
        }
        log = open(self.log_dir / f"{name}.log", "wb")  # noqa: SIM115 - lives with the node
        self.processes[name] = subprocess.Popen(
            [find_command(self.ray_command, parameter=RAY_COMMAND), "start", *args],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,  # the node's own process group: killpg ends it alone
        )

    def wait_for_nodes(self, count: int) -> list[str]:
        """The ids of the alive nodes once there are ``count``; connects this process."""
        import ray

        from ilf_kedro.compute.cluster import connect

        deadline = time.monotonic() + self.start_timeout_s
        last_error = "no connection attempt"
        while time.monotonic() < deadline:
            for name, proc in self.processes.items():
                if proc.poll() is not None:
                    raise RuntimeError(self._report(f"ray node {name!r} exited"))
            if ray.is_initialized():
                alive = [n["NodeID"] for n in ray.nodes() if n["Alive"]]
                if len(alive) >= count:
                    return alive
            else:
                try:
                    socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                    connect(self.address)
                except (OSError, RuntimeError) as exc:
                    last_error = f"{type(exc).__name__}: {exc} ({exc.__cause__})"
            time.sleep(0.5)
        raise RuntimeError(
            self._report(f"fewer than {count} node(s) after the timeout; {last_error}")
        )

    def node_ids(self) -> set[str]:
        """The Ray ids of the alive nodes."""
        import ray

        return {n["NodeID"] for n in ray.nodes() if n["Alive"]}

    def kill(self, name: str) -> None:
        """SIGKILL node ``name``'s process group, as when its machine dies."""
        proc = self.processes.pop(name)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()

    def stop(self) -> None:
        """Disconnect this process and kill every node."""
        import ray

        if ray.is_initialized():
            ray.shutdown()
        for name in list(self.processes):
            self.kill(name)
        shutil.rmtree(self.temp_dir, ignore_errors=True)

    def _report(self, reason: str) -> str:
        logs = "\n".join(
            f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}"
            for p in sorted(self.log_dir.glob("*.log"))
        )
        return f"the loopback Ray cluster did not start: {reason}\n{logs}"

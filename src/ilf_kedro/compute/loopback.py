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
from collections.abc import Mapping
from pathlib import Path

from ilf_kedro.infra.commands import find_command
from ilf_kedro.infra.ports import free_port

HEAD = "head"
RAY_COMMAND = "LoopbackCluster(ray_command=...)"


def _node_id() -> str:
    import ray

    return ray.get_runtime_context().get_node_id()


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
        env: Mapping[str, str] | None = None,
    ):
        self.n_nodes, self.num_cpus = nodes, num_cpus
        self.object_store_mb, self.start_timeout_s = object_store_mb, start_timeout_s
        self.temp_dir = Path(tempfile.mkdtemp(prefix="ray", dir="/tmp"))  # socket paths: short
        self.log_dir = self.temp_dir / "logs"
        self.log_dir.mkdir()
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.processes: dict[str, subprocess.Popen] = {}
        self.ports: dict[str, int] = {}  # node name -> its raylet's port: how Ray names it
        self.killed: set[int] = set()  # raylet ports of killed nodes
        self.ray_command = ray_command
        self.env = dict(env or {})  # on top of os.environ, for every node (replacements too)

    def __enter__(self) -> LoopbackCluster:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> LoopbackCluster:
        try:
            self.start_node(HEAD)
            self.wait_for_nodes()
            for i in range(1, self.n_nodes):
                self.start_node(f"node{i}")
            self.wait_for_nodes()
        except BaseException:
            self.stop()
            raise
        return self

    def start_node(self, name: str) -> None:
        """Start node ``name`` (the head when ``name`` is ``"head"``) and return at once."""
        self.ports[name] = free_port()
        args = [
            "--node-ip-address=127.0.0.1",
            f"--node-manager-port={self.ports[name]}",
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
            **self.env,
        }
        log = open(self.log_dir / f"{name}.log", "wb")  # noqa: SIM115 - lives with the node
        self.processes[name] = subprocess.Popen(
            [find_command(self.ray_command, parameter=RAY_COMMAND), "start", *args],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,  # the node's own process group: killpg ends it alone
        )

    def wait_for_nodes(self, count: int | None = None) -> set[str]:
        """The ids of this cluster's nodes once every node started (at least ``count``:
        all of them by default) is alive, has run a task for this driver, and every
        killed one is known dead to Ray; connects this process.

        A SIGKILLed node stays "alive" to Ray until its health checks fail (about 15 s),
        and Ray may schedule work on it meanwhile. A node that just joined runs this
        driver's first task only once it has set up the job's environment and started a
        worker (seconds); until then Ray hands a short run's tasks to the workers it
        already has elsewhere, so the new node would get none of them."""
        import ray

        from ilf_kedro.compute.cluster import connect

        count = len(self.processes) if count is None else count
        deadline = time.monotonic() + self.start_timeout_s
        last_error = "no connection attempt"
        while time.monotonic() < deadline:
            for name, proc in self.processes.items():
                if proc.poll() is not None:
                    raise RuntimeError(self._report(f"ray node {name!r} exited"))
            if ray.is_initialized():
                alive = self._alive()
                ours = {alive[port] for port in self._current() if port in alive}
                if len(ours) >= count and not self.killed & set(alive):
                    self._run_a_task_on(ours, deadline)
                    return ours
                last_error = f"alive: {sorted(alive)}, started: {sorted(self._current())}"
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

    @staticmethod
    def _run_a_task_on(nodes: set[str], deadline: float) -> None:
        import ray
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        task = ray.remote(_node_id)
        refs = [
            task.options(
                num_cpus=0, scheduling_strategy=NodeAffinitySchedulingStrategy(node, soft=False)
            ).remote()
            for node in nodes
        ]
        ray.get(refs, timeout=max(1.0, deadline - time.monotonic()))

    def node_ids(self) -> set[str]:
        """The Ray ids of this cluster's alive nodes (killed ones excluded, even while Ray
        still counts them alive)."""
        alive = self._alive()
        return {alive[port] for port in self._current() if port in alive}

    def _current(self) -> set[int]:
        return {self.ports[name] for name in self.processes}

    @staticmethod
    def _alive() -> dict[int, str]:
        """Raylet port -> node id of each node Ray counts alive."""
        import ray

        return {n["NodeManagerPort"]: n["NodeID"] for n in ray.nodes() if n["Alive"]}

    def task_nodes(self, name: str, since_ms: int = 0) -> set[str]:
        """The nodes where Ray tasks of function ``name`` started since ``since_ms``
        (epoch milliseconds), from this cluster's own state API (by its address: the
        API's default finds "the" cluster of the machine, which may be another one)."""
        from ray.util.state import list_tasks

        tasks = list_tasks(
            address=self.address, filters=[("name", "=", name)], detail=True, limit=10_000
        )
        return {t.node_id for t in tasks if t.node_id and (t.start_time_ms or 0) >= since_ms}

    def actor_nodes(self, class_name: str) -> set[str]:
        """The nodes where actors of class ``class_name`` ran, from this cluster's own
        state API."""
        from ray.util.state import list_actors

        actors = list_actors(
            address=self.address, filters=[("class_name", "=", class_name)], detail=True
        )
        return {a.node_id for a in actors if a.node_id}

    def kill(self, name: str) -> None:
        """SIGKILL node ``name``'s process group, as when its machine dies
        (:meth:`wait_for_nodes` waits until Ray knows)."""
        proc = self.processes.pop(name)
        self.killed.add(self.ports[name])
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

"""A real 2-node Ray cluster on loopback (``ilf_kedro.compute.loopback``): a head and a
second node, each its own ``ray start --block`` process group with one CPU, started once
for the tests of this folder; this process is its driver. If it cannot start, the tests
fail with the reason and the nodes' logs (they do not skip)."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import pytest

from ilf_kedro.compute.loopback import LoopbackCluster

GATE_SITE = Path(__file__).parent / "node_gate"  # its sitecustomize.py says what it does


# Package scope: the nodes stop, and this process stops being a Ray driver, once the
# tests of this folder are done, before the rest of the suite runs.
@pytest.fixture(scope="package")
def ray_cluster(tmp_path_factory):
    import ray

    if ray.is_initialized():
        ray.shutdown()
    # Every node, a replacement for a killed one too, starts with the node gates on its path
    # (inert until a test arms one).
    gate = tmp_path_factory.mktemp("node_gate")
    path = os.pathsep.join(filter(None, [str(GATE_SITE), os.environ.get("PYTHONPATH")]))
    cluster = LoopbackCluster(
        nodes=2,
        num_cpus=1,
        object_store_mb=100,
        env={"PYTHONPATH": path, "ILF_TEST_NODE_GATE": str(gate)},
    )
    try:
        cluster.start()
    except RuntimeError as exc:
        pytest.fail(str(exc))
    cluster.node_gate = gate
    try:
        yield cluster
    finally:
        cluster.stop()


@contextlib.contextmanager
def every_node_at_once(cluster):
    """Inside the block, a shard that starts on a node waits until shards of its kind have
    started on every node of ``cluster`` (``node_gate/sitecustomize.py``): work that is
    meant to spread does, however fast one node's worker is and slow the other's start.
    The barrier is a loopback listener here; each waiting shard blocks on its connection
    until the last node's shard arrives (or the block ends)."""
    import json
    import secrets
    import threading
    from multiprocessing.connection import Client, Listener

    nodes, authkey = len(cluster.node_ids()), secrets.token_bytes(16)
    with Listener(("127.0.0.1", 0), authkey=authkey) as listener:

        def release_when_all_arrive() -> None:
            waiting: dict[str, list] = {}  # shard function -> its waiting connections
            ports: dict[str, set[str]] = {}  # shard function -> nodes it started on
            while (arrival := (conn := listener.accept()).recv()) is not None:
                name, port = arrival
                ports.setdefault(name, set()).add(port)
                waiting.setdefault(name, []).append(conn)
                if len(ports[name]) >= nodes:
                    _release(waiting.pop(name))
            conn.close()  # the block's end, which sent None
            _release(c for group in waiting.values() for c in group)

        barrier = threading.Thread(target=release_when_all_arrive, daemon=True)
        barrier.start()
        rendezvous = {"address": listener.address, "authkey": authkey.hex()}
        (cluster.node_gate / "rendezvous").write_text(json.dumps(rendezvous))
        try:
            yield
        finally:
            (cluster.node_gate / "rendezvous").unlink()
            if barrier.is_alive():
                with Client(listener.address, authkey=authkey) as stop:
                    stop.send(None)  # releases every shard still waiting
                barrier.join()


def _release(connections) -> None:
    for conn in connections:
        with contextlib.suppress(OSError):  # a shard whose node was killed meanwhile
            conn.send("go")
        conn.close()


def seen_on(query, nodes: set[str], timeout_s: float = 60.0) -> set[str]:
    """``query()`` (nodes that Ray's state API says ran some work) once it covers ``nodes``,
    or its last answer after ``timeout_s``: task and actor events reach the GCS about once
    a second, so a single look right after the work may miss the latest ones."""
    import time

    deadline = time.monotonic() + timeout_s
    while not nodes <= (ran := query()) and time.monotonic() < deadline:
        time.sleep(0.25)
    return ran

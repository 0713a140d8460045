"""Test-only gates on the Ray nodes' shards, on the nodes' PYTHONPATH (``tests/compute/
conftest.py``), inert in every other process (no variable, or not armed):

- the kill gate (``tests/compute/test_ilf_on_ray.py``): once the test writes a node's
  raylet port to ``$ILF_TEST_NODE_GATE/gated_port``, every verdict shard that starts on that
  node marks ``judging.<pid>`` and waits there until the test kills the node, so the node
  dies in the middle of a verdict stage every time, not only when a poll catches a short
  shard;
- the rendezvous (``every_node_at_once`` in the conftest): while ``rendezvous`` names the
  test's barrier, a shard that starts tells it its function and node and blocks until
  shards of its function have started on every node (or a deadline passes), so a test
  that checks that work spread over the nodes does not depend on one node's worker
  finishing every short shard before the other node's worker is up.
"""

import importlib.abc
import importlib.util
import json
import os
import sys
import threading
from pathlib import Path

GATE = os.environ.get("ILF_TEST_NODE_GATE")
GATED = {
    "ilf_kedro.compute.ray_verdicts": "_run_shard",
    "ilf_kedro.compute.ray_sampling": "_generate_shard",
}
RENDEZVOUS_DEADLINE_S = 120


def _this_node_port() -> str | None:
    args = sys.argv
    for i, arg in enumerate(args):
        if arg.startswith("--node-manager-port="):
            return arg.split("=", 1)[1]
        if arg == "--node-manager-port" and i + 1 < len(args):
            return args[i + 1]
    return None


def _wait_to_be_killed(name: str) -> None:
    armed = Path(GATE, "gated_port")
    if name == "_run_shard" and armed.exists() and armed.read_text().strip() == _this_node_port():
        Path(GATE, f"judging.{os.getpid()}").touch()
        threading.Event().wait()  # never set: until the test kills this node


def _meet(name: str) -> None:
    try:
        rendezvous = json.loads(Path(GATE, "rendezvous").read_text())
    except (FileNotFoundError, ValueError):
        return
    from multiprocessing.connection import Client  # only while a test holds a barrier

    address, authkey = tuple(rendezvous["address"]), bytes.fromhex(rendezvous["authkey"])
    try:
        with Client(address, authkey=authkey) as barrier:
            barrier.send((name, _this_node_port()))
            barrier.poll(RENDEZVOUS_DEADLINE_S)  # "go"; past the deadline the test fails
    except (OSError, EOFError):
        return  # the test's block has ended


def _gated(name, shard):
    def run(*args, **kwargs):
        _wait_to_be_killed(name)
        _meet(name)
        return shard(*args, **kwargs)

    return run


class _PatchAfterImport(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, fullname, path, target=None):
        if fullname not in GATED:
            return None
        sys.meta_path.remove(self)
        try:
            spec = importlib.util.find_spec(fullname)
        finally:
            sys.meta_path.insert(0, self)
        self.loader = spec.loader
        spec.loader = self
        return spec

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        self.loader.exec_module(module)
        name = GATED[module.__name__]
        setattr(module, name, _gated(name, getattr(module, name)))


if GATE:
    sys.meta_path.insert(0, _PatchAfterImport())

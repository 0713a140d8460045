"""Test-only fault injection for ``tests/compute/test_ilf_on_ray.py``, on the Ray nodes'
PYTHONPATH (``tests/compute/conftest.py``): once the test writes a node's raylet port to
``$ILF_TEST_VERDICT_GATE/gated_port``, every verdict shard that starts on that node marks
``judging.<pid>`` and waits there until the test kills the node. So the node dies in the
middle of a verdict stage every time, not only when a poll happens to catch a short shard.
Inert in every other process (no variable, another node, or not yet armed)."""

import importlib.abc
import importlib.util
import os
import sys
import time
from pathlib import Path

GATE = os.environ.get("ILF_TEST_VERDICT_GATE")
MODULE, FUNCTION = "ilf_kedro.compute.ray_verdicts", "_run_shard"


def _this_node_port() -> str | None:
    args = sys.argv
    for i, arg in enumerate(args):
        if arg.startswith("--node-manager-port="):
            return arg.split("=", 1)[1]
        if arg == "--node-manager-port" and i + 1 < len(args):
            return args[i + 1]
    return None


def _gated(run_shard):
    def run(*args, **kwargs):
        armed = Path(GATE, "gated_port")
        if armed.exists() and armed.read_text().strip() == _this_node_port():
            Path(GATE, f"judging.{os.getpid()}").touch()
            while True:  # until the test kills this node
                time.sleep(1)
        return run_shard(*args, **kwargs)

    return run


class _PatchAfterImport(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, fullname, path, target=None):
        if fullname != MODULE:
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
        setattr(module, FUNCTION, _gated(getattr(module, FUNCTION)))


if GATE:
    sys.meta_path.insert(0, _PatchAfterImport())

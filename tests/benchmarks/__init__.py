"""The benchmarks' smoke runs (``benchmarks/<script> --smoke``), as their tests start them."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.conftest import PROJECT_ROOT


def run_smoke(script: str, *args: str) -> dict:
    """Run ``benchmarks/<script>`` from the repository root; its last line, as JSON."""
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT / "src")}
    done = subprocess.run(
        [sys.executable, f"benchmarks/{script}", "--smoke", *args],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, f"{script} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return json.loads(done.stdout.strip().splitlines()[-1])

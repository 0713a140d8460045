"""Fixtures for the execution harness tests: tiny task frames and the reference data."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from ilf_kedro.execution.sandbox.records import UID_BASE, UID_BLOCK, UID_BLOCKS

SHARED_DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
MBPP = SHARED_DATA / "mbpp" / "mbpp.jsonl"
ANNOTATIONS = SHARED_DATA / "ilf" / "surge_annotations.jsonl"

# The program text every "correct" toy program ends with, and its task.
GOOD = "def f(x):\n    return x + 1\n"


def lf(text: str) -> str:
    return text.replace("\r\n", "\n")


def make_tasks(specs: dict) -> pd.DataFrame:
    """{task_id: (tests, setup, time_limit_s or None)} -> tasks frame."""
    rows = []
    for tid, (tests, setup, limit) in specs.items():
        rows.append(
            {
                "task_id": tid,
                "tests": list(tests),
                "test_setup_code": setup,
                "gold_code": GOOD,
                "time_limit_s": float("nan") if limit is None else float(limit),
            }
        )
    return pd.DataFrame(rows)


@pytest.fixture
def toy_tasks() -> pd.DataFrame:
    return make_tasks(
        {1: (["assert f(1) == 2", "assert f(2) == 3", "assert f(-1) == 0"], "", None)}
    )


@pytest.fixture
def busy_cpus():
    """Load from outside: one process spinning on each CPU while the test runs."""
    spinners = [
        subprocess.Popen([sys.executable, "-c", "while True:\n    pass"])
        for _ in os.sched_getaffinity(0)
    ]
    yield len(spinners)
    for spinner in spinners:
        spinner.kill()
        spinner.wait()


def sandbox_processes(uid_base: int = UID_BASE, span: int = UID_BLOCK * UID_BLOCKS) -> list[int]:
    """PIDs of live processes whose real uid is a sandbox uid."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("Uid:"):
                        if uid_base <= int(line.split()[1]) < uid_base + span:
                            found.append(int(pid))
                        break
        except OSError:
            pass
    return found


def _require(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"reference data {path.resolve()} is absent (../shared/data beside the repo)")
    return path


@pytest.fixture(scope="session")
def mbpp_tasks() -> pd.DataFrame:
    """MBPP as a tasks frame: gold program = code; CRLF normalised to LF."""
    rows = [json.loads(line) for line in _require(MBPP).read_text().splitlines() if line.strip()]
    return pd.DataFrame(
        {
            "task_id": [r["task_id"] for r in rows],
            "tests": [[lf(t) for t in r["test_list"]] for r in rows],
            "test_setup_code": [lf(r["test_setup_code"]) for r in rows],
            "gold_code": [lf(r["code"]) for r in rows],
        }
    )


def strip_refinement(text: str) -> str:
    text = lf(text)
    stripped = text.lstrip()
    if stripped.startswith("Refinement:"):
        text = stripped[len("Refinement:") :].lstrip("\n")
    return text


@pytest.fixture(scope="session")
def annotations() -> pd.DataFrame:
    path = _require(ANNOTATIONS)
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return pd.DataFrame(
        {
            "task_id": [r["task_id"] for r in rows],
            "original": [strip_refinement(r["original_model_completion"]) for r in rows],
            "refinement": [strip_refinement(r["unedited_annotator_completion"]) for r in rows],
        }
    )

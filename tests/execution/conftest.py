"""Fixtures for the execution harness tests: tiny task frames and the reference data."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from ilf_kedro.execution.harness import prepare_evaluation
from ilf_kedro.execution.sandbox.records import UID_BASE, UID_BLOCK, UID_BLOCKS
from ilf_kedro.execution.sandbox_client import run_sandbox

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


@contextlib.contextmanager
def spinners(n: int, cpu: int | None = None):
    """``n`` processes spinning (on CPU ``cpu`` when given), each spinning before the block
    starts (a barrier: each says so) and each in a session of its own, as each program
    is: with the kernel's autogroups, CPU time is shared out between sessions first."""
    pin = "" if cpu is None else f"import os\nos.sched_setaffinity(0, {{{cpu}}})\n"
    running = [
        subprocess.Popen(
            [sys.executable, "-c", f"{pin}print(flush=True)\nwhile 1:\n    pass\n"],
            stdout=subprocess.PIPE,
            start_new_session=True,
        )
        for _ in range(n)
    ]
    try:
        for spinner in running:
            assert spinner.stdout.readline() == b"\n"
        yield
    finally:
        for spinner in running:
            spinner.kill()
            spinner.wait()


@pytest.fixture
def busy_cpus():
    """Load from outside: one process spinning on each CPU while the test runs."""
    n = len(os.sched_getaffinity(0))
    with spinners(n):
        yield n


def sandbox_processes(
    uid_base: int = UID_BASE, span: int = UID_BLOCK * UID_BLOCKS, started_by: float | None = None
) -> list[int]:
    """PIDs of live processes whose real uid is in ``[uid_base, uid_base + span)`` and, with
    ``started_by`` (CLOCK_BOOTTIME seconds), that started no later than that."""
    found = []
    tick = os.sysconf("SC_CLK_TCK")
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/status") as f:
                uid = next(int(line.split()[1]) for line in f if line.startswith("Uid:"))
            if not uid_base <= uid < uid_base + span:
                continue
            if started_by is not None:
                with open(f"/proc/{pid}/stat") as f:
                    start = int(f.read().rsplit(")", 1)[1].split()[19]) / tick
                if start > started_by:
                    continue
            found.append(int(pid))
        except (OSError, StopIteration):
            pass
    return found


def evaluate_noting_the_sandbox(programs: pd.DataFrame, tasks: pd.DataFrame, **options):
    """:func:`evaluate_programs`' results, the sandbox's isolation report (its
    ``uid_base``) and the CLOCK_BOOTTIME at which the last run was reported: every process
    of the run had started by then, while its uid block was still locked by its server (a
    process of another harness in that block can only start after that server ends)."""
    evaluation = prepare_evaluation(programs, tasks, **options)
    last = [0.0]

    def on_run(run) -> None:
        evaluation.record(run)
        last[0] = time.clock_gettime(time.CLOCK_BOOTTIME)

    report = run_sandbox(evaluation.work, on_run)
    return evaluation.results(), report, last[0]


# Barriers between the test and programs running in the sandbox, which can reach nothing
# of the test's: the program blocks SIGUSR1, names its process (seen in the host's /proc),
# then waits for the test to send it SIGUSR1.
BARRIER = """
import ctypes as _ctypes, signal as _signal
def barrier(name):
    _signal.pthread_sigmask(_signal.SIG_BLOCK, {_signal.SIGUSR1})
    _ctypes.CDLL(None).prctl(15, name.encode(), 0, 0, 0)  # PR_SET_NAME
    _signal.sigwait({_signal.SIGUSR1})
"""


def barrier_name(prefix: str) -> str:
    """A process name no other test on the machine uses (at most 15 characters)."""
    return prefix + os.urandom(4).hex()


def processes_named(name: str) -> list[int]:
    found = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open(f"/proc/{pid}/comm") as f:
                    if f.read().strip() == name:
                        found.append(int(pid))
            except OSError:
                pass
    return found


def wait_for(condition, what: str, deadline_s: float = 120.0) -> None:
    """Poll ``condition`` until it holds; fail the test saying ``what`` never happened (the
    deadline only ends a test that is broken, it times nothing)."""
    deadline = time.monotonic() + deadline_s
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"never happened: {what}")
        time.sleep(0.02)


def release(name: str) -> None:
    """Let every program waiting at the barrier ``name`` go on."""
    for pid in processes_named(name):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGUSR1)


def release_in_order(waiting: dict[str, int], first: str, then: str, what: str) -> None:
    """Once ``waiting[name]`` programs wait at each barrier ``name`` (``what``: all of them
    running at once), release ``first``, wait until those are gone, then release ``then``."""
    wait_for(lambda: all(len(processes_named(n)) == k for n, k in waiting.items()), what)
    release(first)
    wait_for(lambda: not processes_named(first), f"the programs at {first} done")
    release(then)


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

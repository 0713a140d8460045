"""The harness's side of the sandbox fork server (:mod:`.sandbox.server`): start it on
some :class:`SandboxWork` (jobs, their tasks' checks, limits: never an expected value),
hand on each run it reports as it arrives, and run again, in a new server, what a server
that died or stalled, or a process that failed before its program started, left without
a run. Judging is the caller's (:class:`~.harness.Evaluation`), wherever this runs.

No Kedro import: plain library code.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import select
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from ilf_kedro.execution.sandbox.records import Config, Job, ProgramRun, TaskSpec
from ilf_kedro.execution.verdicts import not_run

logger = logging.getLogger(__name__)

SERVER_SCRIPT = Path(__file__).with_name("sandbox") / "__main__.py"
MAX_RESTARTS = 2

_warned = False


class SandboxError(RuntimeError):
    """The sandbox could not run some programs, so they have no verdict (never a guess)."""


def _scrubbed_env() -> dict:
    # The server and its programs get nothing of the parent's environment (tokens, keys).
    return {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}


class _ServerDied(RuntimeError):
    pass


@dataclasses.dataclass(frozen=True)
class SandboxWork:
    """All a sandbox is given to run some programs: the jobs, their tasks' specs (setup
    code and checks: for an assert judged in the harness, only the calls to make; no
    expected value) and the limits. What ``compute.backend: ray`` sends to a node."""

    jobs: tuple[Job, ...]  # the longest time limit first
    specs: dict[str, TaskSpec]  # by the jobs' task_id
    config: Config
    stall_s: float  # a server silent this long is dead

    def shards(self, size: int) -> list[SandboxWork]:
        """The jobs in shards of ``size`` consecutive rows, each with only its tasks'
        specs (and the jobs of each still longest time limit first)."""
        by_row = sorted(self.jobs, key=lambda j: j.row)
        shards = []
        for start in range(0, len(by_row), size):
            jobs = longest_first(by_row[start : start + size])
            specs = {tid: self.specs[tid] for tid in {j.task_id for j in jobs}}
            shards.append(dataclasses.replace(self, jobs=tuple(jobs), specs=specs))
        return shards


def longest_first(jobs: Iterable[Job]) -> list[Job]:
    """``jobs``, the longest time limit (slowest gold program) first, so a slow task does
    not end up alone at the end of the run while the other CPUs idle."""
    return sorted(jobs, key=lambda j: -j.time_limit_s)


def _run_server(
    jobs: list[Job], specs: dict[str, TaskSpec], config: Config, on_result, stall_s: float
) -> dict:
    """Start one fork server for ``jobs`` and feed each :class:`ProgramRun` it reports to
    ``on_result``. Only the tasks' :class:`TaskSpec` (no expected values) are sent.

    Returns the server's isolation report. Raises _ServerDied if the server exits or stalls
    before reporting every job (the caller retries the rest).
    """
    fd, path = tempfile.mkstemp(prefix="ilf-jobs-", suffix=".json")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        sent = {
            tid: {
                "setup": specs[tid].setup,
                "checks": [c._asdict() for c in specs[tid].checks],
                "tolerant": specs[tid].tolerant,
            }
            for tid in {j.task_id for j in jobs}
        }
        json.dump(
            {
                "config": dataclasses.asdict(config),
                "tasks": sent,
                "jobs": [j._asdict() for j in jobs],
            },
            f,
        )
    proc = subprocess.Popen(
        [sys.executable, "-I", "-S", str(SERVER_SCRIPT), path],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=_scrubbed_env(),
        cwd="/",
        start_new_session=True,  # the server's programs cannot signal our process group
        close_fds=True,
    )
    report: dict = {}
    done = False
    try:
        partial: list[bytes] = []  # a line not yet complete, in chunks (a run of megabytes)
        last = time.monotonic()
        stdout_fd = proc.stdout.fileno()
        while not done:
            ready, _, _ = select.select([stdout_fd], [], [], 1.0)
            if not ready:
                if time.monotonic() - last > stall_s:
                    raise _ServerDied(f"sandbox server stalled for {stall_s:.0f} s")
                continue
            chunk = os.read(stdout_fd, 1 << 20)
            if not chunk:
                break
            last = time.monotonic()
            if b"\n" not in chunk:
                partial.append(chunk)
                continue
            first, *lines, rest = chunk.split(b"\n")
            lines.insert(0, b"".join([*partial, first]))
            partial = [rest] if rest else []
            for line in lines:
                msg = json.loads(line)
                if "row" in msg:
                    on_result(ProgramRun(**msg))
                elif "hello" in msg:
                    report = msg["hello"]
                elif msg.get("done"):
                    done = True
    finally:
        if proc.poll() is None and not done:
            proc.kill()
        try:
            _, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
        with contextlib.suppress(OSError):
            os.unlink(path)
    if not done:
        tail = err.decode("utf-8", "replace")[-2000:]
        raise _ServerDied(f"sandbox server exited with code {proc.returncode}: {tail}")
    return report


def warn_if_weak(report: dict) -> None:
    """Warn, once per process, when a server said its isolation is weaker than intended."""
    global _warned
    if report.get("warnings") and not _warned:
        _warned = True
        logger.warning(
            "ilf_kedro.execution: sandbox isolation is weaker than intended on this machine: "
            "%s. Verdicts are still computed with rlimits, timeouts and process-group kills.",
            "; ".join(report["warnings"]),
        )


def run_sandbox(work: SandboxWork, on_run: Callable[[ProgramRun], None]) -> dict:
    """Run every job of ``work`` in a sandbox fork server and hand ``on_run`` the
    :class:`ProgramRun` of each program that ran, once per row, as it ends. Needs no
    plan (no expected value): what it hands on is what the programs' processes wrote,
    their values encoded by :mod:`~ilf_kedro.execution.sandbox.wire`, plus how they ended.

    A program the sandbox could not run (its server died or stalled, or its process failed
    before the program started) is run again in a new server, up to ``MAX_RESTARTS``
    times, after which :class:`SandboxError` names the cause. Returns the server's
    isolation report.
    """
    ran: set[int] = set()
    causes: dict[int, str] = {}

    def on_result(run: ProgramRun) -> None:
        reason = not_run(run)
        if reason is not None:
            causes[run.row] = reason
        elif run.row not in ran:
            ran.add(run.row)
            on_run(run)

    cause, report = "", {}
    for attempt in range(MAX_RESTARTS + 1):
        todo = [j for j in work.jobs if j.row not in ran]
        if not todo:
            break
        if attempt:
            logger.warning(
                "%s (attempt %d); running %d program(s) again", cause, attempt, len(todo)
            )
        causes.clear()
        try:
            report = _run_server(todo, work.specs, work.config, on_result, work.stall_s)
        except _ServerDied as exc:
            cause = str(exc)
        else:
            cause = next(iter(causes.values()), "")
    missing = [j for j in work.jobs if j.row not in ran]
    if missing:
        raise SandboxError(
            f"the sandbox could not run {len(missing)} of {len(work.jobs)} program(s) in "
            f"{MAX_RESTARTS + 1} attempts (e.g. row {missing[0].row}, task "
            f"{missing[0].task_id!r}): {cause}"
        )
    return report

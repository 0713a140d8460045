"""The harness's side of the sandbox fork server (:mod:`.sandbox.server`): start it on a
batch of jobs, judge each run it reports as it arrives (:func:`.verdicts.judge`), and run
again, in a new server, what a server that died or stalled left without a verdict.

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
from pathlib import Path

from ilf_kedro.execution.sandbox.records import Config, Job, ProgramRun
from ilf_kedro.execution.verdicts import ProgramNotRun, TaskPlan, Verdict, judge

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


def _run_server(
    jobs: list[Job], plans: dict[str, TaskPlan], config: Config, on_result, stall_s: float
) -> dict:
    """Start one fork server for ``jobs`` and feed each :class:`ProgramRun` it reports to
    ``on_result``. Only the plans' :class:`TaskSpec` (no expected values) are sent.

    Returns the server's isolation report. Raises _ServerDied if the server exits or stalls
    before reporting every job (the caller retries the rest).
    """
    fd, path = tempfile.mkstemp(prefix="ilf-jobs-", suffix=".json")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        specs = {
            tid: {
                "setup": plans[tid].spec.setup,
                "checks": [c._asdict() for c in plans[tid].spec.checks],
                "tolerant": plans[tid].spec.tolerant,
            }
            for tid in {j.task_id for j in jobs}
        }
        json.dump(
            {
                "config": dataclasses.asdict(config),
                "tasks": specs,
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
        buf = b""
        last = time.monotonic()
        stdout_fd = proc.stdout.fileno()
        while not done:
            ready, _, _ = select.select([stdout_fd], [], [], 1.0)
            if not ready:
                if time.monotonic() - last > stall_s:
                    raise _ServerDied(f"sandbox server stalled for {stall_s:.0f} s")
                continue
            chunk = os.read(stdout_fd, 1 << 16)
            if not chunk:
                break
            last = time.monotonic()
            buf += chunk
            *lines, buf = buf.split(b"\n")
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


def _warn_once(report: dict) -> None:
    global _warned
    if report.get("warnings") and not _warned:
        _warned = True
        logger.warning(
            "ilf_kedro.execution: sandbox isolation is weaker than intended on this machine: "
            "%s. Verdicts are still computed with rlimits, timeouts and process-group kills.",
            "; ".join(report["warnings"]),
        )


def run_jobs(
    jobs: list[Job], plans: dict[str, TaskPlan], config: Config, stall_s: float, progress: bool
) -> list[Verdict]:
    """The verdict of every job, by row, judged as the fork server reports each run.

    A program the sandbox could not run (its server died or stalled, or its process failed
    before the program started) has no verdict: it is run again in a new server, up to
    ``MAX_RESTARTS`` times, after which :class:`SandboxError` names the cause.
    """
    verdicts: list[Verdict | None] = [None] * len(jobs)
    causes: dict[int, str] = {}
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(jobs), desc="Running tests", unit="prog", mininterval=0.5)
    jobs_by_row = {j.row: j for j in jobs}

    def on_result(run: ProgramRun) -> None:
        plan = plans[jobs_by_row[run.row].task_id]
        try:
            verdict = judge(plan, run, config.max_message_chars)
        except ProgramNotRun as exc:
            causes[run.row] = str(exc)
            return
        if verdicts[run.row] is None and bar is not None:
            bar.update(1)
        verdicts[run.row] = verdict

    cause = ""
    try:
        for attempt in range(MAX_RESTARTS + 1):
            todo = [j for j in jobs if verdicts[j.row] is None]
            if not todo:
                break
            if attempt:
                logger.warning(
                    "%s (attempt %d); running %d program(s) again", cause, attempt, len(todo)
                )
            causes.clear()
            try:
                report = _run_server(todo, plans, config, on_result, stall_s)
                _warn_once(report)
            except _ServerDied as exc:
                cause = str(exc)
            else:
                cause = next(iter(causes.values()), "")
    finally:
        if bar is not None:
            bar.close()
    missing = [j for j in jobs if verdicts[j.row] is None]
    if missing:
        raise SandboxError(
            f"the sandbox could not run {len(missing)} of {len(jobs)} program(s) in "
            f"{MAX_RESTARTS + 1} attempts (e.g. row {missing[0].row}, task "
            f"{missing[0].task_id!r}): {cause}"
        )
    return verdicts

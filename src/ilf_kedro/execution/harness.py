"""Run programs against their tasks' unit tests in the sandbox fork server; return verdicts.

No Kedro import: this is library code. See :func:`evaluate_programs`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import math
import os
import select
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from ilf_kedro.execution.asserts import bound_names
from ilf_kedro.execution.sandbox.records import UID_BLOCK, Config, Job, ProgramRun
from ilf_kedro.execution.verdicts import ProgramNotRun, TaskPlan, Verdict, judge, plan_task
from ilf_kedro.parameters import Execution, section

logger = logging.getLogger(__name__)

SERVER_SCRIPT = Path(__file__).with_name("sandbox") / "__main__.py"
STATUSES = ("passed", "failed", "error", "timeout", "crashed")
# How a task's numbers compare (its ``equality`` column; absent or NaN: "tolerant", the
# paper's MBPP scripts): "tolerant" with rel 1e-6 / abs 1e-12, "exact" as HumanEval's
# official harness does.
EQUALITIES = ("tolerant", "exact")
RESULT_COLUMNS = ("passed", "status", "error_type", "error_message", "duration_s", "trusted")

# The harness's own bounds (the settings a run configures are the ``Execution`` model's).
MAX_MESSAGE_CHARS = 500
MAX_OUTPUT_CHARS = 2000
_MAX_RESTARTS = 2

_warned = False


def available_workers() -> int:
    """CPUs this process may run on (affinity-aware)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - non-Linux
        return max(1, os.cpu_count() or 1)


def _scrubbed_env() -> dict:
    # The server and its programs get nothing of the parent's environment (tokens, keys).
    return {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}


def _task_plans(tasks: pd.DataFrame, needed: Iterable) -> dict[str, TaskPlan]:
    for col in ("task_id", "tests"):
        if col not in tasks.columns:
            raise ValueError(f"tasks needs a {col!r} column")
    t = tasks.drop_duplicates("task_id").set_index("task_id")
    missing = sorted(set(needed) - set(t.index))
    if missing:
        raise ValueError(f"programs refer to task ids missing from tasks: {missing[:20]}")
    wanted = t.loc[list(set(needed))]  # one lookup, not one .loc per task
    setups = wanted["test_setup_code"] if "test_setup_code" in t.columns else None
    equality = wanted["equality"] if "equality" in t.columns else None
    if equality is not None:
        bad = sorted({str(e) for e in equality.dropna() if e not in EQUALITIES})
        if bad:
            raise ValueError(f"tasks column 'equality' has {bad}; allowed: {list(EQUALITIES)}")
    plans = {}
    for i, (tid, tests) in enumerate(zip(wanted.index, wanted["tests"], strict=True)):
        setup = setups.iat[i] if setups is not None else ""
        setup = "" if not isinstance(setup, str) else setup
        tests = [str(x) for x in list(tests)] if tests is not None else []
        exact = equality is not None and equality.iat[i] == "exact"
        plans[str(tid)] = plan_task(tests, setup, tolerant=not exact)
    return plans


def _with_verdicts(programs: pd.DataFrame, verdicts: list[Verdict], keep_output: bool):
    """``programs`` plus one verdict column per field, rows in order."""
    result = programs.copy()
    dtypes = {"passed": bool, "duration_s": "float64", "trusted": bool}
    for name in (*RESULT_COLUMNS, "output") if keep_output else RESULT_COLUMNS:
        values = [getattr(v, name) for v in verdicts]
        result[name] = pd.Series(values, index=result.index, dtype=dtypes.get(name, object))
    return result


class _ServerDied(RuntimeError):
    pass


class SandboxError(RuntimeError):
    """The sandbox could not run some programs, so they have no verdict (never a guess)."""


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


def evaluate_programs(
    programs: pd.DataFrame,
    tasks: pd.DataFrame,
    execution: Execution | Mapping[str, Any] | None = None,
    *,
    keep_output: bool = False,
    max_message_chars: int = MAX_MESSAGE_CHARS,
    max_output_chars: int = MAX_OUTPUT_CHARS,
    namespaces: bool = True,
    **overrides: Any,
) -> pd.DataFrame:
    """Run every program against its task's asserts in an isolated child; return verdicts.

    Args:
        programs: one row per program, with at least ``task_id`` and ``program`` (the whole
            program text: prompt plus completion). Other columns are carried through.
        tasks: the tasks dataset: ``task_id``, ``tests`` (list of assert strings) and
            ``test_setup_code``; an optional ``equality`` column (see below); an optional
            ``time_limit_s`` column (e.g. from :func:`calibrate_time_limits`) gives
            per-task wall-clock limits, NaN or absent means ``timeout_s``.
        execution: the ``execution`` parameters (``ilf_kedro.parameters.Execution``: their
            defaults and rules); ``overrides`` (e.g. ``timeout_s=1``) replace some of them.
            ``timeout_s``: wall-clock limit in seconds for tasks without their own limit;
            ``workers``: programs running on CPU at once (None: one per available CPU);
            ``progress``: a tqdm progress bar; ``memory_mb``: address-space limit per
            program (RLIMIT_AS); ``max_processes``: processes/threads a program may have
            (RLIMIT_NPROC, per program when running as root); ``max_file_mb``: largest
            file a program may write (RLIMIT_FSIZE); ``max_result_bytes``: largest
            encoding of the values one assert's calls hand back. Its ``compute`` is not
            read here (``evaluate_node`` dispatches on it).
        keep_output: add an ``output`` column with the program's captured stdout+stderr
            (at most ``max_output_chars`` characters).
        max_message_chars: bound on ``error_message``.
        namespaces: use Linux namespaces when available (False forces the fallback).

    Returns:
        A copy of ``programs`` (same index and order, one row per input row) plus
        ``passed`` (bool), ``status`` (passed | failed | error | timeout | crashed),
        ``error_type`` (e.g. AssertionError, NotPlainData, NameError, Timeout, SIGSEGV,
        EarlyExit; None when passed), ``error_message`` (bounded; None when passed),
        ``duration_s`` (wall-clock seconds of the child), ``trusted`` (True when every
        assert of the task was judged outside the program's process) and optionally
        ``output``.

    A program passes only if the program, then ``test_setup_code``, then every assert ran
    to the end and held. An assert made of calls of the program, literals, arithmetic,
    comparisons and truth tests is judged here (:mod:`ilf_kedro.execution.asserts`): the
    program's process hands back the calls' values by their contents
    (:mod:`ilf_kedro.execution.sandbox.wire`) and the assert is evaluated in this process
    with Python's ``==``, numbers as the task's ``equality`` column says: "tolerant"
    (MBPP, the default: rel 1e-6, abs 1e-12) or "exact" (HumanEval). Other asserts run in
    the program's process with the same semantics (``trusted`` False). Exiting early
    (sys.exit, os._exit, SystemExit) is not a pass. Programs that time out keep a CPU slot
    only while they use it: one that sleeps or blocks, or still runs after half its limit
    (reniced), lets others start, up to 4x ``workers`` programs in flight.

    Raises:
        SandboxError: the sandbox could not run some program (its server kept dying, or
            the program's process failed before the program started) even when run
            again: such a program has no verdict, so none is made up.
    """
    settings = section(Execution, execution, "execution", **overrides)
    for col in ("task_id", "program"):
        if col not in programs.columns:
            raise ValueError(f"programs needs a {col!r} column")
    if len(programs) == 0:
        return _with_verdicts(programs, [], keep_output)
    workers = settings.workers or available_workers()
    task_ids = programs["task_id"].tolist()
    plans = _task_plans(tasks, task_ids)
    limits = _time_limits(tasks, set(task_ids), settings.timeout_s)
    jobs = _make_jobs(task_ids, programs["program"].tolist(), limits)
    jobs = _own_builtins(jobs, plans)
    config = Config(
        workers=workers,
        max_inflight=min(4 * workers, UID_BLOCK),
        memory_mb=settings.memory_mb,
        max_processes=settings.max_processes,
        max_file_mb=settings.max_file_mb,
        max_message_chars=int(max_message_chars),
        max_output_chars=int(max_output_chars) if keep_output else 0,
        max_result_bytes=settings.max_result_bytes,
        namespaces=bool(namespaces),
    )
    stall_s = max(limits.values()) + 60.0
    verdicts = _run_jobs(jobs, plans, config, stall_s, settings.progress)
    return _with_verdicts(programs, verdicts, keep_output)


def _own_builtins(jobs: list[Job], plans: dict[str, TaskPlan]) -> list[Job]:
    """A program that defines a function named like a built-in its task's asserts call
    (MBPP 126 asks for ``sum``) gets a plan of its own, in which that call is its own."""
    out = []
    for job in jobs:
        plan = plans[job.task_id]
        names = plan.builtins and plan.builtins & bound_names([job.program])
        if names:
            key = f"{job.task_id}\x00{','.join(sorted(names))}"
            if key not in plans:
                plans[key] = plan_task(
                    plan.texts, plan.spec.setup, plan.spec.tolerant, frozenset(names)
                )
            job = job._replace(task_id=key)
        out.append(job)
    return out


def _make_jobs(task_ids: list, texts: list, limits: dict[str, float]) -> list[Job]:
    """One :class:`Job` per program row (a non-string program runs as empty text), the
    longest time limit first."""
    jobs = [
        Job(row, str(tid), text if isinstance(text, str) else "", limits[str(tid)])
        for row, (tid, text) in enumerate(zip(task_ids, texts, strict=True))
    ]
    # Longest limit (slowest gold program) first, so a slow task does not end up alone at
    # the end of the run while the other CPUs idle.
    jobs.sort(key=lambda j: -j.time_limit_s)
    return jobs


def _run_jobs(
    jobs: list[Job], plans: dict[str, TaskPlan], config: Config, stall_s: float, progress: bool
) -> list[Verdict]:
    """The verdict of every job, by row, judged as the fork server reports each run.

    A program the sandbox could not run (its server died or stalled, or its process failed
    before the program started) has no verdict: it is run again in a new server, up to
    ``_MAX_RESTARTS`` times, after which :class:`SandboxError` names the cause.
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
        for attempt in range(_MAX_RESTARTS + 1):
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
            f"{_MAX_RESTARTS + 1} attempts (e.g. row {missing[0].row}, task "
            f"{missing[0].task_id!r}): {cause}"
        )
    return verdicts


def _time_limits(tasks: pd.DataFrame, task_ids: set, timeout_s: float) -> dict[str, float]:
    """Per task id (as str): its ``time_limit_s`` when the tasks frame has one, else
    ``timeout_s``."""
    limits = {str(t): float(timeout_s) for t in task_ids}
    if "time_limit_s" in tasks.columns:
        per_task = tasks.drop_duplicates("task_id").set_index("task_id")["time_limit_s"]
        for tid in task_ids:
            value = per_task.get(tid)
            if value is not None and not (isinstance(value, float) and math.isnan(value)):
                limits[str(tid)] = float(value)
    return limits


TIME_LIMIT_COLUMNS = ("task_id", "time_limit_s", "gold_duration_s")


def calibrate_time_limits(
    tasks: pd.DataFrame,
    execution: Execution | Mapping[str, Any] | None = None,
    *,
    repeats: int = 1,
    progress: bool = False,
    **overrides: Any,
) -> pd.DataFrame:
    """Per-task wall-clock limits, EvalPlus style:
    ``max(time_limit_floor_s, time_limit_factor * gold run time)``.

    The gold program (``tasks["gold_code"]``) of each task is run through
    :func:`evaluate_programs` itself (same isolation and load: ``execution``, with
    ``overrides`` applied, as there; ``workers`` in parallel) ``repeats`` times with a
    generous limit, ``calibration_timeout_s``; the slowest run counts. A gold program that
    times out gets ``max(time_limit_floor_s, calibration_timeout_s)``; one that fails is
    still timed, and logged, since a limit is needed either way. ``progress``: a progress
    bar (whatever ``execution.progress`` says).

    Returns:
        One row per task: ``task_id``, ``time_limit_s`` and ``gold_duration_s`` (the
        slowest gold run, seconds), in the order of ``tasks``.
    """
    settings = section(Execution, execution, "execution", **overrides)
    floor_s, timeout_s = settings.time_limit_floor_s, settings.calibration_timeout_s
    if "gold_code" not in tasks.columns:
        raise ValueError("tasks needs a 'gold_code' column to calibrate time limits")
    base = tasks.drop_duplicates("task_id").drop(columns=["time_limit_s"], errors="ignore")
    if len(base) == 0:
        return pd.DataFrame(
            {
                "task_id": base["task_id"],
                "time_limit_s": pd.Series(dtype="float64"),
                "gold_duration_s": pd.Series(dtype="float64"),
            }
        )
    programs = pd.DataFrame(
        {
            "task_id": list(base["task_id"]) * repeats,
            "program": list(base["gold_code"]) * repeats,
        }
    )
    res = evaluate_programs(programs, base, settings, timeout_s=timeout_s, progress=progress)
    bad = res.loc[~res["passed"], "task_id"].unique().tolist()
    if bad:
        logger.warning("gold programs that do not pass during calibration: %s", bad[:50])
    slowest = res.groupby("task_id", sort=False)["duration_s"].max()
    timed_out = res.loc[res["status"] == "timeout", "task_id"].unique()
    limits = (slowest * settings.time_limit_factor).clip(lower=floor_s)
    limits.loc[limits.index.isin(timed_out)] = max(floor_s, timeout_s)
    order = base["task_id"]
    return pd.DataFrame(
        {
            "task_id": order.to_numpy(),
            "time_limit_s": limits.reindex(order).to_numpy(dtype="float64"),
            "gold_duration_s": slowest.reindex(order).to_numpy(dtype="float64"),
        }
    )

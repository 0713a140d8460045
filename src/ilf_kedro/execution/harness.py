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
from collections.abc import Callable, Iterable
from pathlib import Path

import pandas as pd

from ilf_kedro.execution.asserts import bound_names
from ilf_kedro.execution.sandbox.records import UID_BLOCK, Config, Job, ProgramRun, TaskSpec
from ilf_kedro.execution.verdicts import (
    ProgramNotRun,
    TaskPlan,
    Verdict,
    judge,
    not_run,
    plan_task,
)

logger = logging.getLogger(__name__)

SERVER_SCRIPT = Path(__file__).with_name("sandbox") / "__main__.py"
STATUSES = ("passed", "failed", "error", "timeout", "crashed")
# How a task's numbers compare (its ``equality`` column; absent or NaN: "tolerant", the
# paper's MBPP scripts): "tolerant" with rel 1e-6 / abs 1e-12, "exact" as HumanEval's
# official harness does.
EQUALITIES = ("tolerant", "exact")
RESULT_COLUMNS = ("passed", "status", "error_type", "error_message", "duration_s", "trusted")

DEFAULT_MEMORY_MB = 2048
DEFAULT_MAX_PROCESSES = 64
DEFAULT_MAX_FILE_MB = 16
DEFAULT_MAX_MESSAGE = 500
DEFAULT_MAX_OUTPUT = 2000
DEFAULT_MAX_RESULT_BYTES = 1 << 16
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
    *,
    timeout_s: float = 3.0,
    workers: int | None = None,
    progress: bool = True,
    memory_mb: int = DEFAULT_MEMORY_MB,
    max_processes: int = DEFAULT_MAX_PROCESSES,
    max_file_mb: int = DEFAULT_MAX_FILE_MB,
    max_message_chars: int = DEFAULT_MAX_MESSAGE,
    keep_output: bool = False,
    max_output_chars: int = DEFAULT_MAX_OUTPUT,
    max_result_bytes: int = DEFAULT_MAX_RESULT_BYTES,
    namespaces: bool = True,
) -> pd.DataFrame:
    """Run every program against its task's asserts in an isolated child; return verdicts.

    Args:
        programs: one row per program, with at least ``task_id`` and ``program`` (the whole
            program text: prompt plus completion). Other columns are carried through.
        tasks: the tasks dataset: ``task_id``, ``tests`` (list of assert strings) and
            ``test_setup_code``; an optional ``equality`` column (see below); an optional
            ``time_limit_s`` column (e.g. from :func:`calibrate_time_limits`) gives
            per-task wall-clock limits, NaN or absent means ``timeout_s``.
        timeout_s: wall-clock limit in seconds for tasks without their own limit.
        workers: programs running on CPU at once; None means one per available CPU.
        progress: show a tqdm progress bar.
        memory_mb: address-space limit per program (RLIMIT_AS).
        max_processes: processes/threads a program may have (RLIMIT_NPROC, per program
            when running as root).
        max_file_mb: largest file a program may write (RLIMIT_FSIZE).
        max_message_chars: bound on ``error_message``.
        keep_output: add an ``output`` column with the program's captured stdout+stderr
            (at most ``max_output_chars`` characters).
        max_result_bytes: largest encoding of the values one assert's calls hand back.
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

    In steps: :func:`prepare_evaluation` plans the tasks here and makes the sandbox's
    work, which holds no expected value; :func:`run_sandbox` runs it (here; on a Ray
    node with ``compute.backend: ray``); :meth:`Evaluation.record` judges each run here.

    Raises:
        SandboxError: the sandbox could not run some program (its server kept dying, or
            the program's process failed before the program started) even when run
            again: such a program has no verdict, so none is made up.
    """
    evaluation = prepare_evaluation(
        programs,
        tasks,
        timeout_s=timeout_s,
        workers=workers,
        memory_mb=memory_mb,
        max_processes=max_processes,
        max_file_mb=max_file_mb,
        max_message_chars=max_message_chars,
        keep_output=keep_output,
        max_output_chars=max_output_chars,
        max_result_bytes=max_result_bytes,
        namespaces=namespaces,
    )
    if not evaluation.work.jobs:
        return evaluation.results()
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(programs), desc="Running tests", unit="prog", mininterval=0.5)

    def on_run(run: ProgramRun) -> None:
        evaluation.record(run)
        if bar is not None:
            bar.update(1)

    try:
        evaluation.note_isolation(run_sandbox(evaluation.work, on_run))
    finally:
        if bar is not None:
            bar.close()
    return evaluation.results()


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
            jobs = _longest_first(by_row[start : start + size])
            specs = {tid: self.specs[tid] for tid in {j.task_id for j in jobs}}
            shards.append(dataclasses.replace(self, jobs=tuple(jobs), specs=specs))
        return shards


class Evaluation:
    """One evaluation split where the expected values must not go: :attr:`work` for the
    sandbox (it holds none), and the tasks' plans, which judge what the sandbox reports
    (:meth:`record`) in this process. Made by :func:`prepare_evaluation`."""

    def __init__(
        self,
        programs: pd.DataFrame,
        plans: dict[str, TaskPlan],
        work: SandboxWork,
        keep_output: bool,
    ) -> None:
        self.programs, self.work, self.keep_output = programs, work, keep_output
        self._plans = plans
        self._tasks = {j.row: j.task_id for j in work.jobs}
        self._verdicts: list[Verdict | None] = [None] * len(programs)

    def record(self, run: ProgramRun) -> Verdict:
        """Judge ``run`` (what the sandbox saw of one program) and keep its verdict."""
        plan = self._plans[self._tasks[run.row]]
        try:
            verdict = judge(plan, run, self.work.config.max_message_chars)
        except ProgramNotRun as exc:  # the sandbox's side re-runs these; it did not
            raise SandboxError(f"row {run.row}: {exc}") from exc
        self._verdicts[run.row] = verdict
        return verdict

    def note_isolation(self, report: dict) -> None:
        """Warn (once per process) when a sandbox said its isolation is weaker."""
        _warn_once(report)

    def results(self) -> pd.DataFrame:
        """``programs`` plus the verdict columns, rows in order (see
        :func:`evaluate_programs`); SandboxError if some program has no verdict."""
        missing = [row for row, v in enumerate(self._verdicts) if v is None]
        if missing:
            raise SandboxError(f"{len(missing)} program(s) have no verdict (e.g. row {missing[0]})")
        return _with_verdicts(self.programs, self._verdicts, self.keep_output)


def prepare_evaluation(
    programs: pd.DataFrame,
    tasks: pd.DataFrame,
    *,
    timeout_s: float = 3.0,
    workers: int | None = None,
    memory_mb: int = DEFAULT_MEMORY_MB,
    max_processes: int = DEFAULT_MAX_PROCESSES,
    max_file_mb: int = DEFAULT_MAX_FILE_MB,
    max_message_chars: int = DEFAULT_MAX_MESSAGE,
    keep_output: bool = False,
    max_output_chars: int = DEFAULT_MAX_OUTPUT,
    max_result_bytes: int = DEFAULT_MAX_RESULT_BYTES,
    namespaces: bool = True,
) -> Evaluation:
    """The :class:`Evaluation` of ``programs``, with :func:`evaluate_programs`'s
    arguments (``workers``: programs at once in each sandbox server). Nothing runs yet:
    :func:`run_sandbox` runs its ``work``, here or on another machine, and what it
    reports is judged by :meth:`Evaluation.record` here."""
    for col in ("task_id", "program"):
        if col not in programs.columns:
            raise ValueError(f"programs needs a {col!r} column")
    workers = available_workers() if workers is None else max(1, int(workers))
    config = Config(
        workers=workers,
        max_inflight=min(4 * workers, UID_BLOCK),
        memory_mb=int(memory_mb),
        max_processes=int(max_processes),
        max_file_mb=int(max_file_mb),
        max_message_chars=int(max_message_chars),
        max_output_chars=int(max_output_chars) if keep_output else 0,
        max_result_bytes=int(max_result_bytes),
        namespaces=bool(namespaces),
    )
    if len(programs) == 0:
        return Evaluation(programs, {}, SandboxWork((), {}, config, 60.0), keep_output)
    task_ids = programs["task_id"].tolist()
    plans = _task_plans(tasks, task_ids)
    limits = _time_limits(tasks, set(task_ids), timeout_s)
    jobs = _make_jobs(task_ids, programs["program"].tolist(), limits)
    jobs = _own_builtins(jobs, plans)
    specs = {tid: plans[tid].spec for tid in {j.task_id for j in jobs}}
    work = SandboxWork(tuple(jobs), specs, config, stall_s=max(limits.values()) + 60.0)
    return Evaluation(programs, plans, work, keep_output)


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
    return _longest_first(
        Job(row, str(tid), text if isinstance(text, str) else "", limits[str(tid)])
        for row, (tid, text) in enumerate(zip(task_ids, texts, strict=True))
    )


def _longest_first(jobs: Iterable[Job]) -> list[Job]:
    # Longest limit (slowest gold program) first, so a slow task does not end up alone at
    # the end of the run while the other CPUs idle.
    return sorted(jobs, key=lambda j: -j.time_limit_s)


def run_sandbox(work: SandboxWork, on_run: Callable[[ProgramRun], None]) -> dict:
    """Run every job of ``work`` in a sandbox fork server and hand ``on_run`` the
    :class:`ProgramRun` of each program that ran, once per row, as it ends. Needs no
    plan (no expected value): what it hands on is what the programs' processes wrote,
    their values encoded by :mod:`~ilf_kedro.execution.sandbox.wire`, plus how they ended.

    A program the sandbox could not run (its server died or stalled, or its process failed
    before the program started) is run again in a new server, up to ``_MAX_RESTARTS``
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
    for attempt in range(_MAX_RESTARTS + 1):
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
            f"{_MAX_RESTARTS + 1} attempts (e.g. row {missing[0].row}, task "
            f"{missing[0].task_id!r}): {cause}"
        )
    return report


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
    *,
    floor_s: float = 3.0,
    factor: float = 4.0,
    timeout_s: float = 60.0,
    repeats: int = 1,
    workers: int | None = None,
    progress: bool = False,
    **evaluate_kwargs,
) -> pd.DataFrame:
    """Per-task wall-clock limits, EvalPlus style: ``max(floor_s, factor * gold run time)``.

    The gold program (``tasks["gold_code"]``) of each task is run through
    :func:`evaluate_programs` itself (same isolation and load: ``workers`` in parallel)
    ``repeats`` times with a generous ``timeout_s``; the slowest run counts. A gold program
    that times out gets ``max(floor_s, timeout_s)``; one that fails is still timed, and
    logged, since a limit is needed either way.

    Returns:
        One row per task: ``task_id``, ``time_limit_s`` and ``gold_duration_s`` (the
        slowest gold run, seconds), in the order of ``tasks``.
    """
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
    res = evaluate_programs(
        programs,
        base,
        timeout_s=timeout_s,
        workers=workers,
        progress=progress,
        **evaluate_kwargs,
    )
    bad = res.loc[~res["passed"], "task_id"].unique().tolist()
    if bad:
        logger.warning("gold programs that do not pass during calibration: %s", bad[:50])
    slowest = res.groupby("task_id", sort=False)["duration_s"].max()
    timed_out = res.loc[res["status"] == "timeout", "task_id"].unique()
    limits = (slowest * factor).clip(lower=floor_s)
    limits.loc[limits.index.isin(timed_out)] = max(floor_s, timeout_s)
    order = base["task_id"]
    return pd.DataFrame(
        {
            "task_id": order.to_numpy(),
            "time_limit_s": limits.reindex(order).to_numpy(dtype="float64"),
            "gold_duration_s": slowest.reindex(order).to_numpy(dtype="float64"),
        }
    )

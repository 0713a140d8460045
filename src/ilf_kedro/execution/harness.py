"""Run programs against their tasks' unit tests in the sandbox fork server; return verdicts.

What is run: one job per program, with its task's plan (the checks the sandbox runs, the
expected values the harness keeps) and time limit. :func:`prepare_evaluation` splits
them: the sandbox's work (:class:`~.sandbox_client.SandboxWork`: jobs, checks, limits, no
expected value) goes to the fork server (:mod:`.sandbox_client`), here or on a Ray node,
and the :class:`Evaluation` keeps the plans and judges each run the server reports; the
verdicts come back as columns beside the programs.

No Kedro import: this is library code. See :func:`evaluate_programs`.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd

from ilf_kedro.execution.asserts import bound_names
from ilf_kedro.execution.sandbox.records import UID_BLOCK, Config, Job, ProgramRun
from ilf_kedro.execution.sandbox_client import (
    SandboxError,
    SandboxWork,
    longest_first,
    run_sandbox,
    warn_if_weak,
)
from ilf_kedro.execution.verdicts import ProgramNotRun, TaskPlan, Verdict, judge, plan_task
from ilf_kedro.parameters import Execution, section

logger = logging.getLogger(__name__)

# "harness_limit": the harness reached one of its own limits (a value over
# ``max_result_bytes``, a judge's bound) and made no verdict on the program.
STATUSES = ("passed", "failed", "error", "timeout", "crashed", "harness_limit")
# How a task's numbers compare (its ``equality`` column; absent or NaN: "tolerant", the
# paper's MBPP scripts): "tolerant" with rel 1e-6 / abs 1e-12, "exact" as HumanEval's
# official harness does.
EQUALITIES = ("tolerant", "exact")
RESULT_COLUMNS = ("passed", "status", "error_type", "error_message", "duration_s", "trusted")

# The harness's own bounds (the settings a run configures are the ``Execution`` model's).
MAX_MESSAGE_CHARS = 500
MAX_OUTPUT_CHARS = 2000


def available_workers() -> int:
    """CPUs this process may run on (affinity-aware)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - non-Linux
        return max(1, os.cpu_count() or 1)


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


def evaluate_programs(
    programs: pd.DataFrame,
    tasks: pd.DataFrame,
    execution: Execution | Mapping[str, Any] | None = None,
    **options: Any,
) -> pd.DataFrame:
    """Run every program against its task's asserts in an isolated child; return verdicts.

    Args:
        programs: one row per program, with at least ``task_id`` and ``program`` (the whole
            program text: prompt plus completion). Other columns are carried through.
        tasks: the tasks dataset: ``task_id``, ``tests`` (list of assert strings) and
            ``test_setup_code``; an optional ``equality`` column (see below); an optional
            ``time_limit_s`` column (e.g. from :func:`calibrate_time_limits`) gives
            per-task limits, NaN or absent means ``timeout_s``. A limit is wall-clock
            time less what a program, alone in its process, waited for a CPU that others
            held (the machine's load; see ``sandbox/server.py``).
        execution: the ``execution`` parameters (``ilf_kedro.parameters.Execution``: their
            defaults and rules); ``options`` are :func:`prepare_evaluation`'s keywords
            (``keep_output``, ``max_message_chars``, ``max_output_chars``, ``namespaces``
            below) or overrides of some of them (e.g. ``timeout_s=1``).
            ``timeout_s``: wall-clock limit in seconds for tasks without their own limit;
            ``workers``: programs running on CPU at once (None: one per available CPU);
            ``progress``: a tqdm progress bar; ``memory_mb``: address-space limit per
            program (RLIMIT_AS); ``max_processes``: processes/threads a program may have
            (RLIMIT_NPROC, per program when running as root); ``max_file_mb``: largest
            file a program may write (RLIMIT_FSIZE); ``max_result_bytes``: largest
            encoding of the values all of a program's asserts' calls hand back.
        keep_output: add an ``output`` column with the program's captured stdout+stderr
            (at most ``max_output_chars`` characters).
        max_message_chars: bound on ``error_message``.
        namespaces: use Linux namespaces when available (False forces the fallback).

    Returns:
        A copy of ``programs`` (same index and order, one row per input row) plus
        ``passed`` (bool), ``status`` (passed | failed | error | timeout | crashed |
        harness_limit: the harness reached a limit of its own, e.g. a value over
        ``max_result_bytes``, and made no verdict on the program),
        ``error_type`` (e.g. AssertionError, NotPlainData, NameError, Timeout, SIGSEGV,
        EarlyExit, HarnessLimit; None when passed), ``error_message`` (bounded; None when passed),
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
    work, which holds no expected value; :func:`~.sandbox_client.run_sandbox` runs it
    (here; on a Ray node with ``compute.backend: ray``); :meth:`Evaluation.record` judges
    each run here.

    Raises:
        SandboxError: the sandbox could not run some program (its server kept dying, or
            the program's process failed before the program started) even when run
            again: such a program has no verdict, so none is made up.
    """
    evaluation = prepare_evaluation(programs, tasks, execution, **options)
    if not evaluation.work.jobs:
        return evaluation.results()
    bar = None
    if evaluation.settings.progress:
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


class Evaluation:
    """One evaluation split where the expected values must not go: :attr:`work` for the
    sandbox (it holds none), and the tasks' plans, which judge what the sandbox reports
    (:meth:`record`) in this process. Made by :func:`prepare_evaluation`."""

    def __init__(
        self,
        programs: pd.DataFrame,
        settings: Execution,
        plans: dict[str, TaskPlan],
        work: SandboxWork,
        keep_output: bool,
    ) -> None:
        self.programs, self.settings, self.work = programs, settings, work
        self.keep_output = keep_output
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
        warn_if_weak(report)

    def results(self) -> pd.DataFrame:
        """``programs`` plus the verdict columns, rows in order (see
        :func:`evaluate_programs`); SandboxError if some program has no verdict."""
        missing = [row for row, v in enumerate(self._verdicts) if v is None]
        if missing:
            raise SandboxError(f"{len(missing)} program(s) have no verdict (e.g. row {missing[0]})")
        limited = [v for v in self._verdicts if v.status == "harness_limit"]
        if limited:
            logger.warning(
                "%d program(s) not judged: the harness reached a limit of its own (status "
                "harness_limit, not a failure of the program), e.g. %s",
                len(limited),
                limited[0].error_message,
            )
        return _with_verdicts(self.programs, self._verdicts, self.keep_output)


def prepare_evaluation(
    programs: pd.DataFrame,
    tasks: pd.DataFrame,
    execution: Execution | Mapping[str, Any] | None = None,
    *,
    keep_output: bool = False,
    max_message_chars: int = MAX_MESSAGE_CHARS,
    max_output_chars: int = MAX_OUTPUT_CHARS,
    namespaces: bool = True,
    **overrides: Any,
) -> Evaluation:
    """The :class:`Evaluation` of ``programs``, with :func:`evaluate_programs`'s
    arguments (``workers``: programs at once in each sandbox server). Nothing runs yet:
    :func:`~.sandbox_client.run_sandbox` runs its ``work``, here or on another machine,
    and what it reports is judged by :meth:`Evaluation.record` here."""
    settings = section(Execution, execution, "execution", **overrides)
    for col in ("task_id", "program"):
        if col not in programs.columns:
            raise ValueError(f"programs needs a {col!r} column")
    workers = settings.workers or available_workers()
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
    if len(programs) == 0:
        work = SandboxWork((), {}, config, stall_s=60.0)
        return Evaluation(programs, settings, {}, work, keep_output)
    task_ids = programs["task_id"].tolist()
    plans = _task_plans(tasks, task_ids)
    limits = _time_limits(tasks, set(task_ids), settings.timeout_s)
    jobs = _make_jobs(task_ids, programs["program"].tolist(), limits)
    jobs = _own_builtins(jobs, plans)
    specs = {tid: plans[tid].spec for tid in {j.task_id for j in jobs}}
    work = SandboxWork(tuple(jobs), specs, config, stall_s=max(limits.values()) + 60.0)
    return Evaluation(programs, settings, plans, work, keep_output)


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
    return longest_first(
        Job(row, str(tid), text if isinstance(text, str) else "", limits[str(tid)])
        for row, (tid, text) in enumerate(zip(task_ids, texts, strict=True))
    )


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

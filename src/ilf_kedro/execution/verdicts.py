"""Verdicts judged outside the program's reach (plain library code, no Kedro import).

:func:`plan_task` splits a task's asserts: one that can be judged here (see
:mod:`ilf_kedro.execution.asserts`) becomes a ``call`` check, whose calls of the program
the sandbox evaluates and hands back as values while the rest of the assert, with its
expected values, stays in this process; anything else becomes an ``assert`` check run
inside the program's process. :func:`judge` turns what the sandbox server saw of one
program (:class:`~ilf_kedro.execution.sandbox.records.ProgramRun`) into a
:class:`Verdict`, decoding each check's values (:mod:`~ilf_kedro.execution.sandbox.wire`)
and evaluating its assert here. See :mod:`ilf_kedro.execution.sandbox` for why no program
can forge the result.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import json
import signal
from typing import NamedTuple

from ilf_kedro.execution.asserts import (
    JudgedAssert,
    bound_in,
    bound_names,
    evaluate,
    plan_assert,
    statements,
)
from ilf_kedro.execution.sandbox.records import ASSERT, CALL, READY, Check, ProgramRun, TaskSpec
from ilf_kedro.execution.sandbox.wire import BeyondLimits, NotPlainData, Opaque, decode_value

# Statements a test list may hold that judge nothing (HumanEval's ``check`` imports).
_NEUTRAL = "neutral"


@dataclasses.dataclass(frozen=True)
class Verdict:
    """The one encoding of a verdict: a row of the results frame."""

    passed: bool
    status: str  # passed | failed | error | timeout | crashed | harness_limit
    error_type: str | None
    error_message: str | None
    duration_s: float
    trusted: bool  # every assert was judged outside the program's process
    output: str = ""


class TaskPlan(NamedTuple):
    """A task's asserts as checks for the sandbox, and what stays here to judge them."""

    spec: TaskSpec  # sent to the sandbox: setup code and checks, no expected values
    texts: tuple  # each assert's text
    judged: tuple  # per check: its JudgedAssert, _NEUTRAL, or None (run in the program)

    @property
    def builtins(self) -> frozenset:
        """Built-in names the judged asserts call in this process."""
        return frozenset().union(*(j.builtins for j in self.judged if type(j) is JudgedAssert))

    @property
    def trusted(self) -> bool:
        kinds = [j for j in self.judged if j != _NEUTRAL]
        return bool(kinds) and all(j is not None for j in kinds)


def plan_task(
    tests: list[str], setup: str, tolerant: bool = True, program_names: frozenset = frozenset()
) -> TaskPlan:
    """Each assert as a check for the sandbox and, when it can be judged here, what stays
    here to judge it. ``tolerant``: numbers compare as MBPP's scripts do (rel 1e-6);
    else exactly, as HumanEval's official harness does. ``program_names``: built-in names
    a program defines itself (the plan for that program's run). Kept per task for the
    process's later evaluations (a pipeline judges the same tasks several times)."""
    return _plan_task(tuple(tests), setup, tolerant, program_names)


@functools.lru_cache(maxsize=1 << 16)
def _plan_task(tests: tuple, setup: str, tolerant: bool, program_names: frozenset) -> TaskPlan:
    bodies = [statements(t) for t in tests]  # each parsed once
    asserts = [b is not None and len(b) == 1 and isinstance(b[0], ast.Assert) for b in bodies]
    bound = bound_names([setup]) | bound_in(
        [b for b, a in zip(bodies, asserts, strict=True) if b and not a]
    )
    checks, judged = [], []
    for text, body in zip(tests, bodies, strict=True):
        plan = plan_assert(text, bound, tolerant, program_names, body=body)
        if plan is not None:
            checks.append(Check(CALL, "(" + "".join(f"{c}, " for c in plan.calls) + ")"))
            judged.append(plan)
        else:
            checks.append(Check(ASSERT, text))
            judged.append(_NEUTRAL if _judges_nothing(body) else None)
    return TaskPlan(TaskSpec(setup, tuple(checks), tolerant), tests, tuple(judged))


def _judges_nothing(body: list | None) -> bool:
    """Imports and bare names (HumanEval 53's ``print``): they cannot fail an assert."""
    return bool(body) and all(
        isinstance(s, ast.Import | ast.ImportFrom)
        or (isinstance(s, ast.Expr) and isinstance(s.value, ast.Name | ast.Constant))
        for s in body
    )


# --------------------------------------------------------------------------- judging


class ProgramNotRun(RuntimeError):
    """The sandbox could not run a program: no verdict exists (the message says why)."""


def not_run(run: ProgramRun) -> str | None:
    """Why the sandbox could not run the program of ``run`` (so no verdict exists), or
    None when it ran. Read from what the sandbox wrote before the program started, so it
    needs no plan: the side that runs the sandbox decides re-runs with it."""
    if run.ended == "unknown_task":
        return "the sandbox server did not know the program's task"
    first = _record(run.reports.partition("\n")[0]) if run.reports else None
    if first == READY:
        return None
    cause = first.get("sandbox") if type(first) is dict else None
    if type(cause) is str:
        return cause
    return f"the sandboxed process ended ({run.ended}, code {run.code}) before the program started"


class _Reports(NamedTuple):
    stage: dict | None  # the program or setup code raised
    checks: dict  # check index -> its first record
    end: bool
    signal: str | None
    output: str


def _read_reports(text: str) -> _Reports:
    """The program's records after the child's own first one (:func:`not_run` read it),
    each a claim; only well-formed ones count, and for each check only the first (the
    program could write more, but gains nothing by it)."""
    stage, checks, end, sig, output = None, {}, False, None, ""
    for line in text.splitlines()[1:]:
        rec = _record(line)
        if rec is None:
            continue
        if type(rec.get("check")) is int:
            checks.setdefault(rec["check"], rec)
        elif "stage" in rec and stage is None:
            stage = rec
        elif rec.get("end") is True:
            end = True
        elif type(rec.get("signal")) is str and sig is None:
            sig = rec["signal"][:40]
        elif type(rec.get("output")) is str and not output:
            output = rec["output"]
    return _Reports(stage, checks, end, sig, output)


def _record(line: str) -> dict | None:
    try:
        rec = json.loads(line)
    except (ValueError, RecursionError):
        return None
    return rec if type(rec) is dict else None


def _bounded(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 15] + " ...[truncated]"


def _detail(rec: dict) -> tuple[str, str]:
    """(message, message with where it was raised) of a ``raised`` record."""
    message = rec.get("message") if type(rec.get("message")) is str else ""
    where = rec.get("where") if type(rec.get("where")) is str else None
    return message, f"{message} ({where})" if where else message


def _error_type(rec: dict) -> str:
    name = rec.get("raised")
    return name[:80] if type(name) is str and name else "Exception"


def _shown(value: object, limit: int) -> str:
    try:
        text = repr(value)
    except (ValueError, RecursionError):  # an int beyond 4300 digits, a deep nesting
        text = f"<{type(value).__name__} too large to show>"
    return _bounded(text, max(40, limit // 2))


def judge(plan: TaskPlan, run: ProgramRun, max_message_chars: int) -> Verdict:
    """The verdict on one program: the first check that did not hold decides it, in the
    order the asserts run (as if the program stopped there); all held and the process
    reached the end: passed; else how the process ended (timeout, crash, early exit)."""
    reason = not_run(run)
    if reason is not None:
        raise ProgramNotRun(reason)
    reports = _read_reports(run.reports)
    trusted = plan.trusted

    def verdict(status: str, etype: str | None, message: str | None) -> Verdict:
        if message is not None:
            message = _bounded(message, max_message_chars)
        return Verdict(
            status == "passed", status, etype, message, run.duration_s, trusted, reports.output
        )

    if reports.stage is not None:
        stage = reports.stage.get("stage")
        stage = stage if stage in ("program", "test_setup_code") else "program"
        return verdict(
            "error", _error_type(reports.stage), f"in {stage}: {_detail(reports.stage)[1]}"
        )
    n = len(plan.spec.checks)
    if n == 0 and reports.end:
        return verdict("error", "NoTests", "the task has no asserts")
    for i, (check, judged) in enumerate(zip(plan.spec.checks, plan.judged, strict=True)):
        where = f"test {i + 1}/{n}: {plan.texts[i][:200]}"
        rec = reports.checks.get(i)
        if rec is None:
            return verdict(*_how_it_ended(run, reports))
        if "raised" in rec:
            message, detail = _detail(rec)
            if rec.get("raised") == "AssertionError":
                suffix = f" -- {detail}" if message else ""
                return verdict("failed", "AssertionError", f"{where}{suffix}")
            return verdict("error", _error_type(rec), f"in {where}: {detail}")
        if check.kind == ASSERT:
            if rec.get("ok") is not True:
                return verdict("failed", "MalformedReport", f"{where} -- no verdict reported")
            continue
        if "refused" in rec:
            reason = str(rec["refused"])[:200]
            return verdict(*_beyond_limits(where, f"the calls' values: {reason}"))
        try:
            if type(rec.get("value")) is not list:
                raise ValueError("no values were reported")
            values = decode_value(rec["value"])
            if type(values) is not tuple or len(values) != len(judged.calls):
                raise ValueError("not one value per call")
        except BeyondLimits as exc:
            return verdict(*_beyond_limits(where, str(exc)))
        except ValueError as exc:
            return verdict("failed", "MalformedReport", f"{where} -- {exc}")
        failure = _judge_here(judged, values, where, max_message_chars)
        if failure is not None:
            return verdict(*failure)
    if n and reports.end:
        return verdict("passed", None, None)
    return verdict(*_how_it_ended(run, reports))


def _how_it_ended(run: ProgramRun, reports: _Reports) -> tuple[str, str, str]:
    """(status, error_type, message) of a program that did not run all its asserts."""
    if run.ended == "timeout":
        return "timeout", "Timeout", f"exceeded the time limit of {run.time_limit_s:.3g} s"
    if reports.signal is not None:
        name = reports.signal
        return "crashed", name, f"killed by signal {name} before all asserts ran"
    if run.ended == "signaled":
        code = run.code
        name = signal.Signals(code).name if code in signal.Signals._value2member_map_ else code
        if code == signal.SIGXCPU:
            return "timeout", "CPUTimeLimit", "exceeded the CPU time limit (SIGXCPU)"
        return "crashed", str(name), f"killed by signal {name} before all asserts ran"
    if run.ended == "exited":
        if run.code == 0:
            return "crashed", "EarlyExit", "the process exited (code 0) before all asserts ran"
        return "crashed", f"ExitCode{run.code}", f"the process exited with code {run.code}"
    return "crashed", "Unknown", "the program vanished without a verdict"


def _beyond_limits(where: str, reason: str) -> tuple[str, str, str]:
    """The verdict's fields when the harness reached one of its own limits: the program
    is neither passed nor failed (``STATUSES``' "harness_limit", counted apart)."""
    return "harness_limit", "HarnessLimit", f"{where} -- not judged: {reason}"


def _judge_here(
    judged: JudgedAssert, values: tuple, where: str, limit: int
) -> tuple[str, str, str] | None:
    """None when the assert holds for ``values``; else (status, error type, message), as
    Python would have failed or raised on the assert."""
    try:
        held = evaluate(judged, values)
    except BeyondLimits as exc:
        return _beyond_limits(where, str(exc))
    except NotPlainData as exc:
        return "failed", "NotPlainData", f"{where} -- {exc}"
    except Exception as exc:  # what Python would raise evaluating the assert
        return "error", type(exc).__name__, f"in {where}: {_bounded(str(exc), limit)}"
    if held:
        return None
    shown = ", ".join(_shown(v, limit) for v in values)
    said = "the call returned" if len(values) == 1 else "the calls returned"
    message = f"{where} -- {said} {shown}" if values else f"{where} -- it does not hold"
    if any(type(v) is Opaque for v in values):
        note = "not data: compared by identity, as if its class defined no __eq__"
        return "failed", "NotPlainData", f"{message} ({note})"
    return "failed", "AssertionError", message

"""Verdicts judged outside the program's reach (plain library code, no Kedro import).

:func:`plan_task` splits a task's asserts: ``assert CALL == EXPECTED`` with a literal
EXPECTED becomes a ``call`` check (the sandbox evaluates CALL and hands back its value as
plain data; EXPECTED stays in this process), anything else an ``assert`` check run inside
the program's process. :func:`judge` turns what the sandbox server saw of one program
(:class:`~ilf_kedro.execution._sandbox.ProgramRun`) into a :class:`Verdict`, comparing
each handed-back value with its expected value here, with the float tolerance of
:func:`~ilf_kedro.execution._sandbox.approx_eq`. See the sandbox module's docstring for why
no program can forge the result.
"""

from __future__ import annotations

import ast
import dataclasses
import json
import signal
from typing import NamedTuple

from ilf_kedro.execution._sandbox import (
    ASSERT,
    CALL,
    MAX_NESTING,
    READY,
    Check,
    ProgramRun,
    TaskSpec,
    approx_eq,
)

PLAIN_TYPES = "int, float, complex, bool, str, bytes, None, list, tuple, set, frozenset, dict"
_NO_EXPECTED = object()  # the expected value of an in-process (untrusted) check


@dataclasses.dataclass(frozen=True)
class Verdict:
    """The one encoding of a verdict: a row of the results frame."""

    passed: bool
    status: str  # passed | failed | error | timeout | crashed
    error_type: str | None
    error_message: str | None
    duration_s: float
    trusted: bool  # every assert was judged outside the program's process
    output: str = ""


class TaskPlan(NamedTuple):
    """A task's asserts as checks for the sandbox, and what stays here to judge them."""

    spec: TaskSpec  # sent to the sandbox: setup code and checks, no expected values
    texts: list  # each assert's text, for messages
    expected: list  # per check: its expected value, or _NO_EXPECTED for ``assert`` checks

    @property
    def trusted(self) -> bool:
        return bool(self.expected) and all(e is not _NO_EXPECTED for e in self.expected)


def plan_task(tests: list[str], setup: str) -> TaskPlan:
    """Split each assert into a check for the sandbox and, for ``assert CALL ==
    LITERAL``, the expected value that never leaves this process."""
    checks, expected = [], []
    for text in tests:
        call, value = _split_assert(text)
        if call is None:
            checks.append(Check(ASSERT, text))
            expected.append(_NO_EXPECTED)
        else:
            checks.append(Check(CALL, call))
            expected.append(value)
    return TaskPlan(TaskSpec(setup, checks), [t[:200] for t in tests], expected)


def _split_assert(text: str):
    """(source of CALL, EXPECTED) for ``assert CALL == EXPECTED[, message]`` with a literal
    EXPECTED; (None, None) for anything else. The message (MBPP has ``assert f(x) == 1,2``)
    would only be evaluated on failure, so it plays no part in the verdict."""
    try:
        body = ast.parse(text).body
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return None, None
    if len(body) != 1 or not isinstance(body[0], ast.Assert):
        return None, None
    test = body[0].test
    if not (
        isinstance(test, ast.Compare)
        and len(test.ops) == 1
        and isinstance(test.ops[0], ast.Eq)
        and len(test.comparators) == 1
    ):
        return None, None
    try:
        value = ast.literal_eval(test.comparators[0])
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return None, None
    return ast.unparse(test.left), value


# --------------------------------------------------------------------------- plain data


def decode_plain(text: str) -> object:
    """Rebuild a value encoded by :func:`~ilf_kedro.execution._sandbox.encode_plain` from
    fresh built-in objects; ValueError if ``text`` is anything else."""
    try:
        return _decode(json.loads(text), 0)
    except (TypeError, RecursionError, MemoryError, json.JSONDecodeError) as exc:
        raise ValueError(f"not plain data ({type(exc).__name__})") from None


def _decode(v: object, depth: int) -> object:
    if depth > MAX_NESTING:
        raise ValueError(f"nested deeper than {MAX_NESTING} levels")
    t = type(v)
    if v is None or t is bool or t is int or t is float or t is str:
        return v
    if t is list:
        return [_decode(x, depth + 1) for x in v]
    if t is dict and len(v) == 1:
        ((tag, body),) = v.items()
        if tag == "bytes" and type(body) is str:
            return bytes.fromhex(body)
        if type(body) is list:
            items = [_decode(x, depth + 1) for x in body]
            if tag == "tuple":
                return tuple(items)
            if tag == "set":
                return set(items)
            if tag == "frozenset":
                return frozenset(items)
            if tag == "dict" and all(type(p) is list and len(p) == 2 for p in items):
                return {k: x for k, x in items}
            numbers = all(type(x) in (int, float) for x in items)
            if tag == "complex" and len(items) == 2 and numbers:
                return complex(items[0], items[1])
    raise ValueError("not plain data")


# --------------------------------------------------------------------------- judging


class ProgramNotRun(RuntimeError):
    """The sandbox could not run a program: no verdict exists (the message says why)."""


class _Reports(NamedTuple):
    ready: bool  # the child's first record said the program was about to run
    not_run: str | None  # else why it did not (the child's own account, if any)
    stage: dict | None  # the program or setup code raised
    checks: dict  # check index -> its first record
    end: bool
    signal: str | None
    output: str


def _read_reports(text: str) -> _Reports:
    """The program's records, each a claim; only well-formed ones count, and for each
    check only the first (the program could write more, but gains nothing by it)."""
    stage, checks, end, sig, output = None, {}, False, None, ""
    lines = text.splitlines()
    first = _record(lines[0]) if lines else None
    if first != READY:  # written before the program could write anything: honest
        cause = first.get("sandbox") if type(first) is dict else None
        return _Reports(False, cause if type(cause) is str else None, None, {}, False, None, "")
    for line in lines[1:]:
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
    return _Reports(True, None, stage, checks, end, sig, output)


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
    return _bounded(repr(value), max(40, limit // 2))


def judge(plan: TaskPlan, run: ProgramRun, max_message_chars: int) -> Verdict:
    """The verdict on one program: the first check that did not hold decides it, in the
    order the asserts run (as if the program stopped there); all held and the process
    reached the end: passed; else how the process ended (timeout, crash, early exit)."""
    reports = _read_reports(run.reports)
    trusted = plan.trusted

    def verdict(status: str, etype: str | None, message: str | None) -> Verdict:
        if message is not None:
            message = _bounded(message, max_message_chars)
        return Verdict(
            status == "passed", status, etype, message, run.duration_s, trusted, reports.output
        )

    if run.ended == "unknown_task":
        raise ProgramNotRun("the sandbox server did not know the program's task")
    if not reports.ready:
        raise ProgramNotRun(
            reports.not_run
            or f"the sandboxed process ended ({run.ended}, code {run.code}) before the program "
            "started"
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
    for i, (check, expected) in enumerate(zip(plan.spec.checks, plan.expected, strict=True)):
        where = f"test {i + 1}/{n}: {plan.texts[i]}"
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
            return verdict(
                "failed",
                "NotPlainData",
                f"{where} -- the call returned {reason}; only plain data ({PLAIN_TYPES}) "
                "can be checked outside the program",
            )
        try:
            actual = decode_plain(rec["value"]) if type(rec.get("value")) is str else None
            if type(rec.get("value")) is not str:
                raise ValueError("no plain-data result was reported")
        except ValueError as exc:
            return verdict("failed", "NotPlainData", f"{where} -- {exc}")
        try:
            held = approx_eq(actual, expected)
        except Exception:  # e.g. comparing a set of tuples with a set of lists
            held = False
        if not held:
            shown = _shown(actual, max_message_chars)
            return verdict("failed", "AssertionError", f"{where} -- the call returned {shown}")
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

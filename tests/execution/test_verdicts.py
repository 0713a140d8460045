"""Judging outside the program: assert planning, the plain-data encoding, the judge."""

from __future__ import annotations

import collections
import json

import pytest

from ilf_kedro.execution._sandbox import (
    ASSERT,
    CALL,
    READY,
    NotPlainData,
    ProgramRun,
    encode_plain,
)
from ilf_kedro.execution.verdicts import ProgramNotRun, decode_plain, judge, plan_task


def test_plan_keeps_expected_values_out_of_the_task_spec():
    tests = [
        "assert f(1, [2, 3]) == {'a': (1.5, None)}",
        "assert g(x) == -7, 'message'",  # MBPP has `assert f(x) == 1,2`
        "assert f(1) != 2",
        "assert sorted(f(2)) == sys.getsizeof(())",  # expected is not a literal
        "assert f(",
    ]
    plan = plan_task(tests, "x = 4")
    assert [c.kind for c in plan.spec.checks] == [CALL, CALL, ASSERT, ASSERT, ASSERT]
    assert plan.spec.checks[0].source == "f(1, [2, 3])" and plan.spec.checks[1].source == "g(x)"
    assert plan.expected[:2] == [{"a": (1.5, None)}, -7]
    assert "{'a'" not in repr(plan.spec) and "-7" not in repr(plan.spec.checks[:2])
    assert not plan.trusted and plan_task(tests[:2], "").trusted
    assert not plan_task([], "").trusted


@pytest.mark.parametrize(
    "value",
    [
        None,
        True,
        -(10**30),
        0.1,
        float("inf"),
        1 + 2j,
        "é\n",
        b"\x00\xff",
        [1, [2.5, "x"]],
        (1, (2,)),
        {1, (2, 3)},
        frozenset({"a"}),
        {(1, 2): [None], "k": {"n": b""}},
        [],
        (),
        {},
    ],
)
def test_plain_data_round_trip_keeps_exact_types(value):
    back = decode_plain(encode_plain(value, 1 << 16))
    assert back == value and type(back) is type(value)


def test_stdlib_mappings_are_handed_back_as_dicts():
    counter = collections.Counter("abca")
    assert decode_plain(encode_plain(counter, 1 << 16)) == {"a": 2, "b": 1, "c": 1}
    nested = collections.defaultdict(list, {"x": [1]})
    assert type(decode_plain(encode_plain(nested, 1 << 16))) is dict


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (type("Yes", (), {"__eq__": lambda s, o: True})(), "not plain data"),
        (type("I", (int,), {})(3), "not plain data"),
        ([object()], "not plain data"),
        (list(range(20_000)), "larger than"),
        ("x" * 70_000, "larger than"),
        (10**5000, "digits"),
    ],
    ids=["always_equal", "int_subclass", "object_inside", "long_list", "long_str", "huge_int"],
)
def test_anything_else_is_refused(value, reason):
    with pytest.raises(NotPlainData, match=reason):
        encode_plain(value, 1 << 16)


def test_deep_and_cyclic_results_are_refused():
    deep: list = []
    for _ in range(200):
        deep = [deep]
    with pytest.raises(NotPlainData, match="nested deeper"):
        encode_plain(deep, 1 << 16)
    cyclic: list = []
    cyclic.append(cyclic)
    with pytest.raises(NotPlainData):
        encode_plain(cyclic, 1 << 16)


@pytest.mark.parametrize(
    "text",
    ['{"tuple": 1}', '{"set": [[1]]}', '{"x": [1]}', '{"dict": [[1]]}', "[", '{"bytes": "zz"}'],
)
def test_decoder_accepts_only_the_encoding(text):
    with pytest.raises(ValueError):
        decode_plain(text)


def _run(*records, ended="exited", code=0, duration=0.01, ready=True) -> ProgramRun:
    lines = "".join(json.dumps(r) + "\n" for r in ((READY,) if ready else ()) + records)
    return ProgramRun(0, lines, ended, code, duration, 3.0)


def test_a_program_that_never_ran_gets_no_verdict():
    ran = _run(
        {"check": 0, "value": _value(2.0)}, {"check": 1, "value": _value(3.0)}, {"end": True}
    )
    assert judge(PLAN, ran, 500).passed
    # the child's own account, written before the program could run: no verdict, a cause
    failed = _run({"sandbox": "OSError: mount tmpfs on /tmp: No space left"}, ready=False)
    with pytest.raises(ProgramNotRun, match="mount tmpfs"):
        judge(PLAN, failed, 500)
    for run in (_run(ready=False, ended="signaled", code=9), _run(ready=False)):
        with pytest.raises(ProgramNotRun, match="before the program started"):
            judge(PLAN, run, 500)
    # a program cannot pass itself off as an infrastructure failure: after the ready
    # record, whatever it writes is a claim about its own run
    forged = _run({"sandbox": "OSError: pretend"}, {"stage": "sandbox", "raised": "OSError"})
    assert judge(PLAN, forged, 500).status == "error"
    with pytest.raises(ProgramNotRun):
        judge(PLAN, ProgramRun(0, "", "unknown_task", 0, 0.0, 3.0), 500)


PLAN = plan_task(["assert f(1) == 2.0", "assert f(2) == 3.0"], "")


def _value(v) -> str:
    return encode_plain(v, 1 << 16)


def test_judge_compares_here_with_float_tolerance():
    records = {"check": 0, "value": _value(2.0000000001)}, {"check": 1, "value": _value(3)}
    ok = judge(PLAN, _run(*records, {"end": True}), 500)
    assert (ok.passed, ok.status, ok.trusted) == (True, "passed", True)
    bad = judge(PLAN, _run({"check": 0, "value": _value(2.1)}), 500)
    assert (bad.status, bad.error_type) == ("failed", "AssertionError")
    assert bad.error_message == "test 1/2: assert f(1) == 2.0 -- the call returned 2.1"


def test_first_record_per_check_counts_and_the_end_is_required():
    forged_first = _run(
        {"check": 0, "value": _value(0)}, {"check": 0, "value": _value(2.0)}, {"end": True}
    )
    assert judge(PLAN, forged_first, 500).status == "failed"
    no_end = _run({"check": 0, "value": _value(2.0)}, {"check": 1, "value": _value(3.0)})
    verdict = judge(PLAN, no_end, 500)
    assert (verdict.status, verdict.error_type) == ("crashed", "EarlyExit")
    ok_for_a_call = _run({"check": 0, "ok": True}, {"check": 1, "ok": True}, {"end": True})
    assert judge(PLAN, ok_for_a_call, 500).error_type == "NotPlainData"
    garbage = _run({"check": "0"}, ["x"], {"end": True})
    assert judge(PLAN, garbage, 500).status == "crashed"


def test_a_failed_check_decides_even_when_the_program_then_hangs():
    run = _run({"check": 0, "value": _value(5)}, ended="timeout", duration=3.0)
    assert judge(PLAN, run, 500).status == "failed"
    run = _run({"check": 0, "value": _value(2.0)}, ended="timeout", duration=3.0)
    verdict = judge(PLAN, run, 500)
    assert (verdict.status, verdict.error_type) == ("timeout", "Timeout")


def test_errors_refusals_and_signals():
    raised = {"check": 1, "raised": "ZeroDivisionError", "message": "boom", "where": "line 1"}
    verdict = judge(PLAN, _run({"check": 0, "value": _value(2.0)}, raised), 500)
    assert (verdict.status, verdict.error_type) == ("error", "ZeroDivisionError")
    assert verdict.error_message == "in test 2/2: assert f(2) == 3.0: boom (line 1)"
    refused = judge(PLAN, _run({"check": 0, "refused": "an object of type 'A'"}), 500)
    assert (refused.status, refused.error_type) == ("failed", "NotPlainData")
    stage = {"stage": "program", "raised": "NameError", "message": "x", "where": "program line 2"}
    assert judge(PLAN, _run(stage), 500).error_message == "in program: x (program line 2)"
    signalled = judge(PLAN, _run({"signal": "SIGTERM"}), 500)
    assert (signalled.status, signalled.error_type) == ("crashed", "SIGTERM")
    segv = judge(PLAN, _run(ended="signaled", code=11), 500)
    assert (segv.status, segv.error_type) == ("crashed", "SIGSEGV")

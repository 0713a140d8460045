"""Judging outside the program: assert planning, the value encoding, the judge."""

from __future__ import annotations

import collections
import decimal
import enum
import fractions
import json
import re

import numpy as np
import pytest

from ilf_kedro.execution.asserts import evaluate, plan_assert
from ilf_kedro.execution.sandbox.records import ASSERT, CALL, READY, ProgramRun
from ilf_kedro.execution.sandbox.wire import (
    MAX_C_DEPTH,
    BeyondLimits,
    NotPlainData,
    Opaque,
    decode_value,
    encode_value,
)
from ilf_kedro.execution.verdicts import ProgramNotRun, judge, plan_task


def test_plan_keeps_expected_values_out_of_the_task_spec():
    tests = [
        "assert f(1, [2, 3]) == {'a': (1.5, None)}",
        "assert g(x) == -7, 'message'",  # MBPP has `assert f(x) == 1,2`
        "assert abs(f(1.5) - 2.25) < 1e-06",  # HumanEval
        "assert not f(4) and f(3) in [7, 8]",
        "assert f(1) is True",
        "assert f(1) or f(2)",  # Python may skip f(2): judged in the program
        "assert check(f) == 3",  # a checker the setup defines
        "assert sorted(f(2)) == sys.getsizeof(())",  # an attribute call
        "assert f(",
    ]
    plan = plan_task(tests, "x = 4\ndef check(g):\n    return g(1)")
    kinds = [c.kind for c in plan.spec.checks]
    assert kinds == [CALL] * 5 + [ASSERT] * 4
    assert [c.source for c in plan.spec.checks[:5]] == [
        "(f(1, [2, 3]), )",
        "(g(x), )",
        "(f(1.5), )",
        "(f(4), f(3), )",
        "(f(1), )",
    ]
    spec = repr(plan.spec.checks[:5])
    for secret in ("'a'", "-7", "2.25", "1e-06", "7, 8", "True"):
        assert secret not in spec
    assert not plan.trusted and plan_task(tests[:5], "").trusted
    assert not plan_task([], "").trusted
    # statements that judge nothing do not make a task untrusted; other statements do
    assert plan_task(["import math", "assert f(1) == 2"], "").trusted
    assert not plan_task(["x = f(1)", "assert f(1) == 2"], "").trusted


def test_a_task_with_a_literal_only_assert_is_judged_here():
    plan = plan_task(["assert True, 'always'", "assert f(0) == 0"], "")
    assert plan.trusted and plan.spec.checks[0].source == "()"


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
        bytearray(b"ab"),
        [1, [2.5, "x"]],
        (1, (2,)),
        {1, (2, 3)},
        frozenset({"a"}),
        {(1, 2): [None], "k": {"n": b""}},
        [],
        (),
        {},
        range(1, 10, 3),
        collections.deque([1, 2]),
        fractions.Fraction(1, 3),
        decimal.Decimal("0.10"),
        ...,
    ],
)
def test_values_round_trip_with_their_types(value):
    back = decode_value(encode_value(value, 1 << 16))
    assert back == value and type(back) is type(value)


Point = collections.namedtuple("Point", "x y")


class Colour(enum.IntEnum):
    RED = 1


class Liar(list):
    def __eq__(self, other):
        return True

    __hash__ = None


class LyingFloat(float):
    def __eq__(self, other):
        return True

    __hash__ = float.__hash__


# (what a program returns, the literal it is compared with): the verdict must be what
# Python's == says on the value as it is (the values here do not lie).
HONEST = [
    (np.float64(0.5), 0.5),
    (np.float64(0.5), 0.25),
    (np.int64(3), 3),
    (np.bool_(True), True),
    (np.float32(0.5), 0.5),
    ([np.int64(1), np.int64(2)], [1, 2]),
    (np.array([3]), 3),
    (bytearray(b"ab"), b"ab"),
    (fractions.Fraction(1, 2), 0.5),
    (decimal.Decimal("0.5"), 0.5),
    (decimal.Decimal("0.1"), 0.1),
    (Point(1, 2), (1, 2)),
    (collections.Counter("aab"), {"a": 2, "b": 1}),
    (collections.OrderedDict(a=1), {"a": 1}),
    (collections.defaultdict(int, a=1), {"a": 1}),
    (Colour.RED, 1),
    (collections.UserList([1]), [1]),
    (collections.UserString("ab"), "ab"),
    (collections.deque([1, 2]), [1, 2]),
    (range(3), [0, 1, 2]),
    ({1: 2}.keys(), {1}),
    ({1: 2}.items(), {(1, 2)}),
    ({1: 2}.values(), [2]),
    ((1, 2), [1, 2]),
    ([1, 2], (1, 2)),
    ({1: [np.float64(0.5)]}, {1: [0.5]}),
    ({np.int64(1), 2}, {1, 2}),
    (iter([1]), [1]),
    (1, True),
    (1.0, 1),
]


@pytest.mark.parametrize(
    ("value", "literal"),
    HONEST,
    ids=[re.sub(r" at 0x[0-9a-f]+", "", repr(v))[:40] for v, _ in HONEST],
)
def test_verdicts_are_pythons_equality_on_honest_values(value, literal):
    judged = plan_assert(f"assert f(1) == {literal!r}", set(), tolerant=False)
    back = decode_value(encode_value((value,), 1 << 16))
    assert evaluate(judged, back) == bool(value == literal)


@pytest.mark.parametrize(
    ("value", "literal"),
    [
        (Liar(), [1]),
        (LyingFloat(0.5), 0.25),
        (type("Yes", (), {"__eq__": lambda s, o: True, "__hash__": None})(), 2),
        ([type("Yes", (), {"__eq__": lambda s, o: True, "__hash__": None})()], [2]),
    ],
    ids=["list_subclass", "float_subclass", "own_class", "inside_a_list"],
)
def test_a_value_lying_about_its_equality_is_judged_by_what_it_holds(value, literal):
    assert value == literal  # the lie, in the program's process
    judged = plan_assert(f"assert f(1) == {literal!r}", set(), tolerant=True)
    assert not evaluate(judged, decode_value(encode_value((value,), 1 << 16)))


def test_an_object_that_is_not_data_has_no_truth_here():
    opaque = decode_value(encode_value(object(), 1 << 16))
    assert type(opaque) is Opaque and opaque != opaque.__class__("object")
    with pytest.raises(NotPlainData, match="its own code"):
        evaluate(plan_assert("assert f(1)", set(), tolerant=False), (opaque,))


def test_mbpp_compares_numbers_with_tolerance_humaneval_exactly():
    close = (2.0000000001,)
    assert evaluate(plan_assert("assert f(1) == 2.0", set(), tolerant=True), close)
    assert not evaluate(plan_assert("assert f(1) == 2.0", set(), tolerant=False), close)
    assert plan_task(["assert f(1) == 2"], "", tolerant=False).spec.tolerant is False


@pytest.mark.parametrize(
    ("text", "values", "held"),
    [
        ("assert abs(f(1.5) - 2.0) < 1e-6", (2.0000001,), True),
        ("assert abs(f(1.5) - 2.0) < 1e-6", (2.1,), False),
        ("assert f(1)", ([0],), True),
        ("assert f(1)", ([],), False),
        ("assert not f(1)", (0.0,), True),
        ("assert f(1) is True", (True,), True),
        ("assert f(1) is True", (1,), False),
        ("assert f(1) is False", (np.bool_(False),), False),  # as in Python
        ("assert 0 < f(1) <= 3 and f(2) in {1, 2}", (3, 2), True),
        # built-ins of nothing but the program's calls are evaluated where the calls are
        ("assert sorted(f(1)) == [1, 2] and len(f(2)) == 0", ([1, 2], 0), True),
        ("assert sorted(f(1), reverse=True) == [2, 1]", ([2, 1],), True),
        ("assert max(f(1), 0) == 2", (2,), True),
        ("assert f(1)[1:] == (2,)", ((1, 2),), True),
        ("assert round(f(1), 2) == 0.33", (1 / 3,), True),
        ("assert True, 'never fails'", (), True),
    ],
)
def test_asserts_beyond_call_equals_literal_are_judged_here(text, values, held):
    judged = plan_assert(text, set(), tolerant=False)
    assert judged is not None and len(judged.calls) == len(values)
    assert evaluate(judged, values) is held


def test_values_cannot_make_the_judge_hang():
    # each is a limit of the harness, not a verdict: BeyondLimits (status harness_limit)
    for text, value in [
        ("assert 2 ** f(1) == 4", 10**12),
        ("assert 'x' * f(1) == ''", 10**12),
        ("assert f(1) ** 3 == 1", 1 << 40_000_000),
        ("assert f(1) * f(1) == 1", 1 << 1_100_000),
        ("assert f(1) % 3 == 'x'", "%099999999d"),
    ]:
        calls = (value,) * (2 if "f(1) * f(1)" in text else 1)
        with pytest.raises(BeyondLimits):
            evaluate(plan_assert(text, set(), tolerant=False), calls)
    for tokens in ([["G", ["0", "e8d4a51000", "1"]]], [["M", "1E+99999999"]]):
        with pytest.raises(BeyondLimits, match="too large"):
            decode_value(tokens)
    assert plan_assert("assert '%d' % f(1) == '5'", set(), tolerant=False) is None  # run there


def test_a_builtin_name_the_program_defines_is_its_own_call():
    plan = plan_task(["assert sum(10, 15) == 6", "assert sum(f(1)) == 3"], "")
    assert plan.spec.checks[0].source == "()" and plan.builtins == {"sum"}
    own = plan_task(plan.texts, "", program_names=frozenset({"sum"}))
    assert [c.source for c in own.spec.checks] == ["(sum(10, 15), )", "(sum(f(1)), )"]


def test_values_of_any_depth_shape_and_size_cross():
    deep: list = []
    for _ in range(5000):
        deep = [deep]
    back, depth = decode_value(encode_value(deep, 1 << 16)), 0
    while back:
        back, depth = back[0], depth + 1
    assert depth == 5000
    cyclic: list = [1]
    cyclic.append(cyclic)
    back = decode_value(encode_value(cyclic, 1 << 16))
    assert back[0] == 1 and back[1] is back
    inner: list = []
    shared = (inner,)
    inner.append(shared)  # a tuple holding itself through a list
    back = decode_value(encode_value(shared, 1 << 16))
    assert back[0][0] is back and type(back) is tuple
    assert decode_value(encode_value(10**5000 + 1, 1 << 16)) == 10**5000 + 1
    for big in (list(range(20_000)), "x" * 70_000, np.zeros(70_000), [1 << 300_000]):
        with pytest.raises(BeyondLimits, match="larger than"):
            encode_value(big, 1 << 16)
    chain: tuple = ()
    for _ in range(MAX_C_DEPTH + 1):
        chain = (chain,)
    with pytest.raises(BeyondLimits, match="chain of tuples"):  # hashing it would crash
        decode_value(encode_value(chain, 1 << 20))
    doubling: tuple = (1,)
    for _ in range(60):  # 2**60 leaves in 1 kB of references: == or hash would never end
        doubling = (doubling, doubling)
    with pytest.raises(BeyondLimits, match="shared parts"):
        decode_value(encode_value(doubling, 1 << 16))


@pytest.mark.parametrize(
    "text",
    [
        '[["T", 1]]',
        '[["T", -1]]',
        '[["S", 1], ["L", 0]]',
        '[["X", 1]]',
        '[["D", 1], 1]',
        '[["D", 1], ["L", 0], 1]',
        "[",
        "{}",
        "[1, 2]",
        '[["Y", "zz"]]',
        '[["N", "<U3"], "abc"]',
        '[["N", "O"], 1]',
        '[["A", "<i8", [3]], 1, 2]',
        '[["G", ["0", "1", "0"]]]',
        '[["P", ["1", "0"]]]',
        '[["R", 0]]',
        '[["T", 1], ["R", 0]]',
        '[["L", 1], ["T", 1], ["D", 1], ["R", 1], 1]',
    ],
)
def test_decoder_accepts_only_the_encoding(text):
    with pytest.raises(ValueError):
        decode_value(text)


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


def _value(v) -> list:
    return json.loads(encode_value((v,), 1 << 16))


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
    assert judge(PLAN, ok_for_a_call, 500).error_type == "MalformedReport"
    two_values = _run({"check": 0, "value": json.loads(encode_value((2.0, 2.0), 99))})
    assert judge(PLAN, two_values, 500).error_type == "MalformedReport"
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
    refused = judge(PLAN, _run({"check": 0, "refused": "larger than 10 bytes"}), 500)
    assert (refused.status, refused.error_type) == ("harness_limit", "HarnessLimit")
    assert refused.error_message.endswith("not judged: the calls' values: larger than 10 bytes")
    stage = {"stage": "program", "raised": "NameError", "message": "x", "where": "program line 2"}
    assert judge(PLAN, _run(stage), 500).error_message == "in program: x (program line 2)"
    signalled = judge(PLAN, _run({"signal": "SIGTERM"}), 500)
    assert (signalled.status, signalled.error_type) == ("crashed", "SIGTERM")
    segv = judge(PLAN, _run(ended="signaled", code=11), 500)
    assert (segv.status, segv.error_type) == ("crashed", "SIGSEGV")

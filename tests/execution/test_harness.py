"""Semantics of evaluate_programs: verdicts, order, tolerance, early exits, time limits."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import pandas as pd
import pytest

from ilf_kedro.execution import (
    RESULT_COLUMNS,
    STATUSES,
    SandboxError,
    evaluate_programs,
    sandbox_client,
)
from ilf_kedro.execution.harness import prepare_evaluation
from ilf_kedro.execution.sandbox.semantics import approx_eq, rewrite_asserts
from tests.execution.conftest import GOOD, make_tasks, spinners


def run(programs, tasks, **kw):
    kw.setdefault("progress", False)
    kw.setdefault("timeout_s", 10.0)
    frame = pd.DataFrame(programs) if not isinstance(programs, pd.DataFrame) else programs
    return evaluate_programs(frame, tasks, **kw)


def test_verdicts_order_and_carried_columns(toy_tasks):
    programs = pd.DataFrame(
        {
            "task_id": [1, 1, 1, 1, 1],
            "program": [
                GOOD,
                "def f(x):\n    return x + 2\n",
                "def f(x):\n    return undefined_name\n",
                "def f(x) return x\n",
                None,
            ],
            "sample": [10, 11, 12, 13, 14],
        },
        index=[5, 3, 9, 7, 1],
    )
    res = run(programs, toy_tasks)
    assert list(res.index) == [5, 3, 9, 7, 1]
    assert list(res["sample"]) == [10, 11, 12, 13, 14]
    assert list(res["status"]) == ["passed", "failed", "error", "error", "error"]
    assert list(res["passed"]) == [True, False, False, False, False]
    assert list(res["error_type"][1:4]) == ["AssertionError", "NameError", "SyntaxError"]
    assert res["error_type"][5] is None and res["error_message"][5] is None
    assert "test 1/3: assert f(1) == 2" in res["error_message"][3]
    assert "(program line 2)" in res["error_message"][9]
    assert res["duration_s"].dtype == "float64" and (res["duration_s"] > 0).all()
    assert set(res["status"]) <= set(STATUSES)
    assert list(res.columns[-6:]) == list(RESULT_COLUMNS)


def test_failed_assert_reports_which_one(toy_tasks):
    prog = "def f(x):\n    return 0 if x == -1 else x + 1\n"
    res = run([{"task_id": 1, "program": GOOD}, {"task_id": 1, "program": prog}], toy_tasks)
    assert res["passed"].tolist() == [True, True]
    prog = "def f(x):\n    return 1 if x == -1 else x + 1\n"
    res = run([{"task_id": 1, "program": prog}], toy_tasks)
    assert res["status"][0] == "failed"
    assert res["error_message"][0].startswith("test 3/3: assert f(-1) == 0")


def test_float_tolerance_like_pytest_approx():
    tasks = make_tasks(
        {
            1: (["assert g() == 0.3", "assert h() == [0.3, 'a']"], "", None),
            2: (["assert g() == 400", "assert s() == 'abc'"], "", None),
        }
    )
    close = "def g():\n    return 0.1 + 0.2\ndef h():\n    return [0.1 + 0.2, 'a']\n"
    far = "def g():\n    return 0.3001\ndef h():\n    return [0.3, 'a']\n"
    poly = "def g():\n    return 400.00000000000006\ndef s():\n    return 'abd'\n"
    res = run(
        [
            {"task_id": 1, "program": close},
            {"task_id": 1, "program": far},
            {"task_id": 2, "program": poly},
        ],
        tasks,
    )
    assert res["status"].tolist() == ["passed", "failed", "failed"]
    assert "test 2/2" in res["error_message"][2]  # the float passed, the string did not


def test_approx_eq_helper():
    assert approx_eq(0.1 + 0.2, 0.3)
    assert approx_eq(1e-13, 0.0)  # abs 1e-12
    assert not approx_eq(1e-11, 0.0)
    assert approx_eq(1_000_000.5, 1_000_000.0)  # rel 1e-6
    assert not approx_eq(1.00001, 1.0)
    assert approx_eq((1.0000000001, [2.0, {"a": 3.0000000001}]), (1.0, [2, {"a": 3}]))
    assert not approx_eq([1.0], (1.0,))
    assert not approx_eq(True, 1.0000001)
    assert not approx_eq("1.0", 1.0)
    assert not approx_eq(float("nan"), float("nan"))
    assert approx_eq(float("inf"), float("inf")) and not approx_eq(1e308, float("inf"))
    assert approx_eq(complex(1, 1e-9), complex(1, 0))


def test_rewrite_asserts_only_touches_single_equality():
    assert "__ilf_approx_eq__(f(1), 2.5)" in rewrite_asserts("assert f(1) == 2.5")
    assert rewrite_asserts("assert f(1) != 2") == "assert f(1) != 2"
    assert rewrite_asserts("assert a == b == c") == "assert a == b == c"
    assert rewrite_asserts("assert f(") == "assert f("


def test_setup_code_runs_between_program_and_asserts():
    tasks = make_tasks({1: (["assert f(n) == 8"], "n = base * 2", None)})
    prog = "base = 3\ndef f(x):\n    return x + 2\n"
    assert run([{"task_id": 1, "program": prog}], tasks)["passed"].tolist() == [True]


@pytest.mark.parametrize(
    ("exit_code", "status", "etype"),
    [
        ("import sys\nsys.exit(0)", "error", "SystemExit"),
        ("raise SystemExit", "error", "SystemExit"),
        ("exit()", "error", "SystemExit"),
        ("quit(0)", "error", "SystemExit"),
        ("import os\nos._exit(0)", "crashed", "EarlyExit"),
        ("import os\nos._exit(3)", "crashed", "ExitCode3"),
        ("import os, signal\nos.kill(os.getpid(), signal.SIGTERM)", "crashed", "SIGTERM"),
    ],
)
def test_early_exit_is_not_a_pass(toy_tasks, exit_code, status, etype):
    res = run([{"task_id": 1, "program": GOOD + exit_code + "\n"}], toy_tasks)
    assert (res["passed"][0], res["status"][0], res["error_type"][0]) == (False, status, etype)


def test_exit_in_asserts_is_not_a_pass():
    tasks = make_tasks({1: (["assert f(1) == 2", "assert f(2) == 3"], "", None)})
    prog = "import os\ndef f(x):\n    if x == 2:\n        os._exit(0)\n    return x + 1\n"
    res = run([{"task_id": 1, "program": prog}], tasks)
    assert res["status"][0] == "crashed" and not res["passed"][0]


def test_task_without_asserts_is_not_a_pass():
    res = run([{"task_id": 1, "program": GOOD}], make_tasks({1: ([], "", None)}))
    assert (res["status"][0], res["error_type"][0]) == ("error", "NoTests")


def test_per_task_time_limits_and_fallback_timeout():
    tasks = make_tasks(
        {
            1: (["assert f(1) == 2"], "", 0.4),
            2: (["assert f(1) == 2"], "", 5.0),
            3: (["assert f(1) == 2"], "", None),
        }
    )
    slow = "import time\ntime.sleep(0.8)\n" + GOOD
    programs = [{"task_id": t, "program": slow} for t in (1, 2, 3)]
    res = run(programs, tasks, timeout_s=0.5)
    assert res["status"].tolist() == ["timeout", "passed", "timeout"]
    assert res["error_type"][0] == "Timeout"
    # killed at its limit, not before (after it, how long the kill takes depends on load;
    # that it came at all, before the 0.8 s program could pass, the status shows)
    assert res["duration_s"][0] >= 0.4
    res = run(programs, tasks.drop(columns="time_limit_s"), timeout_s=5.0)
    assert res["passed"].all()


# Needs 0.4 s of CPU; its limit is 1 s. Sharing one CPU with three spinning processes it
# gets at most a quarter of it, so at least 1.6 s pass before it ends: a limit counting
# every second of the wall clock would time it out.
NEEDS_CPU = "import time\nwhile time.process_time() < 0.4:\n    pass\n" + GOOD


@contextlib.contextmanager
def one_cpu_shared_with_spinners(n: int):
    """This process (so the sandbox server and its programs, which inherit it) on one CPU
    with ``n`` processes spinning on it."""
    cpus = os.sched_getaffinity(0)
    cpu = min(cpus)
    with spinners(n, cpu):
        os.sched_setaffinity(0, {cpu})
        try:
            yield
        finally:
            os.sched_setaffinity(0, cpus)


# The credit for waits reads the kernel's scheduler statistics; without them a limit is
# wall clock again, as documented, and these two tests have nothing to check.
needs_schedstat = pytest.mark.skipif(
    not Path("/proc/self/schedstat").exists(),
    reason="the kernel keeps no scheduler statistics (/proc/<pid>/schedstat)",
)


@needs_schedstat
@pytest.mark.parametrize("namespaces", [True, False], ids=["namespaces", "fallback"])
def test_a_limit_is_not_spent_waiting_for_a_cpu_that_others_hold(namespaces):
    with one_cpu_shared_with_spinners(3):
        res = run(
            [{"task_id": 1, "program": NEEDS_CPU}],
            make_tasks({1: (["assert f(1) == 2"], "", 1.0)}),
            namespaces=namespaces,
        )
    assert res["status"][0] == "passed", res["error_message"][0]


@needs_schedstat
def test_a_program_slowed_by_load_in_a_busy_batch_is_not_starved():
    """The same program first in a batch (its limit is the longest): on one CPU the server
    runs one busy program at a time, so the others are all waiting when it has run 1 s and
    stops counting as busy. Reniced then, it would starve behind the spinners."""
    tasks = make_tasks({1: (["assert f(1) == 2"], "", 1.0), 2: (["assert f(1) == 2"], "", 0.9)})
    programs = pd.DataFrame({"task_id": [1] + [2] * 20, "program": [NEEDS_CPU] + [GOOD] * 20})
    with one_cpu_shared_with_spinners(3):
        res = run(programs, tasks)
    assert res["status"].value_counts().to_dict() == {"passed": 21}


def test_empty_programs_frame(toy_tasks):
    empty = pd.DataFrame({"task_id": pd.Series(dtype="int64"), "program": pd.Series(dtype=object)})
    res = run(empty, toy_tasks)
    assert len(res) == 0
    assert list(res.columns) == ["task_id", "program", *RESULT_COLUMNS]
    assert res["passed"].dtype == bool and res["duration_s"].dtype == "float64"


def test_unknown_task_and_missing_columns(toy_tasks):
    with pytest.raises(ValueError, match="missing from tasks"):
        run([{"task_id": 99, "program": GOOD}], toy_tasks)
    with pytest.raises(ValueError, match="program"):
        run(pd.DataFrame({"task_id": [1]}), toy_tasks)


def test_environment_cwd_and_output(toy_tasks, monkeypatch):
    monkeypatch.setenv("ILF_TEST_SECRET_TOKEN", "hunter2")
    prog = (
        "import os, sys\n"
        "assert 'ILF_TEST_SECRET_TOKEN' not in os.environ\n"
        "assert not any('hunter2' in v for v in os.environ.values())\n"
        "assert os.getcwd() == os.environ['HOME'] and os.listdir('.') == []\n"
        "open('scratch.txt', 'w').write('ok')\n"
        "assert open('scratch.txt').read() == 'ok'\n"
        "print('hello ' * 1000)\n"
        "print('to stderr', file=sys.stderr)\n" + GOOD
    )
    res = run([{"task_id": 1, "program": prog}], toy_tasks, keep_output=True, max_output_chars=50)
    assert res["status"][0] == "passed", res["error_message"][0]
    assert res["output"][0] == ("hello " * 1000)[:50]


def test_progress_bar_and_workers(toy_tasks, capsys):
    programs = pd.DataFrame({"task_id": [1] * 12, "program": [GOOD] * 12})
    res = evaluate_programs(programs, toy_tasks, workers=1, progress=True)
    assert res["passed"].all()
    assert "Running tests" in capsys.readouterr().err


def test_many_programs_in_parallel(toy_tasks):
    n = 300
    programs = pd.DataFrame(
        {
            "task_id": [1] * n,
            "program": [GOOD if i % 3 else "def f(x):\n    return x\n" for i in range(n)],
        }
    )
    res = run(programs, toy_tasks, workers=os.cpu_count())
    assert res["passed"].tolist() == [bool(i % 3) for i in range(n)]


def test_a_sandbox_that_cannot_run_programs_fails_loudly(toy_tasks, monkeypatch):
    # A broken installation: the server script cannot be started, every attempt. No
    # program ran, so there must be no verdict (before: rows "crashed", pass@k silently 0).
    script = sandbox_client.SERVER_SCRIPT.with_name("gone.py")
    monkeypatch.setattr(sandbox_client, "SERVER_SCRIPT", script)
    with pytest.raises(SandboxError, match=r"could not run 2 of 2 .*gone\.py"):
        run([{"task_id": 1, "program": GOOD}] * 2, toy_tasks)


# Correct programs whose values equal the literal under Python's == (as under every other
# harness) but are not of the literal's exact type.
EQUAL_UNDER_PYTHON = {
    "numpy_float": "import numpy as np\ndef f(x):\n    return np.mean([x, x + 2])\n",
    "numpy_int": "import numpy as np\ndef f(x):\n    return np.int64(x + 1)\n",
    "numpy_array": "import numpy as np\ndef f(x):\n    return np.array([x + 1])\n",
    "fraction": "from fractions import Fraction\ndef f(x):\n    return Fraction(2 * x + 2, 2)\n",
    "int_subclass": "class Score(int):\n    pass\ndef f(x):\n    return Score(x + 1)\n",
}


def test_values_equal_under_pythons_eq_pass(toy_tasks):
    programs = pd.DataFrame({"task_id": 1, "program": list(EQUAL_UNDER_PYTHON.values())})
    res = run(programs, toy_tasks)
    assert res["status"].tolist() == ["passed"] * len(programs), res["error_message"].tolist()
    assert res["trusted"].all()


# Programs whose values lie beyond a small wire format: (assert, a correct program, a wrong
# one). The test checks first that Python itself passes the one and fails the other.
DEEP = "def f(n):\n    x = []\n    for _ in range(n):\n        x = [x]\n    return x\n"
DEPTH = "def depth(x):\n    n = 0\n    while x:\n        x, n = x[0], n + 1\n    return n\n"
BEYOND_THE_WIRE = {
    "int_of_5001_digits": (
        "assert f(5000) == 10 ** 5000",
        "def f(n):\n    return 10 ** n\n",
        "def f(n):\n    return 10 ** n + 1\n",
    ),
    "a_million_ints": (
        "assert f(10 ** 6) == list(range(10 ** 6))",
        "def f(n):\n    return list(range(n))\n",
        "def f(n):\n    return list(range(1, n + 1))\n",
    ),
    "list_holding_itself": (
        "assert len(f(1)) == 2 and f(1)[0] == 1 and len(f(1)[1][1][1]) == 2",
        "def f(n):\n    x = [n]\n    x.append(x)\n    return x\n",
        "def f(n):\n    x = [n]\n    x.append(x)\n    x.append(n)\n    return x\n",
    ),
    "tuple_holding_itself_through_a_list": (
        "assert len(f(1)[0][0][0]) == 1 and len(f(1)[0]) == 1",
        "def f(n):\n    x = []\n    t = (x,)\n    x.append(t)\n    return t\n",
        "def f(n):\n    x = []\n    t = (x,)\n    x.append(t)\n    x.append(t)\n    return t\n",
    ),
    "nested_3000_deep": (
        "assert depth(f(3000)) == 3000",
        DEEP + DEPTH,
        DEEP.replace("range(n)", "range(n - 1)") + DEPTH,
    ),
    "nested_3000_deep_into_len": ("assert len(f(3000)) == 1", DEEP, DEEP.replace("[x]", "[x, x]")),
    "generator_into_list": (
        "assert list(f(3)) == [0, 1, 2]",
        "def f(n):\n    yield from range(n)\n",
        "def f(n):\n    yield from range(n + 1)\n",
    ),
    "generator_into_sum_and_sorted": (
        "assert sum(f(3)) == 3 and sorted(f(3), reverse=True) == [2, 1, 0]",
        "def f(n):\n    return (i for i in range(n))\n",
        "def f(n):\n    return (i for i in range(1, n))\n",
    ),
    "map_into_set": (
        "assert set(f([1, 2])) == {2, 3}",
        "def f(x):\n    return map(lambda v: v + 1, x)\n",
        "def f(x):\n    return map(lambda v: v, x)\n",
    ),
}


@pytest.fixture(scope="module")
def beyond_the_wire() -> dict:
    """Every case's correct and wrong program judged in one batch (the harness's own
    parallelism): {name: (status of the correct one, of the wrong one, both trusted)}."""
    names = list(BEYOND_THE_WIRE)
    tasks = make_tasks({i: ([BEYOND_THE_WIRE[n][0]], "", 30.0) for i, n in enumerate(names)})
    programs = pd.DataFrame(
        {
            "task_id": [*range(len(names))] * 2,
            "program": [BEYOND_THE_WIRE[n][1] for n in names]
            + [BEYOND_THE_WIRE[n][2] for n in names],
        }
    )
    res = run(programs, tasks)
    k = len(names)
    status, trusted = res["status"].tolist(), res["trusted"].tolist()
    return {
        n: (status[i], status[k + i], trusted[i] and trusted[k + i]) for i, n in enumerate(names)
    }


@pytest.mark.slow
@pytest.mark.parametrize("name", list(BEYOND_THE_WIRE))
def test_values_of_any_size_and_shape_are_judged_as_python_would(name, beyond_the_wire):
    test, right, wrong = BEYOND_THE_WIRE[name]
    exec(right + test, {})  # Python's own answer, in this process
    with pytest.raises(AssertionError):
        exec(wrong + test, {})
    assert beyond_the_wire[name] == ("passed", "failed", True)


def test_a_limit_of_the_harness_is_no_failure_of_the_program(caplog):
    tasks = make_tasks({1: (["assert f(1) == 2", "assert len(g(10 ** 4)) == 10 ** 4"], "", 30)})
    program = "def f(x):\n    return x + 1\ndef g(n):\n    return 'x' * n\n"
    big = "def f(x):\n    return list(range(10 ** 4))\n" + program.split("\n", 2)[2]
    res = run([{"task_id": 1, "program": p} for p in (program, big)], tasks, max_result_bytes=1000)
    assert res["status"].tolist() == ["passed", "harness_limit"]  # len() crosses as an int
    assert res["error_type"][1] == "HarnessLimit" and not res["passed"][1]
    message = "test 1/2: assert f(1) == 2 -- not judged: the calls' values: larger than 1000"
    assert message in res["error_message"][1]
    assert "1 program(s) not judged: the harness reached a limit of its own" in caplog.text


def test_containers_and_records_compare_by_contents():
    tasks = make_tasks(
        {
            1: (["assert f('aab') == {'a': 2, 'b': 1}"], "", None),
            2: (["assert f(1) == (1, 2)", "assert f(2) != [2, 3]"], "", None),
            3: (["assert f(3) == [0, 1, 2]"], "", None),
        }
    )
    programs = [
        (1, "from collections import Counter\ndef f(s):\n    return Counter(s)\n"),
        (
            2,
            "from collections import namedtuple\nP = namedtuple('P', 'a b')\n"
            "def f(x):\n    return P(x, x + 1)\n",
        ),
        (3, "from collections import deque\ndef f(n):\n    return deque(range(n))\n"),
        (3, "def f(n):\n    return range(n)\n"),
    ]
    res = run([{"task_id": t, "program": p} for t, p in programs], tasks)
    assert res["status"].tolist() == ["passed", "passed", "failed", "failed"]
    assert res["error_message"][3].endswith("the call returned range(0, 3)")


def test_a_task_set_declares_how_numbers_compare():
    tests = ["assert f(1) == 0.1 + 0.2", "assert abs(f(2) - 0.3) < 1e-9"]
    loop = ["for x in (1, 2):\n    assert f(x) == 0.1 + 0.2"]  # run in the program's process
    almost = "def f(x):\n    return 0.3\n"
    for asserts, trusted in ((tests, True), (loop, False)):
        tasks = make_tasks({1: (asserts, "", None)})
        tolerant = run([{"task_id": 1, "program": almost}], tasks)
        exact = run([{"task_id": 1, "program": almost}], tasks.assign(equality="exact"))
        assert (tolerant["status"][0], exact["status"][0]) == ("passed", "failed")
        assert bool(exact["trusted"][0]) is trusted
    with pytest.raises(ValueError, match=r"'equality' has \['approx'\]; allowed"):
        run([{"task_id": 1, "program": almost}], tasks.assign(equality="approx"))


def test_a_program_may_name_its_function_like_a_builtin():
    # MBPP 126 asks for `sum(a, b)`: its call is the program's, not Python's sum
    tasks = make_tasks({1: (["assert sum(10, 15) == 6", "assert sum(4, 8) == 7"], "", None)})
    program = (
        "def sum(a, b):\n    total = 0\n    for d in range(1, min(a, b) + 1):\n"
        "        if a % d == 0 and b % d == 0:\n            total += d\n    return total\n"
    )
    wrong = "def sum(a, b):\n    return a + b\n"
    res = run([{"task_id": 1, "program": p} for p in (program, wrong)], tasks)
    assert res["status"].tolist() == ["passed", "failed"] and res["trusted"].all()


# An expected value no program is told: the honest program builds it, the hunter looks
# for it everywhere it can read (its own interpreter's memory, which is the sandbox
# server's, forked; files; other processes) and returns what it finds. An assert that runs
# in the program's process (``or``: untrusted) hands the program its text: there the
# hunter finds the value, which shows that it would find it anywhere it can read.
SECRET = "expected-" + "7f3a9c"
HUNTER = r"""
import gc, os, re
PATTERN = re.compile("expected-" + "[0-9a-f]{6}")
def hunt():
    for obj in gc.get_objects():
        items = [*obj.keys(), *obj.values()] if isinstance(obj, dict) else obj
        for text in items if isinstance(obj, (list, tuple, dict)) else [obj]:
            found = PATTERN.search(text) if isinstance(text, str) else None
            if found:
                return found.group()
    for top in ("/proc", "/tmp", "/dev/shm", "/run", "/var", "/root", "/home", "/work"):
        for root, dirs, files in os.walk(top):
            if root.count("/") > 3:
                dirs[:] = []
            for name in files:
                try:
                    with open(os.path.join(root, name), "rb") as handle:
                        found = PATTERN.search(handle.read(1 << 20).decode("latin-1"))
                except OSError:
                    continue
                if found:
                    return found.group()
FOUND = hunt()
def f(x):
    return FOUND
"""
JUDGED, IN_PROGRAM = 7, 8  # the task judged in the harness; the one whose assert is not


def secret_workload() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Tasks whose asserts hold an expected value no program knows, and the honest
    program and the hunter for each."""
    tasks = make_tasks(
        {
            JUDGED: ([f"assert f(1) == {SECRET!r}", f"assert len(f(2)) == {len(SECRET)}"], "", 30),
            IN_PROGRAM: ([f"assert f(1) == {SECRET!r} or f(1) == 0"], "", 30),
        }
    )
    honest = 'def f(x):\n    return "expected-" + "7f3a9c"\n'
    programs = pd.DataFrame(
        {
            "name": ["honest", "hunter", "honest_in_program", "hunter_in_program"],
            "task_id": [JUDGED, JUDGED, IN_PROGRAM, IN_PROGRAM],
            "program": [honest, HUNTER] * 2,
        }
    )
    return programs, tasks


def test_the_sandbox_is_given_no_expected_value():
    import pickle

    programs, tasks = secret_workload()
    judged = programs[programs["task_id"] == JUDGED]
    evaluation = prepare_evaluation(judged, tasks)
    assert SECRET.encode() in pickle.dumps(tasks)  # the check sees it where it is
    assert SECRET.encode() not in pickle.dumps(evaluation.work)
    assert all(SECRET.encode() not in pickle.dumps(s) for s in evaluation.work.shards(1))
    res = run(programs, tasks).set_index("name")
    assert res.loc["honest", "passed"] and res.loc["honest", "trusted"]
    assert res.loc["hunter", "status"] == "failed"
    assert res.loc["hunter", "error_message"].endswith("the call returned None")
    # The hunter finds the value where it is in its reach, and forges an untrusted pass.
    assert res.loc["hunter_in_program", "passed"]
    assert not res.loc["hunter_in_program", "trusted"]

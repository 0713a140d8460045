"""The Kedro-facing helpers: the validated ``execution`` section in, results frame out."""

from __future__ import annotations

import inspect

import pandas as pd
import pytest

from ilf_kedro.compute.ray_verdicts import evaluate_programs_on_ray
from ilf_kedro.execution import (
    RESULT_COLUMNS,
    TIME_LIMIT_COLUMNS,
    calibrate_time_limits,
    evaluate_node,
    evaluate_programs,
    time_limits_node,
    with_time_limits,
)
from ilf_kedro.parameters import Execution, ParameterError
from tests.execution.conftest import GOOD, make_tasks

PARAMS = Execution(timeout_s=3.0, workers=None, memory_mb=512, progress=False)


def _with(**settings) -> Execution:
    return PARAMS.model_copy(update=settings)


def test_empty_programs_give_empty_results(toy_tasks):
    empty = pd.DataFrame(
        {"task_id": pd.Series(dtype="int64"), "program": pd.Series(dtype=object), "x": []}
    )
    res = evaluate_node(empty, toy_tasks.drop(columns="time_limit_s"), None, PARAMS)
    assert len(res) == 0
    assert list(res.columns) == ["task_id", "program", "x", *RESULT_COLUMNS]
    assert dict(res.dtypes.astype(str))["passed"] == "bool"
    assert dict(res.dtypes.astype(str))["duration_s"] == "float64"
    assert dict(res.dtypes.astype(str))["trusted"] == "bool"


def test_evaluate_node_takes_the_validated_section(toy_tasks):
    programs = pd.DataFrame({"task_id": [1, 1], "program": [GOOD, "import time\ntime.sleep(5)"]})
    res = evaluate_node(programs, toy_tasks, None, _with(timeout_s=2.0))
    assert res["status"].tolist() == ["passed", "timeout"]
    assert res["trusted"].tolist() == [True, True]


@pytest.mark.parametrize(
    "function", [evaluate_programs, calibrate_time_limits, evaluate_programs_on_ray]
)
def test_the_execution_settings_have_one_source(function):
    """No keyword of the library functions repeats an ``Execution`` setting (and with it
    its default): they take the section and overrides of it, validated by the schema."""
    own = set(inspect.signature(function).parameters) - {"progress"}  # calibration's own
    assert not own & set(Execution.model_fields)
    assert "execution" in inspect.signature(function).parameters


def test_library_callers_get_the_schema_defaults_and_rules(toy_tasks):
    programs = pd.DataFrame({"task_id": [1], "program": [GOOD]})
    res = evaluate_programs(programs, toy_tasks, progress=False)
    assert res["status"].tolist() == ["passed"]
    with pytest.raises(ParameterError, match="execution.memory_mb"):
        evaluate_programs(programs, toy_tasks, memory_mb=1)
    with pytest.raises(ParameterError, match="unknown parameter execution.timeout;"):
        evaluate_programs(programs, toy_tasks, timeout=1)


def test_time_limits_dataset_is_calibrated_and_then_read():
    slow_gold = "import time\ntime.sleep(0.6)\n" + GOOD
    tasks = make_tasks({1: (["assert f(1) == 2"], "", None), 2: (["assert f(1) == 2"], "", None)})
    tasks = tasks.drop(columns="time_limit_s").assign(gold_code=[GOOD, slow_gold])
    params = _with(time_limit_floor_s=0.5, time_limit_factor=4.0)
    limits = time_limits_node(tasks, params)
    assert tuple(limits.columns) == TIME_LIMIT_COLUMNS and limits["task_id"].tolist() == [1, 2]
    by_task = limits.set_index("task_id")
    assert by_task.loc[1, "time_limit_s"] == 0.5
    assert by_task.loc[2, "gold_duration_s"] >= 0.6  # its sleep; how much longer is load
    assert by_task.loc[2, "time_limit_s"] == pytest.approx(4 * by_task.loc[2, "gold_duration_s"])
    # the node reads the limits it is given: the slow program fits task 2's limit only (at
    # least 4 x 0.6 s for a program that sleeps 0.6 s and computes nothing; task 1's 0.5 s
    # it cannot fit under any load)
    programs = pd.DataFrame({"task_id": [1, 2], "program": [slow_gold, slow_gold]})
    res = evaluate_node(programs, tasks, limits, params)
    assert res["status"].tolist() == ["timeout", "passed"]
    # and nothing is remembered between calls: other limits, other verdicts
    res = evaluate_node(programs, tasks, limits.assign(time_limit_s=[5.0, 0.3]), params)
    assert res["status"].tolist() == ["passed", "timeout"]


def test_tasks_missing_from_the_time_limits_get_timeout_s(caplog):
    tasks = make_tasks({1: (["assert f(1) == 2"], "", None), 2: (["assert f(1) == 2"], "", None)})
    limits = pd.DataFrame({"task_id": [1], "time_limit_s": [5.0], "gold_duration_s": [0.01]})
    slow = "import time\ntime.sleep(0.8)\n" + GOOD
    programs = pd.DataFrame({"task_id": [1, 2], "program": [slow, slow]})
    res = evaluate_node(programs, tasks, limits, _with(timeout_s=0.4))
    assert res["status"].tolist() == ["passed", "timeout"]
    assert "no limit for 1 task" in caplog.text
    with pytest.raises(ValueError, match="time_limit_s"):
        with_time_limits(tasks, limits.drop(columns="time_limit_s"))

"""The Kedro-facing helpers: parameters in, results frame out."""

from __future__ import annotations

import pandas as pd

from ilf_kedro.execution import RESULT_COLUMNS, evaluate_node, with_time_limits
from ilf_kedro.execution.nodes import _calibration_cache
from tests.execution.conftest import GOOD, make_tasks

PARAMS = {"timeout_s": 3.0, "workers": None, "memory_mb": 512, "progress": False}


def test_empty_programs_give_empty_results(toy_tasks):
    empty = pd.DataFrame(
        {"task_id": pd.Series(dtype="int64"), "program": pd.Series(dtype=object), "x": []}
    )
    res = evaluate_node(empty, toy_tasks.drop(columns="time_limit_s"), PARAMS)
    assert len(res) == 0
    assert list(res.columns) == ["task_id", "program", "x", *RESULT_COLUMNS]
    assert dict(res.dtypes.astype(str))["passed"] == "bool"
    assert dict(res.dtypes.astype(str))["duration_s"] == "float64"


def test_evaluate_node_unpacks_parameters(toy_tasks, caplog):
    programs = pd.DataFrame({"task_id": [1, 1], "program": [GOOD, "import time\ntime.sleep(5)"]})
    res = evaluate_node(programs, toy_tasks, {**PARAMS, "timeout_s": 0.5, "bogus": 1})
    assert res["status"].tolist() == ["passed", "timeout"]
    assert "bogus" in caplog.text


def test_calibration_when_tasks_lack_limits():
    _calibration_cache.clear()
    slow_gold = "import time\ntime.sleep(0.6)\n" + GOOD
    tasks = make_tasks({1: (["assert f(1) == 2"], "", None), 2: (["assert f(1) == 2"], "", None)})
    tasks = tasks.drop(columns="time_limit_s").assign(gold_code=[GOOD, slow_gold])
    params = {**PARAMS, "time_limit_floor_s": 0.5, "time_limit_factor": 4.0}
    limited = with_time_limits(tasks, params)
    limits = limited.set_index("task_id")["time_limit_s"]
    assert limits[1] == 0.5 and 2.4 <= limits[2] < 4.0
    # evaluate_node calibrates on its own: the slow program fits task 2's limit only
    programs = pd.DataFrame({"task_id": [1, 2], "program": [slow_gold, slow_gold]})
    res = evaluate_node(programs, tasks, params)
    assert res["status"].tolist() == ["timeout", "passed"]

"""Verdicts on the 2-node loopback cluster equal the local harness's, hostile programs
included, in input order; the nodes are never given an expected value."""

from __future__ import annotations

import pickle

import pandas as pd
import pytest

from ilf_kedro.compute.ray_verdicts import evaluate_programs_on_ray, verdict_shards
from ilf_kedro.execution import evaluate_programs
from ilf_kedro.parameters import Compute, Execution
from ilf_kedro.pipelines.stage_nodes import run_tests
from tests.compute.conftest import every_node_at_once, seen_on
from tests.execution.conftest import make_tasks
from tests.execution.test_harness import JUDGED, SECRET, secret_workload
from tests.execution.test_isolation import EXPECTED, hostile_programs, hostile_workload

KWARGS = {"progress": False, "memory_mb": 512, "max_processes": 32}
COMPUTE = {"backend": "ray", "verdicts": {"programs_per_task": 4}}


@pytest.fixture
def toy_tasks() -> pd.DataFrame:
    return make_tasks({1: (["assert f(1) == 2", "assert f(2) == 3"], "", None)})


def _hostile(tmp_path):
    victim_dir = tmp_path / "victim"
    victim_dir.mkdir()
    # Index not 0..n-1: it must survive the trip through the cluster.
    n = len(hostile_programs(victim_dir))
    programs, tasks = hostile_workload(victim_dir, index=pd.RangeIndex(100, 100 + n))
    return programs, tasks, victim_dir


def test_hostile_programs_get_the_local_verdicts_in_input_order(ray_cluster, tmp_path):
    import time

    programs, tasks, victim_dir = _hostile(tmp_path)
    started_ms = int(time.time() * 1000)
    with every_node_at_once(ray_cluster):
        on_ray = evaluate_programs_on_ray(
            programs, tasks, compute={**COMPUTE, "address": ray_cluster.address}, **KWARGS
        )
    local = evaluate_programs(programs, tasks, **KWARGS)

    assert on_ray.index.equals(programs.index)
    assert list(on_ray.columns) == list(local.columns)
    assert on_ray["name"].tolist() == programs["name"].tolist()
    wrong = {
        row.name: (row.status, row.error_type)
        for row in on_ray.itertuples()
        if row.status not in EXPECTED[row.name]
    }
    assert not wrong
    # Where the verdict is determined (one allowed status), the two runs agree exactly.
    settled = [i for i, name in programs["name"].items() if len(EXPECTED[name]) == 1]
    columns = ["passed", "status", "error_type", "trusted"]
    pd.testing.assert_frame_equal(on_ray.loc[settled, columns], local.loc[settled, columns])
    assert (victim_dir / "victim.txt").read_text() == "intact"
    # Ray's own task state: shards ran on both nodes.
    nodes = ray_cluster.node_ids()
    assert nodes <= seen_on(lambda: ray_cluster.task_nodes("_run_shard", started_ms), nodes)


def test_the_nodes_are_given_no_expected_value(ray_cluster):
    programs, tasks = secret_workload()
    compute = {"backend": "ray", "address": ray_cluster.address}
    compute["verdicts"] = {"programs_per_task": 1}
    # What is sent to the nodes, one Ray task per shard: no expected value in any.
    judged = programs[programs["task_id"] == JUDGED]
    _, shards = verdict_shards(judged, tasks, compute=compute)
    assert len(shards) == 2
    assert all(SECRET.encode() not in pickle.dumps(shard) for shard in shards)

    on_ray = evaluate_programs_on_ray(programs, tasks, compute=compute, **KWARGS)
    local = evaluate_programs(programs, tasks, **KWARGS)
    pd.testing.assert_frame_equal(
        on_ray.drop(columns="duration_s"), local.drop(columns="duration_s")
    )
    verdicts = on_ray.set_index("name")
    # The hunter, on a node, finds the value only where an untrusted assert hands it over.
    assert verdicts.loc["honest", "passed"] and verdicts.loc["honest", "trusted"]
    assert verdicts.loc["hunter", "status"] == "failed"
    assert verdicts.loc["hunter_in_program", "passed"]
    assert not verdicts.loc["hunter_in_program", "trusted"]


def test_the_node_judges_on_the_cluster_of_the_compute_section(ray_cluster, toy_tasks):
    programs = pd.DataFrame(
        {
            "task_id": [1] * 6,
            "program": ["def f(x):\n    return x + 1\n", "def f(x):\n    return x\n"] * 3,
        }
    )
    compute = Compute.model_validate({**COMPUTE, "address": ray_cluster.address})
    execution = Execution(progress=False)
    on_ray = run_tests(programs, toy_tasks, None, execution, compute)
    local = run_tests(programs, toy_tasks, None, execution, Compute())
    pd.testing.assert_frame_equal(
        on_ray.drop(columns="duration_s"), local.drop(columns="duration_s")
    )
    assert on_ray["passed"].tolist() == [True, False] * 3


def test_an_empty_frame_needs_no_cluster(toy_tasks):
    empty = pd.DataFrame({"task_id": pd.Series([], dtype="int64"), "program": []})
    result = evaluate_programs_on_ray(
        empty, toy_tasks, compute={"backend": "ray", "address": "ray://nowhere:1"}
    )
    assert result.empty and "passed" in result.columns


@pytest.mark.parametrize("bad", [{"backend": "ray", "verdicts": {"num_cpus": 0}}])
def test_bad_compute_settings_are_named(bad, toy_tasks):
    programs = pd.DataFrame({"task_id": [1], "program": ["x = 1"]})
    with pytest.raises(ValueError, match="verdicts.num_cpus"):
        evaluate_programs_on_ray(programs, toy_tasks, compute=bad)

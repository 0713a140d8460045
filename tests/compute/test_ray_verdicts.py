"""Verdicts on the 2-node loopback cluster equal the local harness's, hostile programs
included, in input order."""

from __future__ import annotations

import pandas as pd
import pytest

from ilf_kedro.compute.ray_verdicts import evaluate_programs_on_ray
from ilf_kedro.execution import evaluate_node, evaluate_programs
from ilf_kedro.parameters import Compute, Execution
from tests.execution.conftest import make_tasks
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


def _shard_nodes(address: str, since_ms: int) -> set[str]:
    """Nodes of the cluster at ``address`` that ran verdict shards since ``since_ms``
    (Ray's state API; the address, in case another Ray instance runs on the machine)."""
    from ray.util.state import list_tasks

    only = [("name", "=", "_judge_shard")]
    tasks = list_tasks(address=address, filters=only, detail=True, limit=10_000)
    return {t.node_id for t in tasks if t.node_id and (t.start_time_ms or 0) >= since_ms}


def test_hostile_programs_get_the_local_verdicts_in_input_order(ray_cluster, tmp_path):
    import time

    programs, tasks, victim_dir = _hostile(tmp_path)
    started_ms = int(time.time() * 1000)
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
    time.sleep(2)  # task events reach the GCS about once a second
    assert ray_cluster.node_ids() <= _shard_nodes(ray_cluster.address, started_ms)


def test_evaluate_node_dispatches_on_the_compute_section(ray_cluster, toy_tasks):
    programs = pd.DataFrame(
        {
            "task_id": [1] * 6,
            "program": ["def f(x):\n    return x + 1\n", "def f(x):\n    return x\n"] * 3,
        }
    )
    compute = Compute.model_validate({**COMPUTE, "address": ray_cluster.address})
    on_ray = evaluate_node(programs, toy_tasks, None, Execution(progress=False, compute=compute))
    local = evaluate_node(programs, toy_tasks, None, Execution(progress=False))
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

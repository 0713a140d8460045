"""What a run's parameters decide about its pipelines' shape (``rounds``, ``sweep.shares``,
``evaluation.task_sets``, ``input_pipelines``) reaches the registered pipelines through a
real Kedro session's hook, with the environment and ``--params`` applied; the pipeline
modules keep no state between sessions."""

from __future__ import annotations

import importlib

import pytest

from ilf_kedro.infra.project_parameters import load_parameters
from ilf_kedro.ingest.task_sets import TaskSet
from ilf_kedro.parameters import validate_parameters
from ilf_kedro.pipelines.run_plan import RunPlan
from tests.kedro_project import DEMO_ENV, copy_project, nested


def _registered(project, env=DEMO_ENV, params=None):
    """The pipelines Kedro builds for a session in ``env`` with ``params`` (no node runs)."""
    from kedro.framework.project import pipelines
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    bootstrap_project(project)  # reconfigures Kedro's registry: nothing cached from before
    with KedroSession.create(
        project_path=project, env=env, runtime_params=nested(params or {})
    ) as session:
        session.load_context()  # what `kedro run` does before it reads the pipelines
        return dict(pipelines)


def _namespaces(pipeline) -> set[str]:
    return {(node.namespace or "").split(".")[0] for node in pipeline.nodes}


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    return copy_project(tmp_path_factory.mktemp("run_plan") / "project")


def test_the_run_parameters_shape_the_registered_pipelines(project):
    params = {
        "rounds": 3,
        "evaluation.task_sets": "mbpp humaneval",  # as --params spells a list of two
        "input_pipelines": ["world"],
        "sweep.shares": "0.1 0.5",  # as --params spells a list of two
    }
    registered = _registered(project, params=params)
    assert {"sweep_10", "sweep_50"} <= _namespaces(registered["ilf_sweep"])
    assert "sweep_25" not in _namespaces(registered["ilf_sweep"])
    assert {"round_1", "round_2", "round_3"} <= _namespaces(registered["ilf_rounds"])
    assert "round_4" not in _namespaces(registered["ilf_rounds"])
    for name in ("evaluation", "ilf", "ilf_ablations", "__default__"):
        assert "humaneval" in _namespaces(registered[name]), name
    for name in ("ilf", "ilf_ablations", "ilf_rounds", "ilf_sweep"):
        assert "generate_world_tasks" in {n.name for n in registered[name].nodes}, name
    assert "generate_world_tasks" not in {n.name for n in registered["evaluation"].nodes}

    # The next session in the same process gets its own parameters' shape (the demo's:
    # conf/base's two rounds, MBPP only, no input pipeline).
    plain = _registered(project)
    assert {"round_1", "round_2"} <= _namespaces(plain["ilf_rounds"])
    assert "round_3" not in _namespaces(plain["ilf_rounds"])
    assert "humaneval" not in _namespaces(plain["ilf"])
    assert {"sweep_25", "sweep_50"} == {
        n for n in _namespaces(plain["ilf_sweep"]) if n.startswith("sweep_")
    }
    assert "generate_world_tasks" not in {n.name for n in plain["ilf"].nodes}


def test_the_default_plan_is_what_every_pipeline_builds_without_arguments():
    # The registry skips the default plan (``pipelines`` returns nothing) because
    # ``find_pipelines`` already built these shapes: that holds only if building each
    # pipeline for the default plan gives exactly its ``create_pipeline()``.
    names = ["evaluation", "ilf", "ilf_ablations", "ilf_rounds", "ilf_sweep"]
    plan = RunPlan()
    assert plan.pipelines(names) == {}
    built = plan.build(names)
    assert sorted(built) == names
    for name in names:
        module = importlib.import_module(f"ilf_kedro.pipelines.{name}")
        assert built[name].describe() == module.create_pipeline().describe(), name


def test_the_plan_comes_from_validated_parameters(project):
    params = ["rounds=2", "evaluation.task_sets=[mbpp,humaneval]"]  # kedro run --params
    params = load_parameters(DEMO_ENV, params, project)
    plan = RunPlan.from_parameters(validate_parameters(params))
    assert plan.rounds == 2
    assert plan.task_sets == (TaskSet("mbpp", "mbpp"), TaskSet("humaneval", "humaneval"))
    assert plan.input_pipelines == ()


def test_an_unknown_input_pipeline_stops_the_session_naming_it(project):
    with pytest.raises(ValueError, match="input_pipelines names 'wrold'"):
        _registered(project, params={"input_pipelines": ["wrold"]})

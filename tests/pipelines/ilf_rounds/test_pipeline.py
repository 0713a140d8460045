"""`kedro run --pipelines=ilf_rounds --params=rounds=N`: rounds chained through their
models, a report per round, resuming without recomputing a finished round."""

from __future__ import annotations

import pytest

from ilf_kedro import hooks
from ilf_kedro.pipelines.ilf_rounds import create_pipeline
from tests.kedro_project import copy_project, load, mlflow_runs, run_pipeline

TOY = {
    "feedback.source": "interpreter",
    "max_tasks_per_split": 2,
    "sampling.num_samples": 2,
    "sampling.max_new_tokens": 16,
}


def test_each_round_starts_from_the_previous_rounds_ilf_model():
    nodes = {node.name: node for node in create_pipeline(rounds=3).nodes}
    assert "base_model" in nodes["round_1.sample_zero_shot_programs"].inputs
    for k in (2, 3):
        sample = nodes[f"round_{k}.sample_zero_shot_programs"]
        assert f"round_{k - 1}_ilf_model" in sample.inputs
        assert f"round_{k - 1}_ilf_model" in nodes[f"round_{k}.train_ilf_model"].inputs
    assert nodes["build_rounds_report"].inputs == [
        "zero_shot_metrics",
        "round_1_metrics",
        "round_2_metrics",
        "round_3_metrics",
    ]


@pytest.mark.slow
def test_rounds_run_report_and_resume_without_recomputing_a_finished_round(tmp_path, monkeypatch):
    monkeypatch.delenv(hooks.ENV_SWITCH, raising=False)  # tracking on: its metrics are checked
    project = copy_project(tmp_path / "project")
    run_pipeline(project, "ilf_rounds", params={**TOY, "rounds": 1})
    round_1 = sorted((project / "data").rglob("round_1/*.parquet"))
    assert round_1, "round 1 wrote nothing"
    written = {path: path.stat().st_mtime_ns for path in round_1}

    # Round 2 from round 1's outputs on disk: what Kedro's resume hint runs.
    run_pipeline(
        project,
        "ilf_rounds",
        params={**TOY, "rounds": 2},
        from_nodes=["round_2.select_initial_sampling_tasks", "build_rounds_report"],
    )
    assert {path: path.stat().st_mtime_ns for path in round_1} == written
    samples = load(project, "round_2.initial_samples")
    assert len(samples) == 4 * 2  # 2 refine + 2 train tasks, 2 samples each
    report = load(project, "rounds_report")
    assert report["round"].tolist() == [0, 1, 2]
    assert report["method"].tolist() == ["zero-shot", "ILF", "ILF"]
    assert report.loc[1:, "feedback_source"].eq("interpreter").all()
    assert (project / "data/08_reporting/rounds.png").stat().st_size > 0
    # Each round's statistics are metrics of its MLflow run (catalog_tracking.yml).
    first, second = mlflow_runs(project)
    assert any(key.startswith("round_1.refinement.") for key in first.data.metrics)
    assert any(key.startswith("round_2.refinement.") for key in second.data.metrics)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"rounds": 0}, r"rounds is 0; allowed: 1 to max_rounds"),
        ({"rounds": 2, "feedback.source": "human"}, r"ilf_rounds gives each round feedback"),
    ],
)
def test_bad_rounds_settings_stop_before_anything_runs(tmp_path, params, message):
    project = copy_project(tmp_path / "project")
    with pytest.raises(ValueError, match=message):
        run_pipeline(project, "ilf_rounds", params=params)
    assert not list((project / "data").rglob("*.parquet"))

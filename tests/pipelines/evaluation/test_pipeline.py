"""Evaluation on several test sets (``evaluation.task_sets``), end to end with the tiny
model, in a copy of the project."""

import json

import pandas as pd
import pytest

from ilf_kedro import hooks
from ilf_kedro.ingest.validation import DataValidationError
from tests.kedro_project import copy_project, mlflow_runs, run_pipeline

pytestmark = pytest.mark.slow

BOTH_SETS = {
    "evaluation": {"task_sets": ["mbpp", "humaneval"]},
    "max_tasks_per_split": 2,
    "sampling": {"num_samples": 2},
}
METHODS = ["zero-shot", "ILF", "MBPP gold", "human refinements", "RFT", "ILF + RFT"]


@pytest.fixture(scope="module")
def both_sets_run(tmp_path_factory):
    """`kedro run --pipelines=ilf` on MBPP and the HumanEval-schema demo set."""
    project = copy_project(tmp_path_factory.mktemp("task_sets") / "project")
    run_pipeline(project, "ilf", params=BOTH_SETS)
    return project


def _read(project, path):
    return pd.read_parquet(project / "data" / path)


def test_every_method_is_evaluated_on_both_sets(both_sets_run):
    metrics = _read(both_sets_run, "08_reporting/eval_metrics.parquet")
    assert metrics["task_set"].tolist() == ["mbpp"] * len(METHODS) + ["humaneval"] * len(METHODS)
    assert metrics["method"].tolist() == METHODS * 2
    assert (metrics["n_tasks"] == 2).all() and (metrics["n_programs"] == 4).all()
    tasks = _read(both_sets_run, "03_primary/test_sets/humaneval/tasks.parquet")
    assert tasks["source_task_id"].tolist()[:2] == ["HumanEvalDemo/0", "HumanEvalDemo/1"]
    results = _read(both_sets_run, "07_model_output/zero_shot/humaneval/test_results.parquet")
    prompts = dict(zip(tasks["task_id"], tasks["prompt"], strict=True))
    assert sorted(set(results["task_id"])) == [0, 1]
    assert all(
        p.startswith(prompts[t])
        for t, p in zip(results["task_id"], results["program"], strict=True)
    )
    assert results["status"].notna().all()


def test_reports_show_each_set(both_sets_run):
    table = _read(both_sets_run, "08_reporting/comparison_table.parquet")
    assert table["task_set"].tolist() == ["mbpp"] * len(METHODS) + ["humaneval"] * len(METHODS)
    markdown = (both_sets_run / "data/08_reporting/comparison_table.md").read_text()
    assert "## MBPP_Test" in markdown and "## humaneval" in markdown
    summary = (both_sets_run / "data/08_reporting/run_summary.txt").read_text()
    assert "pass@k on MBPP_Test:" in summary and "pass@k on humaneval:" in summary
    assert (both_sets_run / "data/08_reporting/pass_at_k.png").stat().st_size > 0


@pytest.mark.skipif(
    not hooks.tracking_switched_on(), reason=f"MLflow tracking switched off by {hooks.ENV_SWITCH}"
)
def test_mlflow_keys_name_the_set_beside_mbpp(both_sets_run):
    (run,) = mlflow_runs(both_sets_run)
    logged = run.data.metrics
    metrics = _read(both_sets_run, "08_reporting/eval_metrics.parquet").set_index(
        ["task_set", "method"]
    )
    assert logged["zero-shot.pass_at_1"] == pytest.approx(
        metrics.loc[("mbpp", "zero-shot")]["pass@1"]
    )
    assert logged["zero-shot.humaneval.pass_at_1"] == pytest.approx(
        metrics.loc[("humaneval", "zero-shot")]["pass@1"]
    )


def test_a_malformed_humaneval_row_stops_the_run_before_any_node(tmp_path):
    project = copy_project(tmp_path / "project")
    rows = [
        json.loads(line)
        for line in (project / "data/01_raw/demo/humaneval_demo.jsonl").read_text().splitlines()
    ]
    rows[2]["entry_point"] = "reverse_wrods"
    bad = project / "bad_humaneval.jsonl"
    bad.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(
        DataValidationError,
        match=r"humaneval_raw: column 'entry_point': must name a function the prompt defines "
        r"\(task_id HumanEvalDemo/2\)",
    ):
        run_pipeline(project, "ilf", params={**BOTH_SETS, "humaneval_uri": str(bad)})
    written = [p for p in (project / "data").rglob("*.parquet")]
    assert written == []


def test_a_users_own_set_needs_only_a_catalog_entry_and_parameters(tmp_path):
    project = copy_project(tmp_path / "project")
    mine = project / "data/01_raw/mine.jsonl"
    rows = [
        {
            "task_id": 1,
            "text": "Write a function to add one to a number.",
            "code": "def add_one(x):\n    return x + 1",
            "test_list": ["assert add_one(1) == 2", "assert add_one(-1) == 0"],
            "test_setup_code": "",
        }
    ]
    mine.write_text("".join(json.dumps(r) + "\n" for r in rows))
    # In the environment the run uses (demo): a catalog entry and parameters, no code.
    (project / "conf/demo/catalog_mine.yml").write_text(
        "mine_raw:\n  type: ilf_kedro.datasets.JSONLinesDataset\n"
        "  filepath: data/01_raw/mine.jsonl\n"
    )
    (project / "conf/demo/parameters_mine.yml").write_text(
        "evaluation:\n  task_sets: [mbpp, mine]\n  task_set_formats: {mine: mbpp}\n"
    )
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    bootstrap_project(project)
    with KedroSession.create(project_path=project, env="demo") as session:
        session.run(pipeline_names=["evaluation"], to_outputs=["zero_shot_metrics_on_mine"])
    metrics = _read(project, "08_reporting/zero_shot/mine/metrics.parquet")
    assert metrics[["task_set", "method", "n_tasks"]].values.tolist() == [["mine", "zero-shot", 1]]
    tasks = _read(project, "03_primary/test_sets/mine/tasks.parquet")
    assert tasks["prompt"].iloc[0].rstrip().endswith("def add_one(x):")

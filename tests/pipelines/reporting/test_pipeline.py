"""The reports and the MLflow run of the shared default `kedro run --pipeline=ilf`
(conftest's ``default_ilf_run``; nothing here runs the pipeline again)."""

from __future__ import annotations

import logging
import math
import os
import shutil
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from ilf_kedro import hooks
from ilf_kedro.pipelines.evaluation.nodes import GOLD, PI_REFINE
from tests.conftest import NUM_SAMPLES

REPORTS = "data/08_reporting"


def _table(project, name: str) -> pd.DataFrame:
    return pd.read_parquet(project / REPORTS / f"{name}.parquet")


def test_comparison_table_equals_eval_metrics(default_ilf_run):
    metrics = _table(default_ilf_run, "eval_metrics")
    table = _table(default_ilf_run, "comparison_table")
    assert list(table["method"]) == list(metrics["method"])
    for column in ("pass@1", "pass@10"):
        np.testing.assert_array_equal(table[column].to_numpy(), metrics[column].to_numpy())
    assert list(table["training_set_size"]) == list(metrics["training_set_size"])
    assert not any(c.startswith("paper_") for c in table.columns)  # only in `paper`
    markdown = (default_ilf_run / REPORTS / "comparison_table.md").read_text()
    for method in metrics["method"]:
        assert f"| {method} |" in markdown


def test_refinement_report_has_tables_3_and_1(default_ilf_run):
    report = _table(default_ilf_run, "refinement_report")
    stats = _table(default_ilf_run, "refinement_stats").iloc[0]
    table_3 = report[report["table"] == "Table 3"].iloc[0]
    for column in ("pass@1", "any_correct", "n_tasks"):
        assert table_3[column] == pytest.approx(float(stats[column]), nan_ok=True)
    table_1 = report[report["table"] == "Table 1"]
    assert list(table_1["split"]) == ["test"]  # zero-shot pi_theta on the test split
    zero_shot = _table(default_ilf_run, "eval_metrics").set_index("method").loc["zero-shot"]
    assert table_1["pass@1"].iloc[0] == pytest.approx(zero_shot["pass@1"])


def test_perplexities_and_plots(default_ilf_run):
    perplexities = _table(default_ilf_run, "perplexities")
    assert set(perplexities["source"]) <= {GOLD, PI_REFINE, "human refinements"}
    gold = perplexities[perplexities["source"] == GOLD]
    assert len(gold) >= 1 and np.isfinite(gold["perplexity"]).all()
    assert (perplexities["perplexity"].dropna() > 1).all()
    for name in ("pass_at_k.png", "perplexity_histogram.png", "feedback_lengths.png"):
        assert (default_ilf_run / REPORTS / name).read_bytes()[:4] == b"\x89PNG", name


def test_run_summary_counts_the_stages(default_ilf_run):
    summary = (default_ilf_run / REPORTS / "run_summary.txt").read_text()
    refinements = pd.read_parquet(default_ilf_run / "data/07_model_output/refinements.parquet")
    training = pd.read_parquet(default_ilf_run / "data/05_model_input/ilf_training_set.parquet")
    assert f"refinements generated:     {len(refinements)} for" in summary
    assert f"ILF training set size:     {len(training)}" in summary
    for method in _table(default_ilf_run, "eval_metrics")["method"]:
        assert f"{method}:" in summary


def test_reporting_alone_rerenders_a_finished_run_without_a_model(default_ilf_run, tmp_path):
    from ilf_kedro.pipelines import reporting
    from tests.kedro_project import run_pipeline

    pipeline = reporting.create_pipeline()
    assert "load_base_model" not in {node.name for node in pipeline.nodes}
    assert not {name for name in pipeline.inputs() if name.endswith("model")}
    project = shutil.copytree(default_ilf_run, tmp_path / "project")
    rendered = ("comparison_table.md", "run_summary.txt", "perplexity_histogram.png")
    for name in rendered:
        (project / REPORTS / name).unlink()
    run_pipeline(project, "reporting")
    for name in rendered[:2]:  # the same run gives the same text
        assert (project / REPORTS / name).read_text() == (
            default_ilf_run / REPORTS / name
        ).read_text()
    assert (project / REPORTS / rendered[2]).read_bytes()[:4] == b"\x89PNG"


def test_the_run_summary_is_logged_when_the_run_ends(caplog):
    pipeline = SimpleNamespace(all_outputs=lambda: {"run_summary", "eval_metrics"})
    catalog = SimpleNamespace(load=lambda name: "ILF run summary\n  tasks: 3")
    with caplog.at_level(logging.INFO, logger="ilf_kedro.hooks"):
        hooks.RunSummaryHooks().after_pipeline_run({}, {}, pipeline, catalog)
    assert "ILF run summary" in caplog.text


def _mlflow_run(project):
    """The MLflow run the default run logged (in the project's own sqlite store unless
    MLFLOW_TRACKING_URI pointed elsewhere), found by its project path tag."""
    from mlflow.tracking import MlflowClient

    uri = hooks.resolve_tracking_uri({"tracking_uri": hooks.DEFAULT_TRACKING_URI}, project)
    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("ilf-kedro")
    assert experiment is not None, f"no MLflow experiment in {uri}"
    runs = client.search_runs(
        [experiment.experiment_id],
        filter_string=f"tags.`kedro.project_path` = '{project}'",
    )
    assert len(runs) == 1, [r.info.run_id for r in runs]
    return client, runs[0]


@pytest.mark.skipif(
    hooks._switch(os.environ.get(hooks.ENV_SWITCH)) is False,
    reason=f"MLflow tracking switched off by {hooks.ENV_SWITCH}",
)
def test_the_default_run_is_tracked_in_mlflow(default_ilf_run):
    client, run = _mlflow_run(default_ilf_run)
    assert run.info.status == "FINISHED"
    assert run.data.tags["kedro.pipeline"] == "ilf"
    assert run.data.tags["random_weights"] == "true"
    metrics = _table(default_ilf_run, "eval_metrics")
    logged = run.data.metrics
    for row in metrics.to_dict("records"):
        for column in ("pass@1", "pass@10"):
            key = hooks.metric_key(row["method"], column)
            if math.isnan(row[column]):
                assert key not in logged
            else:
                assert logged[key] == pytest.approx(row[column])
    assert "ILF.pass_at_1" in logged
    stats = _table(default_ilf_run, "refinement_stats").iloc[0]
    assert logged["refinement.pass_at_1"] == pytest.approx(stats["pass@1"])
    assert run.data.params["sampling.num_samples"] == str(NUM_SAMPLES)
    assert run.data.params["base_model"] == "tiny-random"
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "models")}
    assert {"models/refiner_model", "models/ilf_model"} <= artifacts
    reports = {a.path for a in client.list_artifacts(run.info.run_id, "reports")}
    assert "reports/comparison_table.md" in reports

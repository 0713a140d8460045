"""The reports of the shared default `kedro run --pipelines=ilf` (conftest's
``default_ilf_run``), and `reporting` alone on a copy of it (no model loaded). Its MLflow
run: tests/test_hooks.py."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest

from ilf_kedro.pipelines.evaluation.nodes import GOLD, PI_REFINE
from tests.kedro_project import load

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
    refinements = load(default_ilf_run, "refinements")
    training = load(default_ilf_run, "ilf_training_set")
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

"""ilf_kedro.reporting (tables, perplexity, figures, summary) and the MLflow hook helpers."""

from __future__ import annotations

import logging
import math

import numpy as np
import pandas as pd
import pytest
import torch
from matplotlib.figure import Figure

from ilf_kedro import hooks, reporting

EVAL_METRICS = pd.DataFrame(
    {
        "method": ["zero-shot", "ILF", "MBPP gold", "human refinements", "my method"],
        "feedback_source": [None, "human", None, "human", "gpt"],
        "pass@1": [0.25, 0.375, 0.2, 0.3, 0.1],
        "pass@10": [0.6, 0.7, 0.65, 0.69, np.nan],
        "any_correct": [0.6, 0.7, 0.65, 0.69, 0.1],
        "n_tasks": [8, 8, 8, 8, 8],
        "n_programs": [80, 80, 80, 80, 8],
        "training_set_size": [0, 5, 5, 5, 3],
        "random_weights": [True, True, True, True, True],
        "untrained_reason": ["", "", "", "", ""],
    }
)


def test_comparison_table_values_equal_eval_metrics():
    table = reporting.comparison_table(EVAL_METRICS)
    assert list(table["method"]) == list(EVAL_METRICS["method"])
    for column in ("pass@1", "pass@10"):
        pd.testing.assert_series_equal(table[column], EVAL_METRICS[column], check_names=False)
    assert list(table["training_set_size"]) == [0, 5, 5, 5, 3]
    assert list(table["feedback_source"]) == ["none", "human", "none", "human", "gpt"]
    assert not any(c.startswith("paper_") for c in table.columns)


def test_comparison_table_with_the_papers_numbers():
    table = reporting.comparison_table(EVAL_METRICS, paper_reference=True).set_index("method")
    assert table.loc["zero-shot", "paper_pass@1"] == pytest.approx(0.26)
    assert table.loc["ILF", "paper_pass@10"] == pytest.approx(0.68)
    assert table.loc["MBPP gold", "paper_pass@1"] == pytest.approx(0.22)
    assert table.loc["human refinements", "paper_pass@10"] == pytest.approx(0.68)
    assert math.isnan(table.loc["my method", "paper_pass@1"])
    custom = reporting.comparison_table(EVAL_METRICS, paper_reference={"ILF": [50, 90]})
    assert custom.set_index("method").loc["ILF", "paper_pass@10"] == pytest.approx(0.9)


def test_markdown_names_each_method_and_shows_percent():
    table = reporting.comparison_table(EVAL_METRICS, paper_reference=True)
    markdown = reporting.comparison_markdown(table)
    for method in EVAL_METRICS["method"]:
        assert f"| {method} |" in markdown
    assert "| ILF | human | 5 | 37.5 | 36.0 | 70.0 | 68.0 |" in markdown
    assert "RANDOM" in markdown  # the random-weights warning
    assert "paper pass@1 (%)" in markdown


def test_refinement_report_tables_3_and_1():
    stats = pd.DataFrame(
        [{"pass@1": 0.19, "pass@10": 0.47, "any_correct": 0.61, "n_tasks": 128, "n_programs": 3840}]
    )
    per_task = pd.DataFrame(
        {
            "task_id": [11, 12, 311, 312],
            "n": [10, 10, 10, 10],
            "c": [0, 5, 0, 0],
            "pass@1": [0.0, 0.5, 0.0, 0.0],
            "pass@10": [0.0, 1.0, 0.0, 0.0],
            "any_correct": [False, True, False, False],
        }
    )
    tasks = pd.DataFrame(
        {"task_id": [11, 12, 311, 312], "split": ["test", "test", "train", "train"]}
    )
    report = reporting.refinement_report(stats, per_task, tasks).set_index(["table", "split"])
    assert report.loc[("Table 3", "train"), "pass@10"] == pytest.approx(0.47)
    assert report.loc[("Table 3", "train"), "any_correct"] == pytest.approx(0.61)
    assert report.loc[("Table 1", "test"), "pass@1"] == pytest.approx(0.25)
    assert report.loc[("Table 1", "test"), "any_correct"] == pytest.approx(0.5)
    assert report.loc[("Table 1", "all"), "n_tasks"] == 4
    only_table_3 = reporting.refinement_report(stats.iloc[:0], None)
    assert list(only_table_3["table"]) == ["Table 3"] and only_table_3["pass@1"].isna().all()


@pytest.fixture(scope="module")
def tiny_bundle():
    from ilf_kedro.models import load_model

    return load_model("tiny-random", device="cpu", tiny_config={"n_layer": 1})


def test_perplexity_is_exp_of_the_mean_token_nll(tiny_bundle):
    programs = ["def add(a, b):\n    return a + b\n", "x = 1", "print('hello world')\n" * 3]
    got = reporting.program_perplexities(tiny_bundle, programs, batch_size=2)
    assert all(math.isfinite(p) and p > 1 for p in got)
    for program, ppl in zip(programs, got, strict=True):
        ids = tiny_bundle.tokenizer(program, return_tensors="pt", add_special_tokens=False)
        with torch.no_grad():
            loss = tiny_bundle.model(input_ids=ids["input_ids"], labels=ids["input_ids"]).loss
        assert ppl == pytest.approx(math.exp(loss.item()), rel=1e-4)
    # Batching and padding do not change the value.
    alone = [reporting.program_perplexities(tiny_bundle, [p])[0] for p in programs]
    assert got == pytest.approx(alone, rel=1e-4)
    assert math.isnan(reporting.program_perplexities(tiny_bundle, [""])[0])


def test_perplexity_table_and_figure3(tiny_bundle, tmp_path):
    sources = {
        "MBPP gold programs": pd.DataFrame({"task_id": [1, 2], "program": ["a = 1\n", "b = 2\n"]}),
        "pi_Refine refinements": pd.DataFrame({"task_id": [], "program": []}),
        "human refinements": pd.DataFrame({"task_id": [1], "program": ["a = 3\n"]}),
    }
    table = reporting.perplexity_table(tiny_bundle, sources, batch_size=4)
    assert list(table.columns) == ["source", "task_id", "n_tokens", "perplexity"]
    assert len(table) == 3 and np.isfinite(table["perplexity"]).all()
    figure = reporting.perplexity_figure(table, sources=list(sources))
    labels = [t.get_text() for t in figure.axes[0].get_legend().get_texts()]
    assert "pi_Refine refinements (none)" in labels
    _save_png(figure, tmp_path / "ppl.png")


def _save_png(figure: Figure, path) -> None:
    from kedro_datasets.matplotlib import MatplotlibDataset

    MatplotlibDataset(filepath=str(path)).save(figure)
    assert path.read_bytes()[:4] == b"\x89PNG"


def test_figures_render_and_handle_empty_inputs(tmp_path):
    table = reporting.comparison_table(EVAL_METRICS, paper_reference=True)
    bars = reporting.pass_at_k_figure(table)
    assert isinstance(bars, Figure)
    _save_png(bars, tmp_path / "bars.png")
    annotations = pd.DataFrame(
        {"split": ["train", "refine", "train"], "feedback": ["one two", "a b c d", ""]}
    )
    _save_png(reporting.feedback_length_figure(annotations), tmp_path / "lengths.png")
    _save_png(reporting.feedback_length_figure(annotations.iloc[:0]), tmp_path / "none.png")
    _save_png(reporting.pass_at_k_figure(table.iloc[:0]), tmp_path / "empty.png")
    empty = pd.DataFrame({"source": [], "perplexity": []})
    _save_png(reporting.perplexity_figure(empty), tmp_path / "empty_ppl.png")


def test_run_summary_counts_each_stage():
    tasks = pd.DataFrame({"task_id": [1, 2, 3, 4], "split": ["test", "test", "train", "train"]})
    annotations = pd.DataFrame({"task_id": [3, 4], "split": ["train", "train"]})
    refinements = pd.DataFrame({"task_id": [3, 3, 4, 4]})
    passing = pd.DataFrame({"task_id": [3]})
    training = pd.DataFrame({"task_id": [3]})
    text = reporting.run_summary(tasks, annotations, refinements, passing, training, EVAL_METRICS)
    assert "tasks:                     4 (test 2, train 2)" in text
    assert "refinements generated:     4 for 2 task(s)" in text
    assert "refinements passing:       1 for 1 task(s)" in text
    assert "ILF training set size:     1" in text
    assert "ILF:" in text and "pass@1 37.5%" in text
    assert "RANDOM" in text


# ---------------------------------------------------------------- MLflow hook helpers


def test_flatten_and_metric_keys():
    flat = hooks.flatten({"a": {"b": 1, "c": [1, 2]}, "d": None, "e": "x" * 10000})
    assert flat == {"a.b": "1", "a.c": "[1, 2]", "d": "null", "e": "x" * hooks.MAX_PARAM_LENGTH}
    assert hooks.metric_key("ILF", "pass@1") == "ILF.pass_at_1"
    assert hooks.metric_key("MBPP gold", "pass@10") == "MBPP_gold.pass_at_10"
    values = hooks.eval_metric_values(EVAL_METRICS)
    assert values["ILF.pass_at_1"] == 0.375
    assert "my_method.pass_at_10" not in values  # NaN is left out


def test_tracking_switch_and_uri(monkeypatch, tmp_path):
    monkeypatch.delenv(hooks.ENV_SWITCH, raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert hooks.tracking_enabled({}) and not hooks.tracking_enabled({"enabled": False})
    assert not hooks.tracking_enabled({"enabled": "false"})  # from --params
    monkeypatch.setenv(hooks.ENV_SWITCH, "off")
    assert not hooks.tracking_enabled({"enabled": True})
    uri = hooks.resolve_tracking_uri({"tracking_uri": "sqlite:///mlruns/mlflow.db"}, tmp_path)
    assert uri == f"sqlite:///{(tmp_path / 'mlruns' / 'mlflow.db').as_posix()}"
    artifacts = hooks.resolve_artifact_location({}, uri, tmp_path)
    assert artifacts == (tmp_path / "mlruns" / "artifacts").as_uri()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/other.db")
    assert hooks.resolve_tracking_uri({}, tmp_path).endswith("/other.db")


def test_a_tracking_failure_warns_and_never_raises(monkeypatch, tmp_path, caplog):
    from types import SimpleNamespace

    blocker = tmp_path / "not_a_dir"
    blocker.write_text("a file where the db folder should be")
    monkeypatch.delenv(hooks.ENV_SWITCH, raising=False)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{blocker}/sub/mlflow.db")
    hook = hooks.MLflowTrackingHooks()
    context = SimpleNamespace(params={"mlflow": {"enabled": True}}, project_path=tmp_path)
    hook.after_context_created(context)
    pipeline = SimpleNamespace(all_outputs=lambda: {"eval_metrics"})
    with caplog.at_level(logging.WARNING, logger="ilf_kedro.hooks"):
        hook.before_pipeline_run({"session_id": "s"}, pipeline, catalog=None)
        hook.after_pipeline_run({"session_id": "s"}, {}, pipeline, catalog=None)
    assert "MLflow tracking" in caplog.text

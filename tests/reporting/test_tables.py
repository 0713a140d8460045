"""ilf_kedro.reporting.tables: Table 4 (and its Markdown), Tables 3 and 1."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from ilf_kedro.reporting import tables


def test_comparison_table_values_equal_eval_metrics(eval_metrics):
    table = tables.comparison_table(eval_metrics)
    assert list(table["method"]) == list(eval_metrics["method"])
    for column in ("pass@1", "pass@10"):
        pd.testing.assert_series_equal(table[column], eval_metrics[column], check_names=False)
    assert list(table["training_set_size"]) == [0, 5, 5, 5, 3]
    assert list(table["feedback_source"]) == ["none", "human", "none", "human", "gpt"]
    assert not any(c.startswith("paper_") for c in table.columns)


def test_comparison_table_with_the_papers_numbers(eval_metrics):
    table = tables.comparison_table(eval_metrics, paper_reference=True).set_index("method")
    assert table.loc["zero-shot", "paper_pass@1"] == pytest.approx(0.26)
    assert table.loc["ILF", "paper_pass@10"] == pytest.approx(0.68)
    assert table.loc["MBPP gold", "paper_pass@1"] == pytest.approx(0.22)
    assert table.loc["human refinements", "paper_pass@10"] == pytest.approx(0.68)
    assert math.isnan(table.loc["my method", "paper_pass@1"])
    custom = tables.comparison_table(eval_metrics, paper_reference={"ILF": [50, 90]})
    assert custom.set_index("method").loc["ILF", "paper_pass@10"] == pytest.approx(0.9)


def test_markdown_names_each_method_and_shows_percent(eval_metrics):
    table = tables.comparison_table(eval_metrics, paper_reference=True)
    markdown = tables.comparison_markdown(table)
    for method in eval_metrics["method"]:
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
    report = tables.refinement_report(stats, per_task, tasks).set_index(["table", "split"])
    assert report.loc[("Table 3", "train"), "pass@10"] == pytest.approx(0.47)
    assert report.loc[("Table 3", "train"), "any_correct"] == pytest.approx(0.61)
    assert report.loc[("Table 1", "test"), "pass@1"] == pytest.approx(0.25)
    assert report.loc[("Table 1", "test"), "any_correct"] == pytest.approx(0.5)
    assert report.loc[("Table 1", "all"), "n_tasks"] == 4
    only_table_3 = tables.refinement_report(stats.iloc[:0], None)
    assert list(only_table_3["table"]) == ["Table 3"] and only_table_3["pass@1"].isna().all()

"""Nodes of reporting: thin wrappers over ``ilf_kedro.reporting`` (tables, plots, summary).
No node takes a model: Figure 3's perplexities are scored in ``evaluation``."""

from __future__ import annotations

import pandas as pd
from matplotlib.figure import Figure

from ilf_kedro import reporting
from ilf_kedro.ilf.metrics import pass_at_k_table
from ilf_kedro.parameters import Refiner, Reporting


def build_comparison_table(
    eval_metrics: pd.DataFrame, ks: list[int], params: Reporting
) -> pd.DataFrame:
    """``eval_metrics`` -> Table 4 (one row per method); ``params.paper_reference``
    (true, or {method: [pass@1 %, pass@10 %]}) adds the paper's numbers beside."""
    return reporting.comparison_table(eval_metrics, ks=ks, paper_reference=params.paper_reference)


def render_comparison_markdown(comparison_table: pd.DataFrame) -> str:
    """Table 4 -> a Markdown document (``comparison_table.md``)."""
    return reporting.comparison_markdown(comparison_table)


def build_refinement_report(
    refinement_stats: pd.DataFrame,
    zero_shot_test_results: pd.DataFrame,
    tasks: pd.DataFrame,
    ks: list[int],
    refinement_split: str,
    feedback_source: str,
    refiner: Refiner,
) -> pd.DataFrame:
    """Table 3 (pi_Refine, from ``refinement_stats``) and Table 1 (zero-shot pi_theta's
    pass rates per split, from the per-task pass rates of its test-split verdicts); the
    Table 3 row names the feedback source and the refiner, Table 1's rows ``none``."""
    zero_shot = pass_at_k_table(zero_shot_test_results, ks=tuple(ks))
    report = reporting.refinement_report(
        refinement_stats, zero_shot, tasks, ks=ks, refinement_split=refinement_split
    )
    table_3 = report["table"] == "Table 3"
    report.insert(2, "feedback_source", table_3.map({True: feedback_source, False: "none"}))
    report.insert(3, "refiner", table_3.map({True: refiner.describe(), False: "none"}))
    return report


def plot_pass_at_k(comparison_table: pd.DataFrame) -> Figure:
    """Table 4 -> bar chart of pass@k per method with the zero-shot line."""
    return reporting.pass_at_k_figure(comparison_table)


def plot_perplexities(perplexities: pd.DataFrame) -> Figure:
    """Per-program perplexities -> Figure 3 (histogram per source)."""
    return reporting.perplexity_figure(perplexities)


def plot_feedback_lengths(feedback_annotations: pd.DataFrame) -> Figure:
    """Feedback annotations -> histogram of feedback length in words per split."""
    return reporting.feedback_length_figure(feedback_annotations)


def summarise_run(
    tasks: pd.DataFrame,
    feedback_annotations: pd.DataFrame,
    refinements: pd.DataFrame,
    passing_refinements: pd.DataFrame,
    ilf_training_set: pd.DataFrame,
    eval_metrics: pd.DataFrame,
    ks: list[int],
    distribution_metrics: pd.DataFrame | None = None,
) -> str:
    """Counts at each ILF stage, pass@k per method and, where measured, each method's
    distance from the target distribution -> ``run_summary`` text (the project's hook
    logs it when the run ends)."""
    return reporting.run_summary(
        tasks,
        feedback_annotations,
        refinements,
        passing_refinements,
        ilf_training_set,
        eval_metrics,
        ks=ks,
        distribution_metrics=distribution_metrics,
    )

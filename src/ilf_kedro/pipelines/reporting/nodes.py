"""Nodes of reporting: thin wrappers over ``ilf_kedro.reporting`` (tables, plots, summary)."""

from __future__ import annotations

import logging

import pandas as pd
from matplotlib.figure import Figure

from ilf_kedro import reporting
from ilf_kedro.metrics import pass_at_k_table
from ilf_kedro.models import ModelBundle

logger = logging.getLogger(__name__)

# Figure 3's sources; the third is named by who wrote the annotations' refinements.
GOLD = "MBPP gold programs"
PI_REFINE = "pi_Refine refinements"


def build_comparison_table(eval_metrics: pd.DataFrame, ks: list[int], params: dict) -> pd.DataFrame:
    """``eval_metrics`` -> Table 4 (one row per method); ``params['paper_reference']``
    (true, or {method: [pass@1 %, pass@10 %]}) adds the paper's numbers beside."""
    return reporting.comparison_table(
        eval_metrics, ks=ks, paper_reference=params.get("paper_reference", False)
    )


def render_comparison_markdown(comparison_table: pd.DataFrame) -> str:
    """Table 4 -> a Markdown document (``comparison_table.md``)."""
    return reporting.comparison_markdown(comparison_table)


def build_refinement_report(
    refinement_stats: pd.DataFrame,
    zero_shot_test_results: pd.DataFrame,
    tasks: pd.DataFrame,
    ks: list[int],
    refinement_split: str,
) -> pd.DataFrame:
    """Table 3 (pi_Refine, from ``refinement_stats``) and Table 1 (zero-shot pi_theta's
    pass rates per split, from the per-task pass rates of its test-split verdicts)."""
    zero_shot = pass_at_k_table(zero_shot_test_results, ks=tuple(ks))
    return reporting.refinement_report(
        refinement_stats, zero_shot, tasks, ks=ks, refinement_split=refinement_split
    )


def _sample(frame: pd.DataFrame, limit, seed: int) -> pd.DataFrame:
    if limit is None or len(frame) <= int(limit):
        return frame
    return frame.sample(n=int(limit), random_state=seed).sort_values("task_id")


def compute_program_perplexities(
    base_model: ModelBundle,
    tasks: pd.DataFrame,
    annotations_to_refine: pd.DataFrame,
    refinement_results: pd.DataFrame,
    params: dict,
) -> pd.DataFrame:
    """Figure 3's data: perplexity under pi_theta of the MBPP gold programs, pi_Refine's
    refinements and the feedback source's own refinements (human in the paper) of the
    tasks that were refined.

    ``params``: ``refinements`` (``passing``: only refinements that pass the tests, the
    ones ILF trains on; ``all``: every generated one), ``max_programs_per_source`` (a
    seeded random subset above it; null: all), ``batch_size``, ``max_length``, ``seed``.
    Returns ``source``, ``task_id``, ``n_tokens``, ``perplexity`` rows.
    """
    task_ids = annotations_to_refine["task_id"].unique()
    writers = sorted(set(annotations_to_refine["refinement_source"])) or ["human"]
    gold = tasks[tasks["task_id"].isin(task_ids)][["task_id", "gold_code"]]
    refined = refinement_results
    if params.get("refinements", "passing") == "passing" and len(refined):
        refined = refined[refined["passed"].astype(bool)]
    limit, seed = params.get("max_programs_per_source"), int(params.get("seed", 0))
    sources = {
        GOLD: gold.rename(columns={"gold_code": "program"}),
        PI_REFINE: refined[["task_id", "program"]],
        f"{'/'.join(writers)} refinements": annotations_to_refine[["task_id", "refinement"]].rename(
            columns={"refinement": "program"}
        ),
    }
    sources = {name: _sample(frame, limit, seed) for name, frame in sources.items()}
    if base_model.info.get("random_weights"):
        logger.warning("Perplexities are under a model with RANDOM weights: not meaningful.")
    return reporting.perplexity_table(
        base_model,
        sources,
        batch_size=int(params.get("batch_size", 8)),
        max_length=params.get("max_length", 1024),
    )


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
) -> str:
    """Counts at each ILF stage and pass@k per method -> ``run_summary`` text (the
    project's hook logs it when the run ends)."""
    return reporting.run_summary(
        tasks,
        feedback_annotations,
        refinements,
        passing_refinements,
        ilf_training_set,
        eval_metrics,
        ks=ks,
    )

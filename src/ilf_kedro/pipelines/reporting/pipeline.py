"""reporting: run outputs -> Table 4 (Parquet + Markdown), Tables 3 and 1, Figure 3 and
the other plots, and the run summary (``08_reporting``). It loads no model (Figure 3's
``perplexities`` come from ``evaluation``), so it re-renders a finished run in seconds."""

from kedro.pipeline import Node, Pipeline

from .nodes import (
    build_comparison_table,
    build_refinement_report,
    plot_feedback_lengths,
    plot_pass_at_k,
    plot_perplexities,
    render_comparison_markdown,
    summarise_run,
)


def create_pipeline(distribution: bool = False, **kwargs) -> Pipeline:
    """``distribution``: the run measures ``distribution_metrics``
    (``evaluation.distribution``), which the run summary then shows."""
    return Pipeline(
        [
            Node(
                build_comparison_table,
                inputs=["eval_metrics", "params:pass_at_k", "params:reporting"],
                outputs="comparison_table",
                name="build_comparison_table",
            ),
            Node(
                render_comparison_markdown,
                inputs="comparison_table",
                outputs="comparison_table_markdown",
                name="render_comparison_markdown",
            ),
            Node(
                build_refinement_report,
                inputs=[
                    "refinement_stats",
                    "zero_shot_test_results",
                    "tasks",
                    "params:pass_at_k",
                    "params:refinement.split",
                    "params:feedback.source",
                    "params:refiner",
                ],
                outputs="refinement_report",
                name="build_refinement_report",
            ),
            Node(
                plot_pass_at_k,
                inputs="comparison_table",
                outputs="pass_at_k_plot",
                name="plot_pass_at_k",
            ),
            Node(
                plot_perplexities,
                inputs="perplexities",
                outputs="perplexity_histogram",
                name="plot_perplexity_histogram",
            ),
            Node(
                plot_feedback_lengths,
                inputs="feedback_annotations",
                outputs="feedback_length_plot",
                name="plot_feedback_lengths",
            ),
            Node(
                summarise_run,
                inputs=[
                    "tasks",
                    "feedback_annotations",
                    "refinements",
                    "passing_refinements",
                    "ilf_training_set",
                    "eval_metrics",
                    "params:pass_at_k",
                    *(["distribution_metrics"] if distribution else []),
                ],
                outputs="run_summary",
                name="summarise_run",
            ),
        ]
    )

"""refinement: train-split annotations -> pi_Refine's refinements -> the ones that pass ->
``ilf_training_set`` (paper Table 3 and Algorithm 1, steps 3-4).

``refine_template`` is one modular pipeline reused through namespaces: by ``ilf`` as is,
by ``ilf_ablations`` with unrelated feedback (Table 2) and with few-shot refiners (Table 4).
"""

from kedro.pipeline import Node, Pipeline

from ilf_kedro.pipelines import shared_parameters
from ilf_kedro.pipelines.stage_nodes import run_tests, select_annotations, summarise_pass_rates
from ilf_kedro.tracking.metrics import refinement_metric_values

from .nodes import (
    build_ilf_training_set,
    build_refinement_prompts,
    compare_feedback,
    derange_feedback,
    generate_refinements,
    select_passing_refinements,
)

# Inputs every refiner variant shares with the main run.
SHARED = {
    "annotations_to_refine",
    "tasks",
    "task_time_limits",
    "refiner_training_set",
    "openai_credentials",
}


def refine_template() -> Pipeline:
    """``annotations_to_refine`` -> prompts -> refinements -> verdicts -> pass@k."""
    return Pipeline(
        [
            Node(
                build_refinement_prompts,
                inputs=[
                    "annotations_to_refine",
                    "tasks",
                    "refiner_model",
                    "refiner_training_set",
                    "params:refiner",
                    "params:refiner_training.max_old_code_tokens",
                    "params:seed",
                ],
                outputs="refinement_prompts",
                name="build_refinement_prompts",
            ),
            Node(
                generate_refinements,
                inputs=[
                    "refiner_model",
                    "refinement_prompts",
                    "params:sampling",
                    "params:compute",
                    "params:refiner",
                    "openai_credentials",
                ],
                outputs="refinements",
                name="generate_refinements",
            ),
            Node(
                run_tests,
                inputs=[
                    "refinements",
                    "tasks",
                    "task_time_limits",
                    "params:execution",
                    "params:compute",
                ],
                outputs="refinement_results",
                name="test_refinements",
            ),
            Node(
                summarise_pass_rates,
                inputs=["refinement_results", "params:pass_at_k"],
                outputs="refinement_stats",
                name="compute_refinement_pass_rates",
            ),
        ]
    )


def training_set_template() -> Pipeline:
    """``refinement_results`` -> the passing ones -> ``ilf_training_set``."""
    return Pipeline(
        [
            Node(
                select_passing_refinements,
                inputs="refinement_results",
                outputs="passing_refinements",
                name="select_passing_refinements",
            ),
            Node(
                build_ilf_training_set,
                inputs=["passing_refinements", "tasks", "params:seed"],
                outputs="ilf_training_set",
                name="build_ilf_training_set",
            ),
        ]
    )


def few_shot_refiner(namespace: str) -> Pipeline:
    """A few-shot refiner (``params:ablations.<namespace>``) on the main run's annotations
    -> ``<namespace>.training_set``, for evaluation to fine-tune and test."""
    template = refine_template() + training_set_template()
    return Pipeline(
        template,
        namespace=namespace,
        inputs={**{name: name for name in SHARED}, "refiner_model": "base_model"},
        outputs={"ilf_training_set": f"{namespace}.training_set"},
        parameters=shared_parameters(template, refiner=f"params:ablations.{namespace}"),
    )


def unrelated_feedback_ablation() -> Pipeline:
    """Table 2: the configured refiner on the same tasks with feedback moved to other tasks
    -> ``refinement_ablation`` beside ``refinement_stats``; all in namespace
    ``unrelated_feedback``, which reads the main run's annotations and stats."""
    template = (
        Pipeline(
            [
                Node(
                    derange_feedback,
                    inputs=["annotations_with_own_feedback", "params:seed"],
                    outputs="annotations_to_refine",
                    name="derange_feedback",
                )
            ]
        )
        + refine_template()
        + Pipeline(
            [
                Node(
                    compare_feedback,
                    inputs=["stats_with_own_feedback", "refinement_stats", "params:refiner"],
                    outputs="refinement_ablation",
                    name="compare_feedback_with_unrelated_feedback",
                )
            ]
        )
    )
    return Pipeline(
        template,
        namespace="unrelated_feedback",
        inputs={
            "annotations_with_own_feedback": "annotations_to_refine",
            "stats_with_own_feedback": "refinement_stats",
            **{name: name for name in SHARED - {"annotations_to_refine"} | {"refiner_model"}},
        },
        outputs={"refinement_ablation"},
        parameters=shared_parameters(template),
    )


def create_pipeline(**kwargs) -> Pipeline:
    return (
        Pipeline(
            [
                Node(
                    select_annotations,
                    inputs=[
                        "feedback_annotations",
                        "params:refinement.split",
                        "params:max_tasks_per_split",
                    ],
                    outputs="annotations_to_refine",
                    name="select_annotations_to_refine",
                ),
                Node(
                    refinement_metric_values,
                    inputs="refinement_stats",
                    outputs="refinement_stats_mlflow",
                    name="track_refinement_stats",
                ),
            ]
        )
        + refine_template()
        + training_set_template()
    )

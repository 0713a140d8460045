"""refinement: train-split annotations -> pi_Refine's refinements -> the ones that pass ->
``ilf_training_set`` (paper Table 3 and Algorithm 1, steps 3-4)."""

from kedro.pipeline import Node, Pipeline

from ilf_kedro.pipelines.stage_nodes import (
    run_tests,
    select_annotations,
    summarise_pass_rates,
)

from .nodes import (
    build_ilf_training_set,
    build_refinement_prompts,
    generate_refinements,
    select_passing_refinements,
)


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                select_annotations,
                inputs=[
                    "feedback_annotations",
                    "params:refinement.split",
                    "params:max_tasks_per_split",
                ],
                outputs="refinement_annotations",
                name="select_annotations_to_refine",
            ),
            Node(
                build_refinement_prompts,
                inputs=[
                    "refinement_annotations",
                    "tasks",
                    "refiner_model",
                    "params:refiner_training.max_old_code_tokens",
                ],
                outputs="refinement_prompts",
                name="build_refinement_prompts",
            ),
            Node(
                generate_refinements,
                inputs=["refiner_model", "refinement_prompts", "params:sampling"],
                outputs="refinements",
                name="generate_refinements",
            ),
            Node(
                run_tests,
                inputs=["refinements", "tasks", "task_time_limits", "params:execution"],
                outputs="refinement_results",
                name="test_refinements",
            ),
            Node(
                summarise_pass_rates,
                inputs=["refinement_results", "params:pass_at_k"],
                outputs="refinement_stats",
                name="compute_refinement_pass_rates",
            ),
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

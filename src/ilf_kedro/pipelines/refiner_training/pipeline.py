"""refiner_training: refine-split annotations whose refinement passes -> pi_Refine."""

from kedro.pipeline import Node, Pipeline

from ilf_kedro.pipelines import model_loading
from ilf_kedro.pipelines.stage_nodes import run_tests, select_annotations, train_model

from .nodes import build_refiner_training_set


def create_pipeline(**kwargs) -> Pipeline:
    return model_loading.create_pipeline() + Pipeline(
        [
            Node(
                select_annotations,
                inputs=[
                    "feedback_annotations",
                    "params:refiner_training.split",
                    "params:max_tasks_per_split",
                ],
                outputs="refiner_annotations",
                name="select_refiner_annotations",
            ),
            Node(
                run_tests,
                inputs=["refiner_annotations", "tasks", "task_time_limits", "params:execution"],
                outputs="refiner_annotation_results",
                name="test_human_refinements",
            ),
            Node(
                build_refiner_training_set,
                inputs=[
                    "refiner_annotation_results",
                    "tasks",
                    "base_model",
                    "params:refiner_training.max_old_code_tokens",
                    "params:finetune.max_seq_length",
                ],
                outputs="refiner_training_set",
                name="build_refiner_training_set",
            ),
            Node(
                train_model,
                inputs=["base_model", "refiner_training_set", "params:finetune"],
                outputs="refiner_model",
                name="train_refiner_model",
            ),
        ]
    )

"""refiner_training: refine-split annotations whose refinement passes -> pi_Refine."""

from kedro.pipeline import Node, Pipeline

from ilf_kedro.pipelines import model_loading

from .nodes import build_refiner_training_set, select_refiner_examples, train_refiner


def create_pipeline(**kwargs) -> Pipeline:
    return model_loading.create_pipeline() + Pipeline(
        [
            Node(
                select_refiner_examples,
                inputs=[
                    "feedback_annotations",
                    "params:refiner_training.split",
                    "params:max_tasks_per_split",
                ],
                outputs="refiner_examples",
                name="select_refiner_examples",
            ),
            Node(
                build_refiner_training_set,
                inputs=[
                    "refiner_examples",
                    "tasks",
                    "base_model",
                    "params:refiner_training.max_old_code_tokens",
                    "params:finetune.max_seq_length",
                ],
                outputs="refiner_training_set",
                name="build_refiner_training_set",
            ),
            Node(
                train_refiner,
                inputs=[
                    "base_model",
                    "refiner_training_set",
                    "params:finetune",
                    "params:refiner",
                    "params:compute",
                ],
                outputs="refiner_model",
                name="train_refiner_model",
            ),
        ]
    )

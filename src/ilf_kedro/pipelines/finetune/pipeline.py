"""finetune: pi_theta fine-tuned on ``ilf_training_set`` -> ``ilf_model`` (pi_theta*)."""

from kedro.pipeline import Node, Pipeline

from ilf_kedro.pipelines import model_loading
from ilf_kedro.pipelines.stage_nodes import train_model


def create_pipeline(**kwargs) -> Pipeline:
    return model_loading.create_pipeline() + Pipeline(
        [
            Node(
                train_model,
                inputs=["base_model", "ilf_training_set", "params:finetune", "params:compute"],
                outputs="ilf_model",
                name="train_ilf_model",
            )
        ]
    )

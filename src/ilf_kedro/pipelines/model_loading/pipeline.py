"""model_loading: parameters -> ``base_model`` (pi_theta), shared by every ILF stage."""

from kedro.pipeline import Node, Pipeline

from .nodes import load_base_model


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                load_base_model,
                inputs=["params:base_model", "params:model"],
                outputs="base_model",
                name="load_base_model",
            )
        ]
    )

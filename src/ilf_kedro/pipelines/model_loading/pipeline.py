"""model_loading: parameters -> the memory plan, checked -> ``base_model`` (pi_theta),
shared by every ILF stage."""

from kedro.pipeline import Node, Pipeline

from .nodes import load_base_model, plan_memory


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                plan_memory,
                inputs=[
                    "params:base_model",
                    "params:model",
                    "params:sampling",
                    "params:finetune",
                    "params:memory_plan",
                ],
                outputs="memory_plan",
                name="plan_memory",
            ),
            Node(
                load_base_model,
                inputs=["params:base_model", "params:model", "memory_plan"],
                outputs="base_model",
                name="load_base_model",
            ),
        ]
    )

"""model_loading: parameters -> the memory plan, checked -> ``base_model`` (pi_theta),
shared by every ILF stage."""

from collections.abc import Sequence

from kedro.pipeline import Node, Pipeline

from .nodes import load_base_model, plan_memory


def create_pipeline(after: Sequence[str] = (), **kwargs) -> Pipeline:
    """``after``: datasets the memory plan (so the base model) waits for, e.g. those of a
    pipeline that writes the base model first (``input_pipelines``)."""
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
                    *after,
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

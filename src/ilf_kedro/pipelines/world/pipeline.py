"""world: a miniature world where ILF can be watched working on a CPU (docs/world.md).

``world.*`` parameters -> ``mbpp_raw`` (generated tasks in MBPP's schema) and
``candidate_programs``; ``world_corpus`` -> ``world_base_model`` (trained from scratch);
its failing samples -> ``ilf_annotations_raw`` (the annotator's feedback, released schema).
With ``input_pipelines: [world]`` the ILF pipelines run it first, so the catalog and
parameters alone (``mbpp_raw``, ``ilf_annotations_raw``, ``base_model``) point a run at it.
"""

from kedro.pipeline import Node, Pipeline

from ilf_kedro.pipelines import data_processing

from .nodes import (
    annotate_failures,
    build_world_corpus,
    generate_world_tasks,
    pretrain_world_model,
    sample_for_annotation,
)

TASK_NODES = ("build_task_prompts", "calibrate_task_time_limits")


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                generate_world_tasks,
                inputs=["params:world", "params:splits"],
                outputs=["mbpp_raw", "candidate_programs"],
                name="generate_world_tasks",
            ),
            Node(
                build_world_corpus,
                inputs="params:world",
                outputs="world_corpus",
                name="build_world_corpus",
            ),
            Node(
                pretrain_world_model,
                inputs=["world_corpus", "params:world"],
                outputs="world_base_model",
                name="pretrain_world_model",
            ),
            Node(
                sample_for_annotation,
                inputs=[
                    "world_base_model",
                    "tasks",
                    "params:world",
                    "params:sampling",
                    "params:compute",
                    "params:max_tasks_per_split",
                ],
                outputs="world_annotator_samples",
                name="sample_for_annotation",
            ),
            Node(
                annotate_failures,
                inputs=[
                    "world_annotator_samples",
                    "tasks",
                    "task_time_limits",
                    "candidate_programs",
                    "params:world",
                    "params:execution",
                    "params:compute",
                ],
                outputs="ilf_annotations_raw",
                name="annotate_failures",
            ),
        ]
    ) + data_processing.create_pipeline().only_nodes(*TASK_NODES)

"""data_processing: ``mbpp_raw`` + ``ilf_annotations_raw`` -> tasks, task_time_limits,
human feedback."""

from kedro.pipeline import Node, Pipeline

from .nodes import build_human_feedback_annotations, build_tasks, calibrate_time_limits


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                build_tasks,
                inputs=["mbpp_raw", "params:splits"],
                outputs=["tasks", "prompt_errors"],
                name="build_task_prompts",
            ),
            Node(
                calibrate_time_limits,
                inputs=["tasks", "params:execution"],
                outputs="task_time_limits",
                name="calibrate_task_time_limits",
            ),
            Node(
                build_human_feedback_annotations,
                inputs=[
                    "ilf_annotations_raw",
                    "mbpp_raw",
                    "tasks",
                    "params:annotations",
                    "params:feedback.source",
                ],
                outputs="human_feedback_annotations",
                name="filter_human_feedback_annotations",
            ),
        ]
    )

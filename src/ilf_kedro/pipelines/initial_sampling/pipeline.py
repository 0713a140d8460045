"""initial_sampling: zero-shot pi_theta on the configured splits -> the failing tasks, one
failing program per task with its verdict, and a queue for human feedback (Table 1). The
passing samples are what RFT trains on (evaluation, namespace ``rft``)."""

from kedro.pipeline import Node, Pipeline

from ilf_kedro.pipelines import model_loading
from ilf_kedro.pipelines.stage_nodes import per_task_pass_rates, run_tests, sample, select_tasks

from .nodes import (
    build_annotation_queue,
    build_annotation_tasks,
    find_failing_tasks,
    pick_failing_programs,
    select_tasks_to_sample,
)


def create_pipeline(
    inside_ilf: bool = False, label_studio_import: bool = True, **kwargs
) -> Pipeline:
    """``inside_ilf``: sample ``initial_sampling.splits`` only when ``feedback.source`` is
    automatic (human feedback comes with its own programs), and ``refinement.split``
    always, for RFT's passing samples; on its own the pipeline samples every split of
    ``initial_sampling.splits``. ``label_studio_import``: also write the queue as a Label
    Studio import, ``annotation_tasks`` (never in ``ilf`` nor in ``ilf_rounds``' rounds)."""
    if inside_ilf:
        selection = Node(
            select_tasks_to_sample,
            inputs=[
                "tasks",
                "params:initial_sampling.splits",
                "params:max_tasks_per_split",
                "params:feedback.source",
                "params:refinement.split",
            ],
            outputs="initial_sampling_prompts",
            name="select_tasks_to_sample",
        )
    else:
        selection = Node(
            select_tasks,
            inputs=["tasks", "params:initial_sampling.splits", "params:max_tasks_per_split"],
            outputs="initial_sampling_prompts",
            name="select_initial_sampling_tasks",
        )
    pipeline = model_loading.create_pipeline() + Pipeline(
        [
            selection,
            Node(
                sample,
                inputs=[
                    "base_model",
                    "initial_sampling_prompts",
                    "params:sampling",
                    "params:compute",
                ],
                outputs="initial_samples",
                name="sample_zero_shot_programs",
            ),
            Node(
                run_tests,
                inputs=[
                    "initial_samples",
                    "tasks",
                    "task_time_limits",
                    "params:execution",
                    "params:compute",
                ],
                outputs="initial_sample_results",
                name="test_zero_shot_programs",
            ),
            Node(
                per_task_pass_rates,
                inputs=["initial_sample_results", "params:pass_at_k"],
                outputs="task_pass_stats",
                name="compute_zero_shot_pass_rates",
            ),
            Node(
                find_failing_tasks,
                inputs=["task_pass_stats", "tasks"],
                outputs="failing_tasks",
                name="find_failing_tasks",
            ),
            Node(
                pick_failing_programs,
                inputs=["failing_tasks", "initial_sample_results", "params:seed"],
                outputs="failing_programs",
                name="pick_failing_programs",
            ),
            Node(
                build_annotation_queue,
                inputs="failing_programs",
                outputs="annotation_queue",
                name="queue_failing_programs_for_feedback",
            ),
        ]
    )
    if inside_ilf or not label_studio_import:
        return pipeline
    return pipeline + Pipeline(
        [
            Node(
                build_annotation_tasks,
                inputs=["annotation_queue", "failing_programs", "tasks", "labeling_config"],
                outputs="annotation_tasks",
                name="build_annotation_tasks",
            )
        ]
    )

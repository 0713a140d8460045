"""initial_sampling: zero-shot pi_theta on the configured splits -> the failing tasks and
a queue of failing programs for a new round of feedback (paper Table 1)."""

from kedro.pipeline import Node, Pipeline

from ilf_kedro.pipelines import model_loading
from ilf_kedro.pipelines.stage_nodes import per_task_pass_rates, run_tests, sample, select_tasks

from .nodes import build_annotation_queue, find_failing_tasks


def create_pipeline(**kwargs) -> Pipeline:
    return model_loading.create_pipeline() + Pipeline(
        [
            Node(
                select_tasks,
                inputs=["tasks", "params:initial_sampling.splits", "params:max_tasks_per_split"],
                outputs="initial_sampling_prompts",
                name="select_initial_sampling_tasks",
            ),
            Node(
                sample,
                inputs=["base_model", "initial_sampling_prompts", "params:sampling"],
                outputs="initial_samples",
                name="sample_zero_shot_programs",
            ),
            Node(
                run_tests,
                inputs=["initial_samples", "tasks", "task_time_limits", "params:execution"],
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
                build_annotation_queue,
                inputs=["failing_tasks", "initial_sample_results", "params:seed"],
                outputs="annotation_queue",
                name="queue_failing_programs_for_feedback",
            ),
        ]
    )

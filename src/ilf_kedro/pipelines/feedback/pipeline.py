"""feedback: the configured source (``feedback.source``) writes feedback on failing
programs -> ``written_feedback`` -> its refinements tested -> ``feedback_annotations``."""

from kedro.pipeline import Node, Pipeline

from ilf_kedro.tracking.metrics import annotation_metric_values

from .nodes import keep_verdicts, summarise_annotations, test_written_refinements, write_feedback


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                write_feedback,
                inputs=[
                    "human_feedback_annotations",
                    "failing_programs",
                    "tasks",
                    "params:feedback",
                    "params:seed",
                    "openai_credentials",
                ],
                outputs="written_feedback",
                name="write_feedback",
            ),
            Node(
                test_written_refinements,
                inputs=[
                    "written_feedback",
                    "tasks",
                    "task_time_limits",
                    "params:execution",
                    "params:compute",
                ],
                outputs="written_refinement_results",
                name="test_written_refinements",
            ),
            Node(
                keep_verdicts,
                inputs=["written_feedback", "written_refinement_results"],
                outputs="feedback_annotations",
                name="record_refinement_verdicts",
            ),
            Node(
                summarise_annotations,
                inputs="feedback_annotations",
                outputs="annotation_stats",
                name="summarise_annotations",
            ),
            Node(
                annotation_metric_values,
                inputs="annotation_stats",
                outputs="annotation_stats_mlflow",
                name="track_annotation_stats",
            ),
        ]
    )

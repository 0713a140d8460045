"""evaluation pipeline."""

from .pipeline import check_test_sets, create_pipeline, plan_task_sets

__all__ = ["check_test_sets", "create_pipeline", "plan_task_sets"]

"""evaluation pipeline."""

from .pipeline import create_pipeline, plan_task_sets

__all__ = ["create_pipeline", "plan_task_sets"]

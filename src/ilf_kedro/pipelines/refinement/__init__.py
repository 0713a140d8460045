"""refinement pipeline, and its refiner variants for ilf_ablations."""

from .pipeline import create_pipeline, few_shot_refiner, unrelated_feedback_ablation

__all__ = ["create_pipeline", "few_shot_refiner", "unrelated_feedback_ablation"]

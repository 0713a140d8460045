"""model_registry: pi_theta* and pi_Refine as registered MLflow models (docs/models.md)."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]

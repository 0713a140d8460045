"""Raw MBPP-schema tasks and feedback annotations to validated, split, prompted tables."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]

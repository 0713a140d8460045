"""world: the miniature world's tasks, base model and annotations (issue 18)."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]

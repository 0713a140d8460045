"""evaluation pipeline."""

from .pipeline import check_test_sets, create_pipeline

__all__ = ["check_test_sets", "create_pipeline"]

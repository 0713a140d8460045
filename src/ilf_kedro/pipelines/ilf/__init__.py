"""ilf pipeline: Algorithm 1 of the paper, from the raw data to Table 4."""

from .pipeline import FEW_SHOT_REFINERS, create_pipeline

__all__ = ["FEW_SHOT_REFINERS", "create_pipeline"]

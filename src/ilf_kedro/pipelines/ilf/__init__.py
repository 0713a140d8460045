"""ilf pipeline: Algorithm 1 of the paper, from the annotations to Table 4."""

from .pipeline import STAGES, create_pipeline

__all__ = ["STAGES", "create_pipeline"]

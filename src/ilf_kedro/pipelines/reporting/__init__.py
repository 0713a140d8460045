"""reporting pipeline: the paper's tables, Figure 3, plots and the run summary."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]

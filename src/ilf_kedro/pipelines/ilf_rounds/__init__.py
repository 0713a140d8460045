"""ilf_rounds: Algorithm 1 repeated, each round starting from the last round's pi_theta*."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]

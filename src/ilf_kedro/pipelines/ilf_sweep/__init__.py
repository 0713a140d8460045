"""ilf_sweep: sample efficiency, ILF and gold demonstrations against the number of feedback
annotations used."""

from .pipeline import DEFAULT_SHARES, create_pipeline, point_name

__all__ = ["DEFAULT_SHARES", "create_pipeline", "point_name"]

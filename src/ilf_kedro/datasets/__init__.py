"""Custom Kedro datasets of the project."""

from .json_lines import JSONLinesDataset

__all__ = ["JSONLinesDataset"]

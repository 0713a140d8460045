"""Custom Kedro datasets of the project."""

from .hf_model import HFModelDataset
from .json_lines import JSONLinesDataset

__all__ = ["HFModelDataset", "JSONLinesDataset"]

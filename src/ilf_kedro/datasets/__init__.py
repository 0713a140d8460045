"""Custom Kedro datasets of the project."""

from .deferred import CredentialsDataset, DeferredDataset
from .hf_model import HFModelDataset
from .json_lines import JSONLinesDataset
from .label_studio import LabelStudioDataset
from .mlflow_model import MlflowRegisteredModelDataset

__all__ = [
    "CredentialsDataset",
    "DeferredDataset",
    "HFModelDataset",
    "JSONLinesDataset",
    "LabelStudioDataset",
    "MlflowRegisteredModelDataset",
]

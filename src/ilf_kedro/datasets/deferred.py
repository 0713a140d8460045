"""Datasets whose loading a node decides: ``DeferredDataset`` and ``CredentialsDataset``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kedro.io import AbstractDataset, DatasetError


class DeferredDataset(AbstractDataset):
    """Wraps any dataset; ``load()`` returns a zero-argument callable that loads it.

    The node that receives it decides whether the data is read at all: with an automatic
    feedback source the ILF run never opens (or downloads) the released annotations.
    Catalog::

        ilf_annotations_raw:
          type: ilf_kedro.datasets.DeferredDataset
          dataset:
            type: ilf_kedro.datasets.JSONLinesDataset
            filepath: data/01_raw/annotations.jsonl
    """

    def __init__(self, dataset: dict[str, Any], metadata: dict[str, Any] | None = None):
        if not isinstance(dataset, dict) or "type" not in dataset:
            raise DatasetError("DeferredDataset needs `dataset:` with a `type` (the real dataset)")
        self._dataset = AbstractDataset.from_config("deferred", dict(dataset))
        self.metadata = metadata

    def load(self) -> Callable[[], Any]:
        return self._dataset.load

    def save(self, data: Any) -> None:
        """Saves ``data`` through the wrapped dataset (a pipeline that writes the file,
        e.g. the miniature world's annotator); readers still get a loader."""
        self._dataset.save(data)

    def _exists(self) -> bool:
        return self._dataset.exists()

    def _describe(self) -> dict[str, Any]:
        return {"dataset": self._dataset._describe()}


class CredentialsDataset(AbstractDataset):
    """The Kedro credentials named in the catalog entry, for a node that calls an API.

    ``conf/base/credentials.yml`` holds an empty ``openai`` entry; put the key in
    ``conf/local/credentials.yml`` (``openai: {api_key: ...}``), never in parameters.
    Nothing of the credentials is ever described or logged.
    """

    def __init__(self, credentials: dict[str, Any] | None = None, metadata=None):
        self._credentials = dict(credentials or {})
        self.metadata = metadata

    def load(self) -> dict[str, Any]:
        return dict(self._credentials)

    def save(self, data: Any) -> None:
        raise DatasetError("CredentialsDataset is read-only")

    def _describe(self) -> dict[str, Any]:
        return {"keys": sorted(self._credentials)}

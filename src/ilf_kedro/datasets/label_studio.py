"""``LabelStudioDataset``: Label Studio annotations in the released ILF annotation schema."""

from __future__ import annotations

from copy import deepcopy
from typing import Any

import fsspec
import pandas as pd
from kedro.io.core import AbstractDataset, DatasetError

from ilf_kedro.label_studio import LabelStudioClient, load_export_text, parse_export


class LabelStudioDataset(AbstractDataset[None, pd.DataFrame]):
    """Loads the submitted annotations of a Label Studio project as a DataFrame in the
    released ILF schema (``task_id``, ``prompt``, ``Feedback``,
    ``original_model_completion``, ``unedited_annotator_completion``, ``passed``, plus
    ``worker_id``, ``label_studio_task``, ``label_studio_annotation``), so
    ``ilf_annotations_raw`` can point at it and ``data_processing`` runs unchanged.

    The source is either a JSON export file (``filepath``: local or any fsspec URL;
    ``credentials`` go to fsspec) or a running server (``url`` + ``project``;
    ``credentials: {token: ...}``, a legacy token or a personal access token). Skipped
    annotations and unannotated tasks are logged as warnings naming the tasks; several
    annotations of one task are all kept, with a warning; half-filled annotations and
    tasks from another labeling configuration raise, naming every task at fault (see
    ``ilf_kedro.label_studio``). Read-only: annotations are written in Label Studio.

    Example catalog entries (conf/local/catalog.yml; ``ilf_annotations_raw`` is read through
    a ``DeferredDataset`` so automatic feedback sources never open it)::

        ilf_annotations_raw:
          type: ilf_kedro.datasets.DeferredDataset
          dataset:
            type: ilf_kedro.datasets.LabelStudioDataset
            filepath: data/01_raw/label_studio/export.json

        ilf_annotations_raw:
          type: ilf_kedro.datasets.DeferredDataset
          dataset:
            type: ilf_kedro.datasets.LabelStudioDataset
            url: http://127.0.0.1:8080
            project: 1
            credentials: label_studio  # conf/local/credentials.yml: label_studio: {token: ...}
    """

    def __init__(
        self,
        *,
        filepath: str | None = None,
        url: str | None = None,
        project: int | None = None,
        credentials: dict[str, Any] | None = None,
        load_args: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        """Create the dataset.

        Args:
            filepath: A Label Studio JSON export (any fsspec path). Exclusive with ``url``.
            url: Base URL of a Label Studio server, e.g. ``http://127.0.0.1:8080``.
            project: The project's id on that server (in its URL: ``/projects/<id>``).
            credentials: With ``filepath``, fsspec credentials; with ``url``, ``token``.
            load_args: ``timeout_s`` for server requests (default 60).
            metadata: Free-form metadata (kedro-viz layer).
        """
        if (filepath is None) == (url is None):
            both = (
                f" (got filepath {filepath!r} and url {url!r}; an entry in conf/local that "
                "sets url keeps conf/base's filepath, since the project merges catalogs key "
                "by key: set `filepath: null` there)"
                if url is not None
                else ""
            )
            raise DatasetError(
                "LabelStudioDataset: give exactly one of 'filepath' (a JSON export) or "
                f"'url' + 'project' (a running Label Studio server){both}"
            )
        self._credentials = deepcopy(credentials) or {}
        self._load_args = {"timeout_s": 60.0, **(load_args or {})}
        self.metadata = metadata
        self._filepath = filepath
        self._url = url
        self._project = project
        if url is not None:
            if not isinstance(project, int) or isinstance(project, bool):
                raise DatasetError(
                    f"LabelStudioDataset: 'project' must be the project's integer id on {url}, "
                    f"got {project!r}"
                )
            if not self._credentials.get("token"):
                raise DatasetError(
                    f"LabelStudioDataset: reading {url} needs credentials with a 'token' "
                    "(Label Studio: Account & Settings > Personal Access Token or Legacy "
                    "Token), e.g. conf/local/credentials.yml: label_studio: {token: ...}"
                )

    def load(self) -> pd.DataFrame:
        if self._url is not None:
            source = f"{self._url} project {self._project}"
            client = LabelStudioClient(
                self._url, self._credentials["token"], float(self._load_args["timeout_s"])
            )
            return parse_export(client.export(self._project), source)
        with fsspec.open(self._filepath, mode="rb", **self._credentials) as handle:
            text = handle.read()
        return parse_export(load_export_text(text, self._filepath), self._filepath)

    def save(self, data: pd.DataFrame) -> None:
        raise DatasetError(
            "LabelStudioDataset is read-only: annotations are written in Label Studio"
        )

    def _describe(self) -> dict[str, Any]:
        if self._url is not None:
            return {"url": self._url, "project": self._project}
        return {"filepath": self._filepath}

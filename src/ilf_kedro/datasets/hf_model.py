"""``HFModelDataset``: a Hugging Face model directory (model + tokenizer + ILF info)."""

from __future__ import annotations

from copy import deepcopy
from pathlib import Path, PurePosixPath
from typing import Any

from kedro.io.core import (
    AbstractVersionedDataset,
    DatasetError,
    Version,
    get_filepath_str,
    get_protocol_and_path,
)

from ilf_kedro.models.io import load_bundle, save_bundle
from ilf_kedro.models.loading import INFO_FILENAME, ModelBundle
from ilf_kedro.parameters import Model

_MODEL = Model()  # the ``model`` parameters' device and dtype defaults (one source)


class HFModelDataset(AbstractVersionedDataset[ModelBundle, ModelBundle]):
    """Loads and saves a ``ModelBundle`` as a ``save_pretrained`` directory.

    The directory holds the model's weights and config, the tokenizer files and
    ``ilf_model_info.json`` (the bundle's ``info``: source, random weights, training set
    size, ``untrained_reason``...). Saving is atomic: files go to a temporary sibling
    directory renamed into place when complete. With ``versioned: true`` every save is a
    new ``<filepath>/<timestamp>/<name>`` directory. Local filesystem only (Hugging Face
    writes directories with plain file I/O).

    A LoRA model saved as an adapter (``finetune.lora.save: adapter``) is a directory with
    PEFT's ``adapter_config.json`` and ``info["adapter_base"]``; loading it loads that base
    model and merges the adapter in.

    Example catalog entry::

        refiner_model:
          type: ilf_kedro.datasets.hf_model.HFModelDataset
          filepath: data/06_models/refiner_model
          versioned: true
          load_args:
            device: auto   # auto | cpu | cuda
            dtype: auto    # auto | float32 | bfloat16 | float16
    """

    DEFAULT_LOAD_ARGS: dict[str, Any] = {"device": _MODEL.device, "dtype": _MODEL.dtype}
    DEFAULT_SAVE_ARGS: dict[str, Any] = {}

    def __init__(
        self,
        *,
        filepath: str,
        load_args: dict[str, Any] | None = None,
        save_args: dict[str, Any] | None = None,
        version: Version | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        """Create the dataset.

        Args:
            filepath: Directory of the model (local path).
            load_args: ``device`` and ``dtype`` for loading (see ``load_model``).
            save_args: Keyword arguments for ``model.save_pretrained``.
            version: Kedro load/save version; ``None`` disables versioning.
            metadata: Free-form metadata for plugins (e.g. kedro-viz); not used here.
        """
        protocol, path = get_protocol_and_path(filepath, version)
        if protocol != "file":
            raise DatasetError(f"HFModelDataset supports local paths only, got {filepath!r}")
        self._protocol = protocol
        self._load_args = {**self.DEFAULT_LOAD_ARGS, **(load_args or {})}
        unknown = set(self._load_args) - set(self.DEFAULT_LOAD_ARGS)
        if unknown:
            raise DatasetError(f"Unknown load_args {sorted(unknown)}; use device and dtype")
        self._save_args = {**self.DEFAULT_SAVE_ARGS, **(save_args or {})}
        self.metadata = metadata
        super().__init__(
            filepath=PurePosixPath(path),
            version=version,
            exists_function=lambda p: Path(p).exists(),
        )

    def load(self) -> ModelBundle:
        """Load the bundle (``from_pretrained``) on the configured device and dtype."""
        path = get_filepath_str(self._get_load_path(), self._protocol)
        return load_bundle(path, **self._load_args)

    def save(self, data: ModelBundle) -> None:
        """Write the bundle atomically (``save_pretrained`` + info JSON)."""
        if not isinstance(data, ModelBundle):
            raise DatasetError(f"HFModelDataset saves a ModelBundle, got {type(data).__name__}")
        path = get_filepath_str(self._get_save_path(), self._protocol)
        save_bundle(data, path, **self._save_args)

    def _exists(self) -> bool:
        try:
            path = get_filepath_str(self._get_load_path(), self._protocol)
        except DatasetError:
            return False
        return (Path(path) / INFO_FILENAME).is_file() or (Path(path) / "config.json").is_file()

    def _describe(self) -> dict[str, Any]:
        return {
            "filepath": self._filepath,
            "protocol": self._protocol,
            "load_args": deepcopy(self._load_args),
            "save_args": deepcopy(self._save_args),
            "version": self._version,
        }

"""A JSON Lines dataset that says which file and line is broken.

pandas' reader fails on the first bad byte or bracket with a message that names neither
the file nor the record; raw data from annotators and the web deserves better. Files
ending in a compression suffix (``.gz``, ``.bz2``, ``.xz``, ...) are read through fsspec's
codec for it, as HumanEval ships (``HumanEval.jsonl.gz``).
"""

from __future__ import annotations

import json
import re
from typing import Any

import pandas as pd
from kedro.io import DatasetError
from kedro_datasets.pandas import JSONDataset

# MBPP ids are integers ("task_id": 11), HumanEval's strings ("task_id": "HumanEval/0").
_TASK_ID = re.compile(rb'"task_id"\s*:\s*(?:"([^"\\]{1,100})"|(-?\d+))')


class JSONLinesDataset(JSONDataset):
    """Loads a JSON Lines file (local or any fsspec URL) into a DataFrame, one row per line.

    Every line is decoded as strict UTF-8 and parsed on its own, so an undecodable byte or
    malformed record is reported with the file, the line number and, where the line shows
    one, its ``task_id``. Values keep their JSON types (no dtype guessing). A compressed
    file (``.jsonl.gz`` and the other suffixes fsspec knows) is decompressed on load and
    written compressed on save, unless ``fs_args.open_args_load/save.compression`` say
    otherwise. Saving writes JSON Lines through the parent ``pandas.JSONDataset``.
    """

    DEFAULT_SAVE_ARGS: dict[str, Any] = {"orient": "records", "lines": True}

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._fs_open_args_load.setdefault("compression", "infer")
        self._fs_open_args_save.setdefault("compression", "infer")

    def load(self) -> pd.DataFrame:
        path = self._get_load_path()
        source = f"{self._protocol}://{path}" if self._protocol != "file" else str(path)
        with self._fs.open(str(path), mode="rb", **self._fs_open_args_load) as handle:
            try:
                raw = handle.read()
            except (OSError, EOFError, ValueError) as err:  # a truncated or non-gzip .gz
                raise DatasetError(f"{source}: cannot be decompressed: {err}") from err
        records = []
        for number, line in enumerate(raw.splitlines(), start=1):
            if not line.strip():
                continue
            records.append(_parse_line(line, source, number))
        return pd.DataFrame.from_records(records)


def _parse_line(line: bytes, source: str, number: int) -> dict[str, Any]:
    match = _TASK_ID.search(line)
    task_id = None if match is None else (match[1] or match[2]).decode("utf-8", "replace")
    where = f"{source}, line {number}" + (f" (task_id {task_id})" if task_id else "")
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as err:
        raise DatasetError(
            f"{where}: bytes {line[err.start : err.end]!r} at column {err.start + 1} "
            "are not valid UTF-8"
        ) from err
    try:
        record = json.loads(text)
    except json.JSONDecodeError as err:
        raise DatasetError(f"{where}: not valid JSON: {err.msg} at column {err.colno}") from err
    if not isinstance(record, dict):
        raise DatasetError(f"{where}: expected a JSON object, got {type(record).__name__}")
    return record

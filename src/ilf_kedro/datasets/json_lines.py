"""A JSON Lines dataset that says which file and line is broken.

pandas' reader fails on the first bad byte or bracket with a message that names neither
the file nor the record; raw data from annotators and the web deserves better.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pandas as pd
from kedro.io import DatasetError
from kedro_datasets.pandas import JSONDataset

_TASK_ID = re.compile(rb'"task_id"\s*:\s*"?(\d+)')


class JSONLinesDataset(JSONDataset):
    """Loads a JSON Lines file (local or any fsspec URL) into a DataFrame, one row per line.

    Every line is decoded as strict UTF-8 and parsed on its own, so an undecodable byte or
    malformed record is reported with the file, the line number and, where the line shows
    one, its ``task_id``. Values keep their JSON types (no dtype guessing). Saving writes
    JSON Lines through the parent ``pandas.JSONDataset``.
    """

    DEFAULT_SAVE_ARGS: dict[str, Any] = {"orient": "records", "lines": True}

    def load(self) -> pd.DataFrame:
        path = self._get_load_path()
        source = f"{self._protocol}://{path}" if self._protocol != "file" else str(path)
        with self._fs.open(str(path), mode="rb", **self._fs_open_args_load) as handle:
            raw = handle.read()
        records = []
        for number, line in enumerate(raw.splitlines(), start=1):
            if not line.strip():
                continue
            records.append(_parse_line(line, source, number))
        return pd.DataFrame.from_records(records)


def _parse_line(line: bytes, source: str, number: int) -> dict[str, Any]:
    match = _TASK_ID.search(line)
    where = f"{source}, line {number}" + (f" (task_id {int(match[1])})" if match else "")
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

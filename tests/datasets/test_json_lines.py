import pandas as pd
import pytest
from kedro.io import DatasetError

from ilf_kedro.datasets import JSONLinesDataset


def test_loads_json_types_and_skips_blank_lines(tmp_path):
    path = tmp_path / "tasks.jsonl"
    path.write_text('{"task_id": 1, "test_list": ["a"]}\n\n{"task_id": 2, "test_list": []}\n')
    frame = JSONLinesDataset(filepath=str(path)).load()
    assert frame["task_id"].tolist() == [1, 2]
    assert frame["test_list"].tolist() == [["a"], []]


def test_undecodable_bytes_name_the_file_line_and_task(tmp_path):
    path = tmp_path / "tasks.jsonl"
    path.write_bytes(b'{"task_id": 1, "text": "ok"}\n{"task_id": 7, "text": "caf\xe9"}\n')
    with pytest.raises(DatasetError, match=r"tasks.jsonl, line 2 \(task_id 7\).*not valid UTF-8"):
        JSONLinesDataset(filepath=str(path)).load()


def test_malformed_json_names_the_line(tmp_path):
    path = tmp_path / "tasks.jsonl"
    path.write_text('{"task_id": 1}\n{"task_id": 2,\n')
    with pytest.raises(DatasetError, match=r"line 2 \(task_id 2\): not valid JSON"):
        JSONLinesDataset(filepath=str(path)).load()


def test_save_round_trip(tmp_path):
    dataset = JSONLinesDataset(filepath=str(tmp_path / "out.jsonl"))
    dataset.save(pd.DataFrame({"task_id": [3], "tests": [["assert f() == 1"]]}))
    assert dataset.load()["tests"].tolist() == [["assert f() == 1"]]

import gzip

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


def test_gzip_is_read_and_written_by_suffix(tmp_path):
    dataset = JSONLinesDataset(filepath=str(tmp_path / "tasks.jsonl.gz"))
    dataset.save(pd.DataFrame({"task_id": ["HumanEval/0"], "prompt": ["def f():\n"]}))
    assert gzip.decompress((tmp_path / "tasks.jsonl.gz").read_bytes()).startswith(b'{"task_id"')
    assert dataset.load()["task_id"].tolist() == ["HumanEval/0"]


def test_string_task_ids_are_named_in_errors_inside_gzip(tmp_path):
    path = tmp_path / "HumanEval.jsonl.gz"
    path.write_bytes(gzip.compress(b'{"task_id": "HumanEval/0"}\n{"task_id": "HumanEval/1", \n'))
    with pytest.raises(DatasetError, match=r"line 2 \(task_id HumanEval/1\): not valid JSON"):
        JSONLinesDataset(filepath=str(path)).load()


def test_a_file_that_is_not_gzip_names_the_file(tmp_path):
    path = tmp_path / "HumanEval.jsonl.gz"
    path.write_text('{"task_id": "HumanEval/0"}\n')
    with pytest.raises(DatasetError, match=r"HumanEval.jsonl.gz: cannot be decompressed"):
        JSONLinesDataset(filepath=str(path)).load()


def test_reads_the_shared_humaneval_release(humaneval_path):
    frame = JSONLinesDataset(filepath=str(humaneval_path)).load()
    assert len(frame) == 164
    assert list(frame.columns) == ["task_id", "prompt", "entry_point", "canonical_solution", "test"]

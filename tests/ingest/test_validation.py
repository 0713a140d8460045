import pandas as pd
import pytest

from ilf_kedro.ingest.validation import (
    DataValidationError,
    validate_annotations,
    validate_humaneval,
    validate_mbpp,
)


def _tasks(overrides=None):
    rows = [
        {
            "task_id": i,
            "text": f"t{i}",
            "code": f"def f{i}(): return {i}",
            "test_list": [f"assert f{i}() == {i}"],
            "test_setup_code": "",
        }
        for i in (11, 12, 13)
    ]
    for (index, column), value in (overrides or {}).items():
        rows[index][column] = value
    return pd.DataFrame.from_records(rows)


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (_tasks().drop(columns=["test_list"]), r"mbpp_raw: missing column\(s\) 'test_list'"),
        (
            _tasks({(1, "task_id"): "12"}),
            r"mbpp_raw: column 'task_id': must be an integer"
            r" \(task_id 12\)",
        ),
        (_tasks({(2, "task_id"): 12}), r"column 'task_id': must be unique \(task_id 12\)"),
        (
            _tasks({(0, "test_list"): []}),
            r"column 'test_list': must be a non-empty list of "
            r"assert strings \(task_id 11\)",
        ),
        (_tasks({(2, "text"): None}), r"column 'text': must not be null \(task_id 13\)"),
    ],
    ids=["missing-column", "wrong-type", "duplicate-id", "no-tests", "null-text"],
)
def test_mbpp_schema_errors_name_dataset_column_and_row(frame, message):
    with pytest.raises(DataValidationError, match=message):
        validate_mbpp(frame)


def test_annotation_for_unknown_task_is_named():
    annotations = pd.DataFrame(
        {
            "task_id": [11, 99],
            "Feedback": ["a", "b"],
            "original_model_completion": ["x", "y"],
            "unedited_annotator_completion": ["x", "y"],
            "passed": [True, True],
        }
    )
    with pytest.raises(
        DataValidationError,
        match=r"ilf_annotations_raw: column 'task_id': annotations for unknown tasks "
        r"\(task_id 99\)",
    ):
        validate_annotations(annotations, [11, 12])


def test_annotation_wrong_type_is_named():
    annotations = pd.DataFrame(
        {
            "task_id": [11],
            "Feedback": [3],
            "original_model_completion": ["x"],
            "unedited_annotator_completion": ["x"],
            "passed": ["yes"],
        }
    )
    with pytest.raises(DataValidationError) as info:
        validate_annotations(annotations, [11])
    assert "column 'Feedback': must be a string (task_id 11)" in str(info.value)
    assert "column 'passed': must be a boolean (task_id 11)" in str(info.value)


def test_real_mbpp_and_annotations_validate(mbpp_raw, annotations_raw):
    assert len(validate_mbpp(mbpp_raw)) == 974
    assert len(validate_annotations(annotations_raw, mbpp_raw["task_id"])) == 195


def _humaneval(overrides=None):
    rows = [
        {
            "task_id": f"HumanEval/{i}",
            "prompt": f'def f{i}(x):\n    """Return x + {i}."""\n',
            "canonical_solution": f"    return x + {i}\n",
            "test": f"def check(candidate):\n    assert candidate(0) == {i}\n",
            "entry_point": f"f{i}",
        }
        for i in range(3)
    ]
    for (index, column), value in (overrides or {}).items():
        rows[index][column] = value
    return pd.DataFrame.from_records(rows)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({(1, "task_id"): 1}, r"column 'task_id': must be a string ending in the task number"),
        ({(2, "task_id"): "HumanEval/1"}, r"column 'task_id': must be unique"),
        (
            {(2, "task_id"): "Other/1"},
            r"numbers ending the ids must be unique \(task_id HumanEval/1, Other/1\)",
        ),
        (
            {(1, "prompt"): "def f1(x:\n"},
            r"column 'prompt': must be Python source \(.*\(task_id HumanEval/1\)",
        ),
        (
            {(0, "test"): "assert f0(0) == 0"},
            r"column 'test': must be Python source defining check\(candidate\)"
            r" \(task_id HumanEval/0\)",
        ),
        (
            {(2, "entry_point"): "g"},
            r"column 'entry_point': must name a function the prompt defines"
            r" \(task_id HumanEval/2\)",
        ),
        ({(2, "entry_point"): None}, r"column 'entry_point': must not be null"),
        ({(2, "entry_point"): "f 2"}, r"column 'entry_point': must be a Python identifier"),
        ({(0, "canonical_solution"): 3}, r"column 'canonical_solution': must be a string"),
    ],
)
def test_humaneval_errors_name_the_column_and_row(overrides, message):
    with pytest.raises(DataValidationError, match=r"humaneval_raw: .*" + message):
        validate_humaneval(_humaneval(overrides))


def test_humaneval_missing_column_is_named():
    with pytest.raises(DataValidationError, match=r"missing column\(s\) 'entry_point'"):
        validate_humaneval(_humaneval().drop(columns=["entry_point"]))

import pandas as pd
import pytest

from ilf_kedro.validation import DataValidationError, validate_annotations, validate_mbpp


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

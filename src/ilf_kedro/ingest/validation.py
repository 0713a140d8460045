"""Schemas of the raw sources, checked with pandera before anything is derived from them.

Errors name the dataset, the column and the rows (by task id) at fault, so a user can fix
the file; nothing downstream of a failing check is computed or written.
"""

from __future__ import annotations

import numbers
import re

import pandas as pd
import pandera.pandas as pa
from pandera.errors import SchemaErrors

from ilf_kedro.ingest import humaneval

MBPP_COLUMNS = ("task_id", "text", "code", "test_list", "test_setup_code")
ANNOTATION_COLUMNS = (
    "task_id",
    "Feedback",
    "original_model_completion",
    "unedited_annotator_completion",
    "passed",
)


class DataValidationError(ValueError):
    """Raw data that breaks its schema; the message lists every problem found."""


def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_str(value) -> bool:
    return isinstance(value, str)


def _is_test_list(value) -> bool:
    items = list(value) if isinstance(value, list | tuple) or hasattr(value, "tolist") else None
    return bool(items) and all(isinstance(t, str) and t.strip() for t in items)


def _is_source_id(value) -> bool:
    return isinstance(value, str) and re.search(r"\d+\s*$", value) is not None


def _is_python(value) -> bool:
    if not isinstance(value, str) or not value.strip():
        return False
    try:
        compile(value, "<prompt>", "exec", dont_inherit=True)
    except (SyntaxError, ValueError):
        return False
    return True


def _is_identifier(value) -> bool:
    return isinstance(value, str) and value.strip().isidentifier()


def _element(check, error: str) -> pa.Check:
    return pa.Check(check, element_wise=True, error=error)


_MBPP_SCHEMA = pa.DataFrameSchema(
    {
        "task_id": pa.Column(
            None, [_element(_is_int, "must be an integer")], unique=True, coerce=False
        ),
        "text": pa.Column(None, [_element(_is_str, "must be a string")]),
        "code": pa.Column(None, [_element(_is_str, "must be a string")]),
        "test_list": pa.Column(
            None, [_element(_is_test_list, "must be a non-empty list of assert strings")]
        ),
        "test_setup_code": pa.Column(None, [_element(_is_str, "must be a string")]),
    },
    strict=False,
)

_ANNOTATION_SCHEMA = pa.DataFrameSchema(
    {
        "task_id": pa.Column(None, [_element(_is_int, "must be an integer")]),
        "Feedback": pa.Column(None, [_element(_is_str, "must be a string")], nullable=True),
        "original_model_completion": pa.Column(
            None, [_element(_is_str, "must be a string")], nullable=True
        ),
        "unedited_annotator_completion": pa.Column(
            None, [_element(_is_str, "must be a string")], nullable=True
        ),
        "passed": pa.Column(None, [_element(lambda v: isinstance(v, bool), "must be a boolean")]),
    },
    strict=False,
)


_HUMANEVAL_SCHEMA = pa.DataFrameSchema(
    {
        "task_id": pa.Column(
            None,
            [
                _element(
                    _is_source_id, "must be a string ending in the task number, like 'HumanEval/0'"
                )
            ],
            unique=True,
        ),
        "prompt": pa.Column(
            None, [_element(_is_python, "must be Python source (signature and docstring)")]
        ),
        "canonical_solution": pa.Column(None, [_element(_is_str, "must be a string")]),
        "test": pa.Column(
            None,
            [
                _element(
                    lambda v: isinstance(v, str) and humaneval.find_check(v) is not None,
                    "must be Python source defining check(candidate)",
                )
            ],
        ),
        "entry_point": pa.Column(None, [_element(_is_identifier, "must be a Python identifier")]),
    },
    strict=False,
)


def _row_label(frame: pd.DataFrame, index) -> str:
    if index is None or pd.isna(index) or index not in frame.index:
        return "all rows"
    task_id = frame.at[index, "task_id"] if "task_id" in frame.columns else None
    return f"task_id {task_id}" if task_id is not None else f"row {index}"


def _describe_failures(frame: pd.DataFrame, errors: SchemaErrors) -> list[str]:
    problems = []
    cases = errors.failure_cases
    for (column, check), group in cases.groupby(["column", "check"], dropna=False, sort=False):
        rows = sorted({_row_label(frame, i) for i in group["index"]}, key=str)
        shown = ", ".join(rows[:10]) + (f" and {len(rows) - 10} more" if len(rows) > 10 else "")
        if str(check).startswith("field_uniqueness"):
            check = "must be unique"
        elif str(check) == "not_nullable":
            check = "must not be null"
        elif str(check).startswith("column_in_dataframe"):
            check, shown = "column is missing", "every row"
        problems.append(f"column {column!r}: {check} ({shown})")
    return problems


def _validate(frame: pd.DataFrame, schema: pa.DataFrameSchema, dataset: str) -> pd.DataFrame:
    if frame.empty and not len(frame.columns):
        raise DataValidationError(f"{dataset}: the dataset has no rows")
    missing = [c for c in schema.columns if c not in frame.columns]
    if missing:
        raise DataValidationError(
            f"{dataset}: missing column(s) {', '.join(map(repr, missing))}; "
            f"found {', '.join(map(repr, frame.columns))}"
        )
    try:
        return schema.validate(frame.reset_index(drop=True), lazy=True)
    except SchemaErrors as errors:
        problems = _describe_failures(frame.reset_index(drop=True), errors)
        raise DataValidationError(f"{dataset}: " + "; ".join(problems)) from None


def validate_mbpp(frame: pd.DataFrame, dataset: str = "mbpp_raw") -> pd.DataFrame:
    """Check a task table in MBPP's schema; returns it with a fresh index or raises."""
    return _validate(frame, _MBPP_SCHEMA, dataset)


def validate_humaneval(frame: pd.DataFrame, dataset: str = "humaneval_raw") -> pd.DataFrame:
    """Check a task table in HumanEval's schema; returns it with a fresh index or raises.

    Beyond the column types: the prompt must define the entry point, and the numbers that
    end the ids (the project's int ``task_id``) must be unique within the set.
    """
    frame = _validate(frame, _HUMANEVAL_SCHEMA, dataset)
    problems = []
    undefined = [
        str(row.task_id)
        for row in frame.itertuples(index=False)
        if not humaneval.defines_function(row.prompt, row.entry_point.strip())
    ]
    if undefined:
        problems.append(
            "column 'entry_point': must name a function the prompt defines "
            f"(task_id {', '.join(undefined[:10])})"
        )
    numbers = frame["task_id"].map(humaneval.numeric_task_id)
    clashes = frame.loc[numbers.duplicated(keep=False), "task_id"].astype(str).tolist()
    if clashes:
        problems.append(
            "column 'task_id': the numbers ending the ids must be unique "
            f"(task_id {', '.join(clashes[:10])})"
        )
    if problems:
        raise DataValidationError(f"{dataset}: " + "; ".join(problems))
    return frame


def validate_annotations(
    frame: pd.DataFrame, known_task_ids, dataset: str = "ilf_annotations_raw"
) -> pd.DataFrame:
    """Check annotations in the released ILF schema against the known task ids."""
    frame = _validate(frame, _ANNOTATION_SCHEMA, dataset)
    unknown = sorted(set(frame["task_id"]) - set(known_task_ids))
    if unknown:
        shown = ", ".join(map(str, unknown[:10])) + (" ..." if len(unknown) > 10 else "")
        raise DataValidationError(
            f"{dataset}: column 'task_id': annotations for unknown tasks (task_id {shown})"
        )
    return frame

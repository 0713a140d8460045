"""Test sets that evaluation samples and tests every method on (plain Python, no Kedro).

``mbpp`` is the paper's set: the project's own ``tasks`` table, whose ``evaluation.splits``
(MBPP_Test) are the test tasks. Every other set is a catalog entry ``<set>_raw`` in MBPP's
or HumanEval's schema (named by ``evaluation.task_set_formats``), all of whose rows are
test tasks; :func:`build_set_tasks` validates it and makes the set's task rows.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass

import pandas as pd

from ilf_kedro.ingest import humaneval, tasks, validation

logger = logging.getLogger(__name__)

PAPER_SET = "mbpp"
FORMATS = ("mbpp", "humaneval")
# How each format's own harness compares numbers (the ``equality`` column of its task rows,
# read by the execution harness): MBPP's scripts with a relative tolerance, HumanEval's
# official harness exactly.
EQUALITY = {"mbpp": "tolerant", "humaneval": "exact"}
# Set names become Kedro namespaces and folder names.
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


class TaskSetError(ValueError):
    """A test-set configuration that cannot run; the message names the parameter."""


@dataclass(frozen=True)
class TaskSet:
    """One test set: its name (a namespace) and the schema of its raw dataset."""

    name: str
    format: str

    @property
    def raw_dataset(self) -> str:
        return f"{self.name}_raw"

    @property
    def is_paper_set(self) -> bool:
        return self.name == PAPER_SET

    @property
    def equality(self) -> str:
        """How its asserts compare numbers: its format's own harness's way."""
        return EQUALITY[self.format]


def parse_task_sets(
    names, formats: Mapping[str, str] | None, catalog_entries: Collection[str] | None = None
) -> list[TaskSet]:
    """``evaluation.task_sets`` (a list, or names separated by spaces as the Kedro CLI
    cannot pass a list of two) and ``evaluation.task_set_formats`` -> the sets, checked.

    Raises TaskSetError naming the parameter and the allowed values when a name is not a
    lowercase identifier or repeats, a set other than ``mbpp`` has no format or an unknown
    one, or (when ``catalog_entries`` is given) its ``<set>_raw`` entry is missing.
    """
    if isinstance(names, str):
        names = names.split()
    if not isinstance(names, list | tuple) or PAPER_SET not in names:
        # MBPP_Test stays: Table 4's paper numbers and the refinement report read it.
        raise TaskSetError(
            f"evaluation.task_sets must be a list of set names that includes {PAPER_SET!r}, "
            f"got {names!r}"
        )
    formats = dict(formats or {})
    sets, problems = [], []
    for name in names:
        if not isinstance(name, str) or not _NAME.match(name):
            problems.append(f"{name!r} is not a lowercase identifier (letters, digits, _)")
            continue
        if name in (s.name for s in sets):
            problems.append(f"{name!r} is listed twice")
            continue
        fmt = PAPER_SET if name == PAPER_SET else formats.get(name)
        if fmt not in FORMATS:
            problems.append(
                f"evaluation.task_set_formats.{name} is {fmt!r}; allowed: {', '.join(FORMATS)}"
            )
            continue
        task_set = TaskSet(name, fmt)
        missing = catalog_entries is not None and task_set.raw_dataset not in catalog_entries
        if missing and not task_set.is_paper_set:
            problems.append(f"no catalog entry {task_set.raw_dataset!r} for set {name!r}")
            continue
        sets.append(task_set)
    if problems:
        raise TaskSetError("evaluation.task_sets: " + "; ".join(problems))
    return sets


def set_of(tasks: pd.DataFrame) -> str:
    """The test set a task table belongs to: its ``task_set`` column, else ``mbpp`` (the
    project's own ``tasks`` carry no such column)."""
    if "task_set" in tasks.columns and len(tasks):
        return str(tasks["task_set"].iloc[0])
    return PAPER_SET


def build_set_tasks(raw: pd.DataFrame, task_set: TaskSet) -> pd.DataFrame:
    """A set's raw rows, validated in its schema -> task rows (``humaneval.TASK_SET_COLUMNS``
    plus ``equality``): every row a ``test`` task, ``task_set`` its name,
    ``source_task_id`` its id as given, ``equality`` how its numbers compare.

    Raises ``validation.DataValidationError`` naming ``<set>_raw``, the column and the rows.
    An MBPP-schema task whose prompt cannot be built is left out with a warning.
    """
    if task_set.format == "humaneval":
        checked = validation.validate_humaneval(raw, dataset=task_set.raw_dataset)
        rows = humaneval.build_tasks(checked, task_set=task_set.name)
        return rows.assign(equality=task_set.equality)
    checked = validation.validate_mbpp(raw, dataset=task_set.raw_dataset)
    ids = checked["task_id"]
    rows, errors = tasks.build_tasks(checked, {humaneval.TEST_SPLIT: [ids.min(), ids.max()]})
    if len(errors):
        logger.warning(
            "%s: %d task(s) have no prompt and are left out: task_id %s",
            task_set.raw_dataset,
            len(errors),
            ", ".join(map(str, errors["task_id"].head(10))),
        )
    return rows.assign(
        task_set=task_set.name,
        source_task_id=rows["task_id"].astype(str),
        equality=task_set.equality,
    )

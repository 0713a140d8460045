"""HumanEval (Chen et al. 2021) as task rows the rest of the project understands.

Plain Python, no Kedro. A HumanEval row has ``task_id`` ("HumanEval/0"), ``prompt`` (the
signature and docstring the model completes), ``canonical_solution`` (the body),
``test`` (a module defining ``check(candidate)``) and ``entry_point``. The task row keeps
HumanEval's own prompt, makes ``prompt + canonical_solution`` the gold program (time
limits are calibrated on it) and turns ``check`` into plain test statements the execution
harness runs in order after the program: the module around ``check`` (``METADATA``,
imports, helpers) becomes ``test_setup_code`` and each statement of ``check``'s body one
test, with ``candidate`` renamed to the entry point. So HumanEval's
``assert candidate(x) == y`` arrives as ``assert entry_point(x) == y``, the same shape as
MBPP's asserts; statements of other forms (loops, imports) run in order in the same
namespace, exactly as inside ``check``.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass

import pandas as pd

from ilf_kedro.ilf.prompts import normalise_newlines
from ilf_kedro.ingest.tasks import TASK_COLUMNS

CHECK_FUNCTION = "check"
# Every HumanEval task is a test task: it is never trained on.
TEST_SPLIT = "test"
# Task rows of a named test set: the project's columns plus which set and its own id.
TASK_SET_COLUMNS = [*TASK_COLUMNS, "task_set", "source_task_id"]

_TRAILING_NUMBER = re.compile(r"(\d+)$")


@dataclass(frozen=True)
class CheckTests:
    """``check(candidate)`` as the harness runs it: setup, then one test per statement."""

    setup: str
    tests: list[str]


def numeric_task_id(source_task_id: str) -> int | None:
    """The number that ends a HumanEval-style id ("HumanEval/17" -> 17), or None."""
    match = _TRAILING_NUMBER.search(source_task_id.strip())
    return int(match[1]) if match else None


def find_check(test: str) -> ast.FunctionDef | None:
    """The module-level ``def check(candidate)`` of a HumanEval ``test``, or None when the
    text does not parse or has no such one-argument function."""
    try:
        tree = ast.parse(test)
    except SyntaxError:
        return None
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == CHECK_FUNCTION:
            return node if len(node.args.args) == 1 else None
    return None


def defines_function(prompt: str, name: str) -> bool:
    """Whether ``prompt`` parses and defines a module-level function ``name``."""
    try:
        tree = ast.parse(prompt)
    except SyntaxError:
        return False
    return any(
        isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == name
        for node in tree.body
    )


class _Rename(ast.NodeTransformer):
    def __init__(self, old: str, new: str) -> None:
        self.old, self.new = old, new

    def visit_Name(self, node: ast.Name) -> ast.Name:
        return (
            ast.copy_location(ast.Name(self.new, node.ctx), node) if node.id == self.old else node
        )


def _is_docstring(statement: ast.stmt) -> bool:
    return isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant)


def split_check(test: str, entry_point: str) -> CheckTests:
    """HumanEval's ``test`` module -> the setup (everything but ``check``, source kept as
    written) and ``check``'s body statements with its argument renamed to ``entry_point``.

    Raises ValueError when ``test`` has no module-level ``check(candidate)``.
    """
    check = find_check(test)
    if check is None:
        raise ValueError(f"test defines no module-level {CHECK_FUNCTION}(candidate) function")
    # The setup keeps the author's text; only check's body is rewritten.
    setup = "".join(
        ast.get_source_segment(test, node, padded=True) + "\n"
        for node in ast.parse(test).body
        if not (isinstance(node, ast.FunctionDef) and node.name == CHECK_FUNCTION)
    )
    rename = _Rename(check.args.args[0].arg, entry_point)
    tests = [
        ast.unparse(ast.fix_missing_locations(rename.visit(statement)))
        for statement in check.body
        if not _is_docstring(statement)
    ]
    return CheckTests(setup=setup, tests=tests)


def _description(prompt: str, entry_point: str) -> str:
    """The entry point's docstring (HumanEval's task text), or the prompt without one."""
    for node in ast.parse(prompt).body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == entry_point:
            return ast.get_docstring(node) or prompt
    return prompt


def build_tasks(humaneval: pd.DataFrame, task_set: str = "humaneval") -> pd.DataFrame:
    """Validated HumanEval-schema rows -> task rows (``TASK_SET_COLUMNS``).

    ``task_id`` is the number ending the source id (int64, like MBPP's), ``source_task_id``
    the id as released, ``task_set`` the set's name; ``split`` is ``test`` for every row.
    Text is normalised to LF. Rows are ordered by ``task_id``.
    """
    rows = []
    for row in humaneval.itertuples(index=False):
        prompt = normalise_newlines(row.prompt)
        entry_point = row.entry_point.strip()
        check = split_check(normalise_newlines(row.test), entry_point)
        rows.append(
            {
                "task_id": numeric_task_id(row.task_id),
                "text": _description(prompt, entry_point),
                "gold_code": prompt + normalise_newlines(row.canonical_solution),
                "tests": check.tests,
                "test_setup_code": check.setup,
                "entry_point": entry_point,
                "prompt": prompt,
                "split": TEST_SPLIT,
                "task_set": task_set,
                "source_task_id": row.task_id,
            }
        )
    frame = pd.DataFrame(rows, columns=TASK_SET_COLUMNS).astype({"task_id": "int64"})
    return frame.sort_values("task_id", ignore_index=True)

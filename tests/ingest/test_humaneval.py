import ast

import pytest

from ilf_kedro.datasets import JSONLinesDataset
from ilf_kedro.execution import evaluate_programs
from ilf_kedro.ingest import humaneval
from ilf_kedro.ingest.validation import validate_humaneval

TEST = """

METADATA = {'author': 'jt'}


def check(candidate):
    \"\"\"A docstring that is not a test.\"\"\"
    import math
    assert candidate(1, 2) == 3
    for a in range(3):
        assert math.isclose(candidate(a, 0), a)
"""


def test_check_becomes_setup_and_one_test_per_statement():
    split = humaneval.split_check(TEST, "add")
    assert "METADATA = {'author': 'jt'}" in split.setup
    assert "def check" not in split.setup
    assert split.tests == [
        "import math",
        "assert add(1, 2) == 3",
        "for a in range(3):\n    assert math.isclose(add(a, 0), a)",
    ]


def test_a_test_without_check_is_refused():
    with pytest.raises(ValueError, match=r"no module-level check\(candidate\)"):
        humaneval.split_check("def test(candidate):\n    assert candidate()\n", "f")


def test_numeric_task_id():
    assert humaneval.numeric_task_id("HumanEval/17") == 17
    assert humaneval.numeric_task_id("Mine/no-number") is None


@pytest.fixture(scope="module")
def humaneval_tasks(humaneval_path):
    raw = JSONLinesDataset(filepath=str(humaneval_path)).load()
    return humaneval.build_tasks(validate_humaneval(raw))


def _call_equals(test: str) -> ast.Call | None:
    """The call of a test shaped `assert CALL == EXPECTED`, else None."""
    node = ast.parse(test).body[0]
    if not isinstance(node, ast.Assert) or not isinstance(node.test, ast.Compare):
        return None
    compare = node.test
    if len(compare.ops) == 1 and isinstance(compare.ops[0], ast.Eq):
        return compare.left if isinstance(compare.left, ast.Call) else None
    return None


def test_release_becomes_164_test_tasks_with_mbpp_shaped_asserts(humaneval_tasks):
    tasks = humaneval_tasks
    assert len(tasks) == 164 and tasks["task_id"].tolist() == list(range(164))
    assert tasks["source_task_id"].iloc[3] == "HumanEval/3"
    assert set(tasks["split"]) == {"test"} and set(tasks["task_set"]) == {"humaneval"}
    assert all(g.startswith(p) for g, p in zip(tasks["gold_code"], tasks["prompt"], strict=True))
    calls = [
        (_call_equals(test), row.entry_point) for row in tasks.itertuples() for test in row.tests
    ]
    shaped = [(call, entry) for call, entry in calls if call is not None]
    direct = [c for c, entry in shaped if isinstance(c.func, ast.Name) and c.func.id == entry]
    # ../shared/data/README.md: 1,091 asserts are `assert CALL == EXPECTED`; 1,087 of them
    # are statements of check's body and become tests of their own (4 sit in loops), and
    # 1,077 call the entry point directly (10 wrap it, as in `tuple(candidate(x))`).
    assert (len(shaped), len(direct)) == (1087, 1077)


def test_every_canonical_solution_passes_and_empty_bodies_fail(humaneval_tasks):
    tasks = humaneval_tasks
    gold = evaluate_programs(tasks.assign(program=tasks["gold_code"]), tasks, progress=False)
    assert gold["passed"].all(), gold.loc[~gold["passed"], ["task_id", "error_message"]]
    empty = tasks.assign(program=tasks["prompt"] + "    return None\n")
    verdicts = evaluate_programs(empty, tasks, progress=False)
    assert not verdicts["passed"].any()  # every check tests a return value

import pandas as pd
import pytest

from ilf_kedro.datasets import JSONLinesDataset
from ilf_kedro.ingest.task_sets import TaskSet, TaskSetError, build_set_tasks, parse_task_sets
from ilf_kedro.ingest.validation import DataValidationError
from tests.conftest import PROJECT_ROOT

HUMANEVAL_DEMO = PROJECT_ROOT / "data/01_raw/demo/humaneval_demo.jsonl"


def test_parse_accepts_a_list_or_a_space_separated_string():
    formats = {"humaneval": "humaneval", "mine": "mbpp"}
    sets = parse_task_sets("mbpp humaneval mine", formats, {"humaneval_raw", "mine_raw"})
    assert sets == [
        TaskSet("mbpp", "mbpp"),
        TaskSet("humaneval", "humaneval"),
        TaskSet("mine", "mbpp"),
    ]
    assert parse_task_sets(["mbpp"], None) == [TaskSet("mbpp", "mbpp")]


@pytest.mark.parametrize(
    ("names", "formats", "message"),
    [
        ([], {}, r"must be a list of set names that includes 'mbpp'"),
        (["humaneval"], {"humaneval": "humaneval"}, r"includes 'mbpp'"),
        (["mbpp", "mbpp"], {}, r"'mbpp' is listed twice"),
        (["mbpp", "Mine-1"], {}, r"'Mine-1' is not a lowercase identifier"),
        (["mbpp", "mine"], {}, r"task_set_formats.mine is None; allowed: mbpp, humaneval"),
        (["mbpp", "mine"], {"mine": "jsonl"}, r"task_set_formats.mine is 'jsonl'"),
        (["mbpp", "humaneval"], {"humaneval": "humaneval"}, r"no catalog entry 'humaneval_raw'"),
    ],
)
def test_parse_names_the_parameter_at_fault(names, formats, message):
    with pytest.raises(TaskSetError, match=message):
        parse_task_sets(names, formats, catalog_entries=set())


def test_demo_humaneval_set_becomes_test_tasks_whose_gold_passes():
    from ilf_kedro.execution import evaluate_programs

    raw = JSONLinesDataset(filepath=str(HUMANEVAL_DEMO)).load()
    tasks = build_set_tasks(raw, TaskSet("humaneval", "humaneval"))
    assert len(tasks) >= 5 and set(tasks["split"]) == {"test"}
    verdicts = evaluate_programs(tasks.assign(program=tasks["gold_code"]), tasks, progress=False)
    assert verdicts["passed"].all()
    # HumanEval's official harness compares exactly, MBPP's scripts with a tolerance
    assert set(tasks["equality"]) == {"exact"}


def test_mbpp_schema_set_keeps_every_row_as_a_test_task():
    raw = pd.DataFrame(
        {
            "task_id": [7, 900],
            "text": ["Add one.", "Double."],
            "code": ["def inc(x):\n    return x + 1", "def dbl(x):\n    return 2 * x"],
            "test_list": [["assert inc(1) == 2"], ["assert dbl(2) == 4"]],
            "test_setup_code": ["", ""],
        }
    )
    tasks = build_set_tasks(raw, TaskSet("mine", "mbpp"))
    assert tasks["split"].tolist() == ["test", "test"]
    assert tasks["source_task_id"].tolist() == ["7", "900"]
    assert set(tasks["task_set"]) == {"mine"}
    assert set(tasks["equality"]) == {"tolerant"}


def test_a_malformed_row_names_the_set_row_and_column():
    raw = JSONLinesDataset(filepath=str(HUMANEVAL_DEMO)).load()
    raw.loc[2, "test"] = "def verify(candidate):\n    assert candidate('a') == 'a'\n"
    with pytest.raises(
        DataValidationError,
        match=r"extra_raw: column 'test': must be Python source defining check\(candidate\) "
        r"\(task_id HumanEvalDemo/2\)",
    ):
        build_set_tasks(raw, TaskSet("extra", "humaneval"))

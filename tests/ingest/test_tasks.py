import pandas as pd

from ilf_kedro.ingest.tasks import TASK_COLUMNS, UNASSIGNED, assign_split, build_tasks, select_split
from tests.conftest import PAPER_SPLITS


def test_all_974_mbpp_tasks_get_a_prompt_and_the_papers_split_sizes(mbpp_tasks):
    assert list(mbpp_tasks.columns) == TASK_COLUMNS
    assert len(mbpp_tasks) == 974
    assert mbpp_tasks["split"].value_counts().to_dict() == {
        "prompt": 10,
        "test": 100,
        "refine": 200,
        "train": 664,
    }
    assert not mbpp_tasks["gold_code"].str.contains("\r").any()
    assert (mbpp_tasks["tests"].map(len) == 3).all()


def test_193_of_195_released_prompts_match_character_for_character(mbpp_tasks, annotations_raw):
    ours = mbpp_tasks.set_index("task_id")["prompt"]
    differing = sorted(
        int(row.task_id) for row in annotations_raw.itertuples() if ours[row.task_id] != row.prompt
    )
    # 260 and 679 differ only by mojibake in the released file.
    assert differing == [260, 679]


def test_split_assignment_and_unassigned_ids():
    assert assign_split(1, PAPER_SPLITS) == "prompt"
    assert assign_split(110, PAPER_SPLITS) == "test"
    assert assign_split(311, PAPER_SPLITS) == "train"
    assert assign_split(975, PAPER_SPLITS) == UNASSIGNED


def test_tasks_whose_prompt_cannot_be_built_go_to_prompt_errors():
    raw = pd.DataFrame(
        {
            "task_id": [1, 2],
            "text": ["ok", "bad"],
            "code": ["def f(x):\r\n    return x", "g = lambda x: x"],
            "test_list": [["assert f(1) == 1"], ["assert g(1) == 1"]],
            "test_setup_code": ["", ""],
        }
    )
    tasks, errors = build_tasks(raw, PAPER_SPLITS)
    assert tasks["task_id"].tolist() == [1]
    assert errors["task_id"].tolist() == [2]
    assert "none of which the gold program defines" in errors.loc[0, "reason"]


def test_select_split_limits_tasks(mbpp_tasks):
    assert select_split(mbpp_tasks, "test", 5)["task_id"].tolist() == [11, 12, 13, 14, 15]
    assert len(select_split(mbpp_tasks, "refine", None)) == 200

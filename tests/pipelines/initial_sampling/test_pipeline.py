"""initial_sampling: alone it samples its splits; inside ilf, for human feedback, only the
split whose passing samples RFT trains on."""

import pandas as pd
import pytest

from ilf_kedro.pipelines.initial_sampling import create_pipeline
from ilf_kedro.pipelines.initial_sampling.nodes import select_tasks_to_sample

TASKS = pd.DataFrame(
    {
        "task_id": [111, 112, 311, 312, 11],
        "split": ["refine", "refine", "train", "train", "test"],
        "prompt": ["p"] * 5,
    }
)


def test_alone_it_selects_always_and_queues_for_label_studio():
    names = {node.name for node in create_pipeline().nodes}
    assert {"select_initial_sampling_tasks", "build_annotation_tasks"} <= names
    gated = {node.name for node in create_pipeline(inside_ilf=True).nodes}
    assert "select_tasks_to_sample" in gated and "select_initial_sampling_tasks" not in gated


@pytest.mark.parametrize(
    ("source", "expected"),
    [("interpreter", [111, 112, 311, 312]), ("llm", [111, 112, 311, 312]), ("human", [311, 312])],
)
def test_automatic_sources_sample_their_splits_and_every_source_rfts(source, expected):
    chosen = select_tasks_to_sample(TASKS, ["refine", "train"], None, source, "train")
    assert chosen["task_id"].tolist() == expected
    assert list(chosen.columns) == ["task_id", "split", "prompt"]


def test_rfts_split_is_sampled_even_when_the_feedback_splits_leave_it_out():
    chosen = select_tasks_to_sample(TASKS, ["refine"], 1, "interpreter", "train")
    assert chosen["task_id"].tolist() == [111, 311]

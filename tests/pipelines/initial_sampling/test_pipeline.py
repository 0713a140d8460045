"""initial_sampling: alone it always samples; inside ilf only for automatic feedback."""

import pandas as pd
import pytest

from ilf_kedro.pipelines.initial_sampling import create_pipeline
from ilf_kedro.pipelines.initial_sampling.nodes import select_tasks_for_feedback

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
    gated = {node.name for node in create_pipeline(only_for_automatic_feedback=True).nodes}
    assert "select_tasks_needing_feedback" in gated and "select_initial_sampling_tasks" not in gated


@pytest.mark.parametrize(("source", "expected"), [("interpreter", 4), ("llm", 4), ("human", 0)])
def test_only_automatic_sources_sample_the_base_model(source, expected):
    chosen = select_tasks_for_feedback(TASKS, ["refine", "train"], None, source)
    assert len(chosen) == expected
    assert list(chosen.columns) == ["task_id", "split", "prompt"]

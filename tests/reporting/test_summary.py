"""ilf_kedro.reporting.summary: the plain-text run summary."""

from __future__ import annotations

import pandas as pd

from ilf_kedro.reporting import summary


def test_run_summary_counts_each_stage(eval_metrics):
    tasks = pd.DataFrame({"task_id": [1, 2, 3, 4], "split": ["test", "test", "train", "train"]})
    annotations = pd.DataFrame({"task_id": [3, 4], "split": ["train", "train"]})
    refinements = pd.DataFrame({"task_id": [3, 3, 4, 4]})
    passing = pd.DataFrame({"task_id": [3]})
    training = pd.DataFrame({"task_id": [3]})
    text = summary.run_summary(tasks, annotations, refinements, passing, training, eval_metrics)
    assert "tasks:                     4 (test 2, train 2)" in text
    assert "refinements generated:     4 for 2 task(s)" in text
    assert "refinements passing:       1 for 1 task(s)" in text
    assert "ILF training set size:     1" in text
    assert "ILF:" in text and "pass@1 37.5%" in text
    assert "pass@1 minus zero-shot, points: ILF +12.5, MBPP gold -5.0," in text
    assert "RANDOM" in text

"""Nodes of initial_sampling: which tasks zero-shot pi_theta fails (paper Table 1)."""

from __future__ import annotations

import pandas as pd

from ilf_kedro import training_sets


def find_failing_tasks(task_pass_stats: pd.DataFrame, tasks: pd.DataFrame) -> pd.DataFrame:
    """Tasks with no correct sample -> ``failing_tasks`` (task_id, n, split, prompt)."""
    return training_sets.failing_tasks(task_pass_stats, tasks)


def build_annotation_queue(
    failing_tasks: pd.DataFrame, initial_sample_results: pd.DataFrame, seed: int
) -> pd.DataFrame:
    """One failing program per failing task, in the annotation schema with empty feedback."""
    return training_sets.annotation_queue(failing_tasks, initial_sample_results, seed)

"""Nodes of initial_sampling: which tasks zero-shot pi_theta fails (paper Table 1)."""

from __future__ import annotations

import pandas as pd

from ilf_kedro import label_studio, training_sets


def find_failing_tasks(task_pass_stats: pd.DataFrame, tasks: pd.DataFrame) -> pd.DataFrame:
    """Tasks with no correct sample -> ``failing_tasks`` (task_id, n, split, prompt)."""
    return training_sets.failing_tasks(task_pass_stats, tasks)


def build_annotation_queue(
    failing_tasks: pd.DataFrame, initial_sample_results: pd.DataFrame, seed: int
) -> pd.DataFrame:
    """One failing program per failing task, in the annotation schema with empty feedback."""
    return training_sets.annotation_queue(failing_tasks, initial_sample_results, seed)


def build_annotation_tasks(
    annotation_queue: pd.DataFrame,
    initial_sample_results: pd.DataFrame,
    tasks: pd.DataFrame,
    labeling_config: str,
) -> list[dict]:
    """``annotation_queue`` -> ``annotation_tasks``, a Label Studio JSON import: per failing
    program the task prompt, the program, its verdict and the task's asserts, for the
    project whose ``labeling_config`` (checked here against the task fields) is in conf."""
    label_studio.check_labeling_config(labeling_config, "labeling_config")
    return label_studio.build_import_tasks(annotation_queue, initial_sample_results, tasks)

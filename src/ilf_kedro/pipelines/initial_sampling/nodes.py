"""Nodes of initial_sampling: which tasks zero-shot pi_theta fails (paper Table 1)."""

from __future__ import annotations

import pandas as pd

from ilf_kedro import label_studio
from ilf_kedro.ilf import training_sets
from ilf_kedro.parameters import AUTOMATIC_SOURCES
from ilf_kedro.pipelines.stage_nodes import select_tasks


def select_tasks_to_sample(
    tasks: pd.DataFrame,
    splits: list[str],
    max_tasks_per_split,
    feedback_source: str,
    rft_split: str,
) -> pd.DataFrame:
    """The tasks zero-shot pi_theta samples inside ``ilf``: those of ``rft_split``, whose
    passing samples RFT trains on, and, when the feedback source is automatic
    (interpreter, llm), those of ``splits``, whose failures get its feedback (human
    feedback comes with its own programs)."""
    wanted = list(splits) if feedback_source in AUTOMATIC_SOURCES else []
    if rft_split not in wanted:
        wanted.append(rft_split)
    return select_tasks(tasks, wanted, max_tasks_per_split)


def find_failing_tasks(task_pass_stats: pd.DataFrame, tasks: pd.DataFrame) -> pd.DataFrame:
    """Tasks with no correct sample -> ``failing_tasks`` (task_id, n, split, prompt)."""
    return training_sets.failing_tasks(task_pass_stats, tasks)


def pick_failing_programs(
    failing_tasks: pd.DataFrame, initial_sample_results: pd.DataFrame, seed: int
) -> pd.DataFrame:
    """One failing program per failing task, with its test verdict -> ``failing_programs``."""
    return training_sets.failing_programs(failing_tasks, initial_sample_results, seed)


def build_annotation_queue(failing_programs: pd.DataFrame) -> pd.DataFrame:
    """Failing programs in the released annotation schema with empty feedback, for people
    to annotate -> ``annotation_queue``."""
    return training_sets.annotation_queue(failing_programs)


def build_annotation_tasks(
    annotation_queue: pd.DataFrame,
    failing_programs: pd.DataFrame,
    tasks: pd.DataFrame,
    labeling_config: str,
) -> list[dict]:
    """``annotation_queue`` -> ``annotation_tasks``, a Label Studio JSON import: per queued
    program the task prompt, the program, its verdict (from ``failing_programs``) and the
    task's asserts, for a project with ``labeling_config`` (checked against the fields)."""
    label_studio.check_labeling_config(labeling_config, "labeling_config")
    return label_studio.build_import_tasks(annotation_queue, failing_programs, tasks)

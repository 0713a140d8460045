"""Nodes of the data_processing pipeline: thin wrappers over the library modules."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

from ilf_kedro.execution import time_limits_node
from ilf_kedro.feedback import sources
from ilf_kedro.ingest import tasks, validation
from ilf_kedro.parameters import HUMAN_SOURCES, Annotations, Execution


def build_tasks(mbpp_raw: pd.DataFrame, splits: dict) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Validate MBPP-schema rows; return ``tasks`` (prompt, entry point, split) and
    ``prompt_errors`` (tasks whose prompt cannot be built, with the reason)."""
    return tasks.build_tasks(validation.validate_mbpp(mbpp_raw), splits)


def build_human_feedback_annotations(
    load_ilf_annotations_raw: Callable[[], pd.DataFrame],
    mbpp_raw: pd.DataFrame,
    tasks_table: pd.DataFrame,
    params: Annotations,
    feedback_source: str,
) -> pd.DataFrame:
    """Released-schema annotations (read only when ``feedback_source`` uses them: human,
    unrelated), validated against the raw task ids and filtered as in the paper ->
    ``human_feedback_annotations``; empty, and never read, for automatic sources."""
    if feedback_source not in HUMAN_SOURCES:
        return sources.empty_annotations()
    raw = validation.validate_annotations(load_ilf_annotations_raw(), mbpp_raw["task_id"])
    return sources.normalise_annotations(
        raw,
        tasks_table,
        max_edit_distance=params.max_edit_distance,
        seed=params.seed,
    )


def calibrate_time_limits(tasks_table: pd.DataFrame, execution: Execution) -> pd.DataFrame:
    """``task_time_limits``: per task, the wall-clock limit behind every verdict
    (``time_limit_s``) and the gold program's run time it was derived from
    (``gold_duration_s``), timed in the sandbox itself."""
    return time_limits_node(tasks_table, execution)

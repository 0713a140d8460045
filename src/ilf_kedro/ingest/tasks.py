"""The task table: MBPP-schema tasks with the paper's prompt, entry point and split."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import pandas as pd

from ilf_kedro.ilf.prompts import PromptError, build_code_prompt, normalise_newlines

logger = logging.getLogger(__name__)

TASK_COLUMNS = [
    "task_id",
    "text",
    "gold_code",
    "tests",
    "test_setup_code",
    "entry_point",
    "prompt",
    "split",
]
PROMPT_ERROR_COLUMNS = ["task_id", "text", "first_test", "reason"]
UNASSIGNED = "unassigned"


def assign_split(task_id: int, splits: Mapping[str, Sequence[int]]) -> str:
    """Name of the split whose inclusive ``[first, last]`` id range holds ``task_id``."""
    for name, (first, last) in splits.items():
        if first <= task_id <= last:
            return name
    return UNASSIGNED


def build_tasks(
    mbpp: pd.DataFrame, splits: Mapping[str, Sequence[int]]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Turn validated MBPP-schema rows into ``(tasks, prompt_errors)``.

    ``tasks`` has one row per task whose prompt could be built (columns ``TASK_COLUMNS``,
    text normalised to LF); ``prompt_errors`` has the others with the reason, so one odd
    task never stops a run.
    """
    tasks, errors = [], []
    for row in mbpp.itertuples(index=False):
        tests = [normalise_newlines(t) for t in row.test_list]
        try:
            prompt, entry_point = build_code_prompt(row.text, row.code, tests[0])
        except PromptError as err:
            errors.append((row.task_id, row.text, tests[0], str(err)))
            continue
        tasks.append(
            (
                row.task_id,
                normalise_newlines(row.text),
                normalise_newlines(row.code),
                tests,
                normalise_newlines(row.test_setup_code),
                entry_point,
                prompt,
                assign_split(row.task_id, splits),
            )
        )
    if errors:
        logger.warning("%d task(s) have no prompt; see the prompt_errors dataset", len(errors))
    unassigned = sum(t[-1] == UNASSIGNED for t in tasks)
    if unassigned:
        logger.warning("%d task(s) fall outside every configured split range", unassigned)
    task_frame = pd.DataFrame(tasks, columns=TASK_COLUMNS).astype({"task_id": "int64"})
    error_frame = pd.DataFrame(errors, columns=PROMPT_ERROR_COLUMNS).astype({"task_id": "int64"})
    return task_frame.sort_values("task_id", ignore_index=True), error_frame


def select_split(tasks: pd.DataFrame, split: str, max_tasks: int | None = None) -> pd.DataFrame:
    """The tasks of one split in id order, the first ``max_tasks`` of them if set."""
    chosen = tasks[tasks["split"] == split].sort_values("task_id", ignore_index=True)
    return chosen if max_tasks is None else chosen.head(int(max_tasks))

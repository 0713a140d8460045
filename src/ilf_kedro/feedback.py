"""Feedback annotations: the paper's filters and summary statistics.

Input is the released ILF schema (``Feedback``, ``original_model_completion``,
``unedited_annotator_completion``, ``passed``); output is the project's own schema.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from rapidfuzz.distance import Levenshtein

from ilf_kedro.prompts import normalise_newlines, strip_refinement_marker

logger = logging.getLogger(__name__)

ANNOTATION_COLUMNS = [
    "task_id",
    "split",
    "incorrect_program",
    "feedback",
    "refinement",
    "feedback_source",
    "edit_distance",
]


def _text(value) -> str:
    return "" if value is None or (isinstance(value, float) and np.isnan(value)) else str(value)


def edit_distance(refinement: str, original: str) -> float:
    """Levenshtein distance normalised by the longer program (0 same, 1 nothing shared)."""
    return Levenshtein.normalized_distance(refinement, original)


def normalise_annotations(
    raw: pd.DataFrame,
    tasks: pd.DataFrame,
    *,
    max_edit_distance: float | None,
    seed: int,
    feedback_source: str = "human",
) -> pd.DataFrame:
    """Apply the paper's annotation filters and return ``ANNOTATION_COLUMNS``.

    Kept: non-empty feedback and refinement (after stripping a ``Refinement:`` label),
    recorded as passing, edit distance below ``max_edit_distance`` (None: no limit), for a
    task in ``tasks``; one annotation per task, chosen at random with ``seed``.
    """
    split_of = dict(zip(tasks["task_id"], tasks["split"], strict=True))
    frame = pd.DataFrame(
        {
            "task_id": raw["task_id"].astype("int64"),
            "incorrect_program": raw["original_model_completion"].map(_text),
            "feedback": raw["Feedback"].map(_text),
            "refinement": raw["unedited_annotator_completion"].map(_text),
            "passed": raw["passed"].astype(bool),
        }
    )
    for column in ("incorrect_program", "feedback", "refinement"):
        frame[column] = frame[column].map(normalise_newlines)
    frame["refinement"] = frame["refinement"].map(strip_refinement_marker)
    frame["edit_distance"] = [
        edit_distance(r, o)
        for r, o in zip(frame["refinement"], frame["incorrect_program"], strict=True)
    ]
    keep = {
        "non-empty feedback": frame["feedback"].str.strip() != "",
        "non-empty refinement": frame["refinement"].str.strip() != "",
        "recorded as passing": frame["passed"],
        "task has a prompt": frame["task_id"].isin(split_of),
    }
    if max_edit_distance is not None:
        keep[f"edit distance < {max_edit_distance}"] = frame["edit_distance"] < max_edit_distance
    mask = pd.Series(True, index=frame.index)
    for reason, passes in keep.items():
        dropped = mask & ~passes
        if dropped.any():
            logger.info(
                "dropped %d annotation(s) failing '%s': task_id %s",
                dropped.sum(),
                reason,
                frame.loc[dropped, "task_id"].tolist(),
            )
        mask &= passes
    frame = frame[mask]
    # One per task: shuffle with the seed, then keep each task's first row.
    frame = frame.sample(frac=1.0, random_state=seed).drop_duplicates("task_id")
    frame = frame.sort_values("task_id", ignore_index=True)
    frame["split"] = frame["task_id"].map(split_of)
    frame["feedback_source"] = feedback_source
    return frame[ANNOTATION_COLUMNS]


def feedback_words(feedback: pd.Series) -> pd.Series:
    """Number of whitespace-separated words in each feedback text."""
    return feedback.str.split().str.len().fillna(0).astype("int64")


def annotation_stats(annotations: pd.DataFrame) -> pd.DataFrame:
    """Annotations per split and feedback length in words (mean, population std), plus ``all``."""
    words = annotations.assign(words=feedback_words(annotations["feedback"]))
    groups = [(split, part) for split, part in words.groupby("split", sort=True)]
    groups.append(("all", words))
    return pd.DataFrame(
        [
            {
                "split": split,
                "annotations": len(part),
                "feedback_words_mean": float(part["words"].mean()) if len(part) else np.nan,
                "feedback_words_std": float(part["words"].std(ddof=0)) if len(part) else np.nan,
            }
            for split, part in groups
        ]
    )

"""How far a refinement moved from the failing program (normalised edit distance) and how
long feedback is (words per text, per split): the paper's annotation statistics."""

from __future__ import annotations

import numpy as np
import pandas as pd
from rapidfuzz.distance import Levenshtein


def edit_distance(refinement: str, original: str) -> float:
    """Levenshtein distance normalised by the longer program (0 same, 1 nothing shared)."""
    return Levenshtein.normalized_distance(refinement, original)


def with_edit_distance(annotations: pd.DataFrame) -> pd.DataFrame:
    """``annotations`` with ``edit_distance`` (refinement vs incorrect program) filled in."""
    return annotations.assign(
        edit_distance=[
            edit_distance(r, o) if r else np.nan
            for r, o in zip(
                annotations["refinement"], annotations["incorrect_program"], strict=True
            )
        ]
    )


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

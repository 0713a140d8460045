"""Nodes of refiner_training: human refinements that pass -> pi_Refine."""

from __future__ import annotations

import pandas as pd

from ilf_kedro import training_sets
from ilf_kedro.models import ModelBundle, truncate_to_tokens


def build_refiner_training_set(
    annotation_results: pd.DataFrame,
    tasks: pd.DataFrame,
    base_model: ModelBundle,
    max_old_code_tokens: int,
    max_seq_length: int,
) -> pd.DataFrame:
    """Annotations whose refinement passes the tests -> Figure 2 prompt / refined program
    pairs, the old code cut to ``max_old_code_tokens`` tokens and to fit
    ``max_seq_length``."""
    tokenizer = base_model.tokenizer
    return training_sets.refiner_training_pairs(
        annotation_results[annotation_results["passed"]],
        tasks,
        count_tokens=lambda text: len(tokenizer(text, add_special_tokens=False)["input_ids"]),
        truncate_tokens=lambda text, n: truncate_to_tokens(tokenizer, text, n, side="right"),
        max_old_code_tokens=max_old_code_tokens,
        max_seq_length=max_seq_length,
    )

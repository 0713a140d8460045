"""Nodes of refiner_training: refine-split annotations whose refinement passes -> pi_Refine."""

from __future__ import annotations

import logging

import pandas as pd

from ilf_kedro.ilf import training_sets
from ilf_kedro.ingest import tasks
from ilf_kedro.models import ModelBundle, truncate_to_tokens
from ilf_kedro.parameters import Compute, Finetune, Refiner
from ilf_kedro.pipelines.stage_nodes import train_model

logger = logging.getLogger(__name__)


def select_refiner_examples(
    feedback_annotations: pd.DataFrame, split: str, max_tasks_per_split
) -> pd.DataFrame:
    """The annotations of ``split`` (at most ``max_tasks_per_split``; null for all) whose
    refinement passes the tests -> ``refiner_examples``, what pi_Refine learns from."""
    chosen = tasks.select_split(feedback_annotations, split, max_tasks_per_split)
    return chosen[chosen["refinement_passed"]].reset_index(drop=True)


def build_refiner_training_set(
    refiner_examples: pd.DataFrame,
    tasks_table: pd.DataFrame,
    base_model: ModelBundle,
    max_old_code_tokens: int,
    max_seq_length: int,
) -> pd.DataFrame:
    """Refiner examples -> Figure 2 prompt / refined program pairs, the old code cut to
    ``max_old_code_tokens`` tokens and to fit ``max_seq_length``."""
    tokenizer = base_model.tokenizer
    return training_sets.refiner_training_pairs(
        refiner_examples,
        tasks_table,
        count_tokens=lambda text: len(tokenizer(text, add_special_tokens=False)["input_ids"]),
        truncate_tokens=lambda text, n: truncate_to_tokens(tokenizer, text, n, side="right"),
        max_old_code_tokens=max_old_code_tokens,
        max_seq_length=max_seq_length,
    )


def train_refiner(
    base_model: ModelBundle,
    refiner_training_set: pd.DataFrame,
    finetune_params: Finetune,
    refiner: Refiner,
    compute: Compute,
) -> ModelBundle:
    """pi_Refine: ``finetuned`` -> the base model fine-tuned on ``refiner_training_set``;
    ``few_shot`` -> the base model untouched (its examples go into each prompt)."""
    if refiner.kind == "finetuned":
        model = train_model(base_model, refiner_training_set, finetune_params, compute)
    else:
        logger.info("refiner.kind few_shot: pi_Refine is %s, not trained", refiner.describe())
        info = {**base_model.info, "untrained_reason": "few-shot refiner: no training"}
        model = ModelBundle(base_model.model, base_model.tokenizer, info)
    model.info["refiner"] = refiner.describe()
    return model

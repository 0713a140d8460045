"""Nodes of refinement: pi_Refine rewrites annotated programs (paper Table 3)."""

from __future__ import annotations

import pandas as pd

from ilf_kedro import training_sets
from ilf_kedro.models import ModelBundle, sample_programs, truncate_to_tokens


def build_refinement_prompts(
    annotations: pd.DataFrame,
    tasks: pd.DataFrame,
    refiner_model: ModelBundle,
    max_old_code_tokens: int,
) -> pd.DataFrame:
    """Annotations -> Figure 2 prompts (old code cut to ``max_old_code_tokens`` tokens of
    pi_Refine's tokenizer), with the task prompt the refinement will start with."""
    tokenizer = refiner_model.tokenizer
    return training_sets.refinement_prompts(
        annotations,
        tasks,
        truncate_old_code=lambda code: truncate_to_tokens(
            tokenizer, code, max_old_code_tokens, side="right"
        ),
    )


def generate_refinements(
    refiner_model: ModelBundle, refinement_prompts: pd.DataFrame, sampling: dict
) -> pd.DataFrame:
    """``num_samples`` refinements per prompt; ``program`` is the task prompt plus what
    pi_Refine wrote after it, i.e. the refined program that the tests judge."""
    samples = sample_programs(refiner_model, refinement_prompts, **sampling)
    samples["program"] = samples["task_prompt"] + samples["completion"]
    return samples.drop(columns="task_prompt")


def select_passing_refinements(refinement_results: pd.DataFrame) -> pd.DataFrame:
    """Refinements that pass every test -> ``passing_refinements``."""
    return training_sets.passing_refinements(refinement_results)


def build_ilf_training_set(
    passing_refinements: pd.DataFrame, tasks: pd.DataFrame, seed: int
) -> pd.DataFrame:
    """One random passing refinement per task -> (code-generation prompt, body) pairs."""
    return training_sets.ilf_training_set(passing_refinements, tasks, seed)

"""Nodes of model_registry: a run's pi_theta* and pi_Refine with the settings that made
its programs, as MLflow models (``ilf_kedro.tracking.pyfunc``); their catalog entries
(``MlflowRegisteredModelDataset``) log and register them."""

from __future__ import annotations

import pandas as pd

from ilf_kedro.ilf import training_sets
from ilf_kedro.models import ModelBundle
from ilf_kedro.parameters import Execution, Model, Refiner, Sampling
from ilf_kedro.tracking.pyfunc import PI_REFINE, PI_THETA_STAR, PackagedModel, digest, package


def package_ilf_model(
    ilf_model: ModelBundle,
    ilf_training_set: pd.DataFrame,
    sampling: Sampling,
    execution: Execution,
    model: Model,
    seed: int,
    base_model: str,
) -> PackagedModel:
    """pi_theta* with the evaluation's sampling and the harness's settings, tagged with
    the seed, base model and a digest of the training set it was fine-tuned on."""
    tags = {"seed": seed, "base_model": base_model, "training_set_digest": digest(ilf_training_set)}
    return package(PI_THETA_STAR, ilf_model, sampling, execution, model, tags=tags)


def package_refiner_model(
    refiner_model: ModelBundle,
    refiner_training_set: pd.DataFrame,
    sampling: Sampling,
    execution: Execution,
    model: Model,
    refiner: Refiner,
    max_old_code_tokens: int,
    seed: int,
    base_model: str,
) -> PackagedModel:
    """pi_Refine with the refinement stage's prompt settings (the old code's token cut, a
    few-shot refiner's worked examples), sampling and harness settings, tagged like
    pi_theta*."""
    prefix = ""
    if refiner.kind == "few_shot":  # the same examples build_refinement_prompts puts first
        prefix = training_sets.few_shot_prefix(refiner_training_set, refiner.shots, seed)
    tags = {
        "seed": seed,
        "base_model": base_model,
        "refiner": refiner.describe(),
        "training_set_digest": digest(refiner_training_set),
    }
    return package(
        PI_REFINE,
        refiner_model,
        sampling,
        execution,
        model,
        tags=tags,
        max_old_code_tokens=max_old_code_tokens,
        prefix=prefix,
    )

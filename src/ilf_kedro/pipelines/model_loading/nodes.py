"""Load the base model pi_theta that every stage starts from, after checking that the run's
GPU stages fit the devices."""

from __future__ import annotations

import logging

import pandas as pd

from ilf_kedro.models import ModelBundle, load_model
from ilf_kedro.models.memory_plan import plan_run
from ilf_kedro.parameters import Finetune, MemoryPlan, Model, Sampling

logger = logging.getLogger(__name__)


def plan_memory(
    base_model: str,
    model: Model,
    sampling: Sampling,
    finetune: Finetune,
    memory_plan: MemoryPlan,
    *after,
) -> pd.DataFrame:
    """The memory each GPU stage needs per device, from the model's configuration alone
    (no weights), against the devices' memory -> ``memory_plan`` (one row per stage).

    Raises ``MemoryPlanError`` with the numbers and the settings that would fit when a
    stage does not fit, so the run stops before any weights load. ``after``: datasets of
    the run's input pipelines, taken only so that this node runs once they (the base
    model) exist."""
    del after
    plan = plan_run(base_model, model, sampling, finetune, memory_plan)
    for stage in plan.stages:
        logger.info("Memory plan: %s", stage.describe())
    plan.check()
    return plan.to_frame()


def load_base_model(base_model: str, model: Model, memory_plan: pd.DataFrame) -> ModelBundle:
    """``base_model`` (a Hugging Face id, a local directory or ``tiny-random``) with the
    ``model`` parameters (device, dtype, tiny config) -> a loaded ``ModelBundle``.

    ``memory_plan`` is the checked plan: taking it makes this node run after the check."""
    del memory_plan
    return load_model(
        base_model,
        device=model.device,
        dtype=model.dtype,
        tiny_config=model.tiny_config,
        seed=model.seed,
    )

"""Load the base model pi_theta that every stage starts from, after checking that the run's
GPU stages fit the devices."""

from __future__ import annotations

import logging

import pandas as pd

from ilf_kedro.models import ModelBundle, load_model
from ilf_kedro.models.finetune import check_strategy
from ilf_kedro.models.memory_plan import plan_run

logger = logging.getLogger(__name__)


def plan_memory(
    base_model: str, model: dict, sampling: dict, finetune: dict, memory_plan: dict, *after
) -> pd.DataFrame:
    """The memory each GPU stage needs per device, from the model's configuration alone
    (no weights), against the devices' memory -> ``memory_plan`` (one row per stage).

    Raises ``ValueError`` naming a bad ``finetune`` strategy parameter, and
    ``MemoryPlanError`` with the numbers and the settings that would fit when a stage does
    not fit, so the run stops before any weights load."""
    check_strategy(
        finetune.get("strategy", "full"),
        finetune.get("lora"),
        finetune.get("num_processes", 1),
        finetune.get("distributed", "auto"),
    )
    plan = plan_run(base_model, model, sampling, finetune, memory_plan)
    for stage in plan.stages:
        logger.info("Memory plan: %s", stage.describe())
    plan.check()
    return plan.to_frame()


def load_base_model(base_model: str, model: dict, memory_plan: pd.DataFrame) -> ModelBundle:
    """``base_model`` (a Hugging Face id, a local directory or ``tiny-random``) with the
    ``model`` parameters (device, dtype, tiny config) -> a loaded ``ModelBundle``.

    ``memory_plan`` is the checked plan: taking it makes this node run after the check."""
    del memory_plan
    return load_model(
        base_model,
        device=model.get("device", "auto"),
        dtype=model.get("dtype", "auto"),
        tiny_config=model.get("tiny_config"),
        seed=model.get("seed", 0),
    )

"""Load the base model pi_theta that every stage starts from."""

from __future__ import annotations

from ilf_kedro.models import ModelBundle, load_model


def load_base_model(base_model: str, model: dict) -> ModelBundle:
    """``base_model`` (a Hugging Face id, a local directory or ``tiny-random``) with the
    ``model`` parameters (device, dtype, tiny config) -> a loaded ``ModelBundle``."""
    return load_model(
        base_model,
        device=model.get("device", "auto"),
        dtype=model.get("dtype", "auto"),
        tiny_config=model.get("tiny_config"),
        seed=model.get("seed", 0),
    )

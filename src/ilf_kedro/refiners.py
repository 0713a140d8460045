"""pi_Refine's variants (``refiner.kind``): fine-tuned on the refine split (the paper's ILF)
or few-shot (no training: worked Figure 2 examples before each query), run by a local
model or through an OpenAI-compatible endpoint. Plain Python, no Kedro."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ilf_kedro.endpoints import check_endpoint_params

KINDS = ("finetuned", "few_shot")


def check_refiner(params: Mapping[str, Any], where: str = "refiner") -> Mapping[str, Any]:
    """``params`` if they describe a valid refiner, else an error naming the parameter."""
    kind = params.get("kind")
    if kind not in KINDS:
        raise ValueError(f"parameter {where}.kind is {kind!r}; allowed: {', '.join(KINDS)}")
    endpoint = params.get("endpoint")
    if kind == "few_shot":
        shots = params.get("shots")
        if not isinstance(shots, int) or isinstance(shots, bool) or shots < 1:
            raise ValueError(f"parameter {where}.shots is {shots!r}; allowed: an integer >= 1")
    elif endpoint is not None:
        raise ValueError(
            f"parameter {where}.endpoint is set but {where}.kind is finetuned: a fine-tuned "
            "pi_Refine runs locally; use kind few_shot for a refiner behind an endpoint"
        )
    if endpoint is not None:
        check_endpoint_params(endpoint, f"{where}.endpoint")
    return params


def describe(params: Mapping[str, Any]) -> str:
    """A short label: ``fine-tuned pi_Refine``, ``2-shot base model``, ``1-shot gpt-x``."""
    if params["kind"] == "finetuned":
        return "fine-tuned pi_Refine"
    who = (params.get("endpoint") or {}).get("model") or "base model"
    return f"{params['shots']}-shot {who}"

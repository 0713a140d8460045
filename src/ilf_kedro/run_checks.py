"""Checks of the run's parameters that must fail before any node runs (so before any
model loads), each naming the parameter and what is allowed. Plain Python, no Kedro: the
project's hook calls :func:`check_parameters` when a run starts."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ilf_kedro import feedback, refiners
from ilf_kedro.endpoints import check_endpoint_params
from ilf_kedro.parameters import validate_parameters


def check_parameters(params: Mapping[str, Any], rounds: bool = False) -> None:
    """The schema (keys, types, ranges), then what it cannot say: the LLM endpoint and
    templates, refiners' endpoints and shots; with ``rounds`` (an ``ilf_rounds`` run)
    also that the feedback source is automatic."""
    validate_parameters(params)  # from here on every key is there, of the right type
    settings = params["feedback"]
    source = settings["source"]
    if rounds and source not in feedback.AUTOMATIC_SOURCES:
        raise ValueError(
            f"parameter feedback.source is {source!r}, but ilf_rounds gives each round "
            f"feedback on its own model's failures; allowed: "
            f"{', '.join(feedback.AUTOMATIC_SOURCES)} (for new human feedback, see README "
            "'Collect feedback on your model')"
        )
    if source == "llm":
        llm = settings["llm"]
        check_endpoint_params(llm, "feedback.llm")
        # The feedback is not written yet when its own prompt is filled in.
        before_feedback = tuple(f for f in feedback.TEMPLATE_FIELDS if f != "feedback")
        feedback.check_template(
            llm.get("feedback_template"), "feedback.llm.feedback_template", before_feedback
        )
        feedback.check_template(llm.get("refinement_template"), "feedback.llm.refinement_template")
    refiner_params = {"refiner": params["refiner"]}
    for name, variant in params["ablations"].items():
        refiner_params[f"ablations.{name}"] = variant
    cap = params.get("max_tasks_per_split")
    for where, refiner in refiner_params.items():
        refiners.check_refiner(refiner, where)
        shots = refiner.get("shots")
        if refiner["kind"] == "few_shot" and cap is not None and shots > cap:
            raise ValueError(
                f"parameter {where}.shots is {shots} but max_tasks_per_split={cap} leaves at "
                f"most {cap} refine-split example(s); allowed: shots <= {cap}"
            )

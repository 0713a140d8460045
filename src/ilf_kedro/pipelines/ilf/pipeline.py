"""ilf: Algorithm 1 from the raw data to Table 4 and its reports.

A package of its own (not a sum in the registry) because Kedro loads only the pipelines
named on the command line, so ``kedro run --pipelines=ilf`` must find an ``ilf`` module.
``initial_sampling`` is part of it but samples only when ``feedback.source`` is automatic
(interpreter, llm): human feedback comes with its own failing programs.
"""

import importlib
from collections.abc import Sequence

from kedro.pipeline import Pipeline

from ilf_kedro.pipelines import (
    data_processing,
    evaluation,
    feedback,
    finetune,
    initial_sampling,
    model_loading,
    refinement,
    refiner_training,
    reporting,
)

FEW_SHOT_REFINERS = ("one_shot_refiner", "two_shot_refiner")
_planned: dict[str, tuple[str, ...]] = {"input_pipelines": ()}


def plan_input_pipelines(input_pipelines: Sequence[str]) -> None:
    """Remember the run's ``input_pipelines`` (from the hook, before Kedro builds the
    pipelines): project pipelines that write ilf's inputs, e.g. ``world``."""
    names = tuple(input_pipelines or ())
    for name in names:
        try:
            importlib.import_module(f"ilf_kedro.pipelines.{name}")
        except ModuleNotFoundError:
            raise ValueError(
                f"parameter input_pipelines names {name!r}, which is not a pipeline of "
                "this project (kedro registry list)"
            ) from None
    _planned["input_pipelines"] = names


def with_input_pipelines(pipeline: Pipeline) -> Pipeline:
    """``pipeline`` after the planned input pipelines; its base model loads once their
    outputs exist (one of them may write the base model's directory)."""
    names = _planned["input_pipelines"]
    if not names:
        return pipeline
    inputs = Pipeline([])
    for name in names:
        inputs += importlib.import_module(f"ilf_kedro.pipelines.{name}").create_pipeline()
    waiting = model_loading.create_pipeline(after=sorted(inputs.outputs()))
    return inputs + (pipeline - model_loading.create_pipeline()) + waiting


def create_pipeline(ablations: bool = False, **kwargs) -> Pipeline:
    """``ablations``: add Table 2 (unrelated feedback) and the few-shot refiner rows of
    Table 4 (``ilf_ablations``)."""
    extra_methods = FEW_SHOT_REFINERS if ablations else ()
    pipeline = (
        data_processing.create_pipeline()
        + initial_sampling.create_pipeline(only_for_automatic_feedback=True)
        + feedback.create_pipeline()
        + refiner_training.create_pipeline()
        + refinement.create_pipeline()
        + finetune.create_pipeline()
        + evaluation.create_pipeline(few_shot_refiners=extra_methods)
        + reporting.create_pipeline()
    )
    if ablations:
        pipeline += refinement.unrelated_feedback_ablation()
        for namespace in FEW_SHOT_REFINERS:
            pipeline += refinement.few_shot_refiner(namespace)
    return with_input_pipelines(pipeline)

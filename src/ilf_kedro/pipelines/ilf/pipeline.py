"""ilf: Algorithm 1 from the raw data to Table 4 and its reports.

A package of its own (not a sum in the registry) because Kedro loads only the pipelines
named on the command line, so ``kedro run --pipelines=ilf`` must find an ``ilf`` module.
``initial_sampling`` is part of it: it samples the feedback splits only when
``feedback.source`` is automatic (interpreter, llm; human feedback comes with its own
failing programs), and ``refinement.split`` always, for RFT's passing samples.
"""

import importlib
from collections.abc import Sequence

from kedro.pipeline import Pipeline

from ilf_kedro.ingest.task_sets import TaskSet
from ilf_kedro.pipelines import (
    data_processing,
    evaluation,
    feedback,
    finetune,
    initial_sampling,
    model_loading,
    model_registry,
    refinement,
    refiner_training,
    reporting,
)

FEW_SHOT_REFINERS = ("one_shot_refiner", "two_shot_refiner")


def with_input_pipelines(pipeline: Pipeline, names: Sequence[str]) -> Pipeline:
    """``pipeline`` after the project pipelines ``names`` (``input_pipelines``: they
    write ilf's inputs, e.g. ``world``); its base model loads once their outputs exist
    (one of them may write the base model's directory)."""
    if not names:
        return pipeline
    inputs = Pipeline([])
    for name in names:
        inputs += importlib.import_module(f"ilf_kedro.pipelines.{name}").create_pipeline()
    waiting = model_loading.create_pipeline(after=sorted(inputs.outputs()))
    return inputs + (pipeline - model_loading.create_pipeline()) + waiting


def create_pipeline(
    ablations: bool = False,
    task_sets: Sequence[TaskSet] | None = None,
    input_pipelines: Sequence[str] = (),
    candidates: str | None = None,
    **kwargs,
) -> Pipeline:
    """``ablations``: add Table 2 (unrelated feedback) and the few-shot refiner rows of
    Table 4 (``ilf_ablations``). ``task_sets``: evaluation's test sets (default: MBPP).
    ``input_pipelines``: project pipelines run first (the parameter of that name; the
    registry passes the run's, see ``ilf_kedro.pipelines.run_plan``). ``candidates``: the
    dataset of every candidate program per task that the theory is measured on
    (``reporting.distribution.candidates``; None: not measured)."""
    extra_methods = FEW_SHOT_REFINERS if ablations else ()
    pipeline = (
        data_processing.create_pipeline()
        + initial_sampling.create_pipeline(inside_ilf=True)
        + feedback.create_pipeline()
        + refiner_training.create_pipeline()
        + refinement.create_pipeline()
        + finetune.create_pipeline()
        + evaluation.create_pipeline(
            few_shot_refiners=extra_methods, task_sets=task_sets, candidates=candidates
        )
        + reporting.create_pipeline(distribution=candidates is not None)
        + model_registry.create_pipeline()
    )
    if ablations:
        pipeline += refinement.unrelated_feedback_ablation()
        for namespace in FEW_SHOT_REFINERS:
            pipeline += refinement.few_shot_refiner(namespace)
    return with_input_pipelines(pipeline, input_pipelines)

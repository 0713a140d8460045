"""ilf: Algorithm 1 from the raw data to Table 4 and its reports.

A package of its own (not a sum in the registry) because Kedro loads only the pipelines
named on the command line, so ``kedro run --pipeline=ilf`` must find an ``ilf`` module.
``initial_sampling`` is part of it but samples only when ``feedback.source`` is automatic
(interpreter, llm): human feedback comes with its own failing programs.
"""

from kedro.pipeline import Pipeline

from ilf_kedro.pipelines import (
    data_processing,
    evaluation,
    feedback,
    finetune,
    initial_sampling,
    refinement,
    refiner_training,
    reporting,
)

FEW_SHOT_REFINERS = ("one_shot_refiner", "two_shot_refiner")


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
    return pipeline

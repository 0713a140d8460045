"""ilf_rounds: ``kedro run --pipelines=ilf_rounds --params=rounds=N`` runs Algorithm 1 N
times. Round k+1 starts from round k's pi_theta*: it samples that model's failures on the
refine and train splits, gets feedback from the configured (automatic) source, trains
pi_Refine, refines, filters, fine-tunes and evaluates. Each round is one namespace
(``round_1``, ``round_2``...) of one modular pipeline, so its datasets are catalogued by
the ``round_{k}.*`` dataset factories and a finished round is never recomputed when a run
is resumed with ``--from-nodes``. What leaves a round, its pi_theta* for the next round and
its metrics row for the report, has a flat name (``round_{k}_ilf_model``,
``round_{k}_metrics``): Kedro reserves the dot for its own namespacing.

Kedro builds pipelines from code, but the number of rounds is a parameter: the registry
builds this pipeline with the run's ``rounds`` (``ilf_kedro.pipelines.run_plan``).
"""

from __future__ import annotations

from collections.abc import Sequence

from kedro.pipeline import Node, Pipeline

from ilf_kedro.pipelines import (
    data_processing,
    feedback,
    finetune,
    initial_sampling,
    model_loading,
    refinement,
    refiner_training,
    shared_parameters,
)
from ilf_kedro.pipelines.evaluation.pipeline import (
    evaluate_template,
    metrics_dataset,
    zero_shot_evaluation,
)
from ilf_kedro.pipelines.ilf.pipeline import with_input_pipelines

from .nodes import build_rounds_report, plot_rounds

# Datasets every round reads as they are (not per round).
SHARED = (
    "tasks",
    "task_time_limits",
    "test_prompts",
    "human_feedback_annotations",
    "openai_credentials",
)


def round_template() -> Pipeline:
    """One round of Algorithm 1 from ``base_model`` (this round's pi_theta) to
    ``ilf_model`` (its pi_theta*) and that model's ``metrics`` on the test split."""
    stages = (
        initial_sampling.create_pipeline(label_studio_import=False)
        + feedback.create_pipeline()
        + refiner_training.create_pipeline()
        + refinement.create_pipeline()
        + finetune.create_pipeline()
    ) - model_loading.create_pipeline()
    evaluation = Pipeline(
        evaluate_template(),
        inputs={"model": "ilf_model"},
        parameters={"params:method": "params:evaluation.methods.ilf"},
    )
    return stages + evaluation


def round_model(index: int) -> str:
    """Round ``index``'s pi_theta*, as the next round reads it."""
    return f"round_{index}_ilf_model"


def one_round(index: int) -> Pipeline:
    """Round ``index`` (1-based) in namespace ``round_<index>``."""
    template = round_template()
    namespace = f"round_{index}"
    previous = "base_model" if index == 1 else round_model(index - 1)
    return Pipeline(
        template,
        namespace=namespace,
        inputs={"base_model": previous, **{name: name for name in SHARED}},
        outputs={"ilf_model": round_model(index), "metrics": metrics_dataset(namespace)},
        parameters=shared_parameters(template),
    )


def create_pipeline(rounds: int = 1, input_pipelines: Sequence[str] = (), **kwargs) -> Pipeline:
    """``rounds`` rounds (the validated parameter: 1 to ``max_rounds``), then
    ``rounds_report`` and its plot, after ``input_pipelines`` (as ``ilf``)."""
    count = rounds
    pipeline = (
        data_processing.create_pipeline()
        + zero_shot_evaluation()
        + sum((one_round(k) for k in range(1, count + 1)), Pipeline([]))
        + Pipeline(
            [
                Node(
                    build_rounds_report,
                    inputs=[
                        metrics_dataset("zero_shot"),
                        *(metrics_dataset(f"round_{k}") for k in range(1, count + 1)),
                    ],
                    outputs="rounds_report",
                    name="build_rounds_report",
                ),
                Node(
                    plot_rounds, inputs="rounds_report", outputs="rounds_plot", name="plot_rounds"
                ),
            ]
        )
    )
    return with_input_pipelines(pipeline, input_pipelines)

"""ilf_sweep: ``kedro run --pipelines=ilf_sweep`` runs ``ilf`` and then, for each share in
``sweep.shares`` (say 25% and 50%), fine-tunes pi_theta on the ILF refinements of that
seeded share of the annotated train-split tasks, and on the gold programs of the same
tasks (the same number of demonstrations), and evaluates both. pi_Refine is ``ilf``'s,
trained once: it refines each task on its own, so a share of its refinements is what
annotating only those tasks would have given. ``ilf`` itself is the 100% point.

Each share is one namespace, ``sweep_<percent>``, of one modular pipeline (its models and
verdicts are catalogued per share, ``sweep_{percent}.*``); each leaves a flat
``sweep_<percent>_point`` with its metrics rows. ``sample_efficiency`` (table) and
``sample_efficiency_plot`` put the points together with zero-shot (no annotation).

Kedro builds pipelines from code, but the shares are a parameter: the registry builds this
pipeline with the run's ``sweep.shares`` (``ilf_kedro.pipelines.run_plan``).
"""

from __future__ import annotations

from collections.abc import Sequence

from kedro.pipeline import Node, Pipeline

from ilf_kedro.ingest.task_sets import TaskSet
from ilf_kedro.pipelines import bound, ilf, shared_parameters
from ilf_kedro.pipelines.evaluation import pipeline as evaluation
from ilf_kedro.pipelines.evaluation.nodes import build_gold_training_set

from .nodes import (
    build_sample_efficiency,
    efficiency_point,
    plot_sample_efficiency,
    take_annotation_share,
    track_sample_efficiency,
)

DEFAULT_SHARES = (0.25, 0.5)
# What a fine-tune and its evaluation read besides the training set, and what every share
# reads as it is.
EVALUATION_INPUTS = ("base_model", *sorted(evaluation.SHARED))
SHARED = ("annotations_to_refine", "ilf_training_set", *EVALUATION_INPUTS)


def point_name(share: float) -> str:
    """The namespace of one share: ``sweep_25`` for 0.25."""
    return f"sweep_{round(share * 100)}"


def _finetune_and_evaluate(method: str) -> Pipeline:
    """Fine-tune on ``<method>_training_set_share`` and evaluate -> ``<method>_metrics``,
    labelled as ``method`` is in ``ilf``."""
    inputs = {"training_set": f"{method}_training_set_share"}
    inputs.update({name: name for name in EVALUATION_INPUTS})
    return evaluation.method_pipeline(evaluation.finetune_and_evaluate_template(), method, inputs)


def one_share(share: float) -> Pipeline:
    """ILF and gold fine-tuning on ``share`` of the annotations, in ``sweep_<percent>``."""
    template = (
        Pipeline(
            [
                Node(
                    bound(take_annotation_share, share=share),
                    inputs=["annotations_to_refine", "ilf_training_set", "params:sweep.seed"],
                    outputs=["annotations", "ilf_training_set_share"],
                    name="take_annotation_share",
                ),
                Node(
                    build_gold_training_set,
                    inputs=["tasks", "ilf_training_set_share"],
                    outputs="gold_training_set_share",
                    name="build_gold_training_set",
                ),
            ]
        )
        + _finetune_and_evaluate("ilf")
        + _finetune_and_evaluate("gold")
        + Pipeline(
            [
                Node(
                    bound(efficiency_point, share=share),
                    inputs=["annotations", "ilf_metrics", "gold_metrics"],
                    outputs="point",
                    name="efficiency_point",
                )
            ]
        )
    )
    namespace = point_name(share)
    return Pipeline(
        template,
        namespace=namespace,
        inputs=set(SHARED),
        outputs={"point": f"{namespace}_point"},
        parameters=shared_parameters(template),
    )


def create_pipeline(
    shares: Sequence[float] = DEFAULT_SHARES,
    task_sets: Sequence[TaskSet] | None = None,
    input_pipelines: Sequence[str] = (),
    candidates: str | None = None,
    **kwargs,
) -> Pipeline:
    """``ilf`` (with ``task_sets``, ``input_pipelines`` and ``candidates``), one namespace
    per share in ``shares`` (the validated ``sweep.shares``: each in (0, 1)), the full run
    as the 100% point, and ``sample_efficiency`` with its plot."""
    full = Pipeline(
        [
            Node(
                bound(efficiency_point, share=1.0),
                inputs=["annotations_to_refine", "ilf_metrics", "gold_metrics"],
                outputs=f"{point_name(1.0)}_point",
                name="efficiency_point",
            )
        ]
    )
    points = [f"{point_name(share)}_point" for share in sorted(shares)]
    report = Pipeline(
        [
            Node(
                build_sample_efficiency,
                inputs=["zero_shot_metrics", *points, f"{point_name(1.0)}_point"],
                outputs="sample_efficiency",
                name="build_sample_efficiency",
            ),
            Node(
                track_sample_efficiency,
                inputs="sample_efficiency",
                outputs="sample_efficiency_mlflow",
                name="track_sample_efficiency",
            ),
            Node(
                plot_sample_efficiency,
                inputs="sample_efficiency",
                outputs="sample_efficiency_plot",
                name="plot_sample_efficiency",
            ),
        ]
    )
    return (
        ilf.create_pipeline(
            task_sets=task_sets, input_pipelines=input_pipelines, candidates=candidates
        )
        + sum((one_share(share) for share in shares), Pipeline([]))
        + full
        + report
    )

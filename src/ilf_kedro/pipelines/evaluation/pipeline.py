"""evaluation: every method sampled and tested on every test set -> ``eval_metrics``
(paper Table 4), and the base model's perplexity on the training programs (Figure 3,
scored here where pi_theta is loaded, so ``reporting`` loads no model).
Fine-tune-then-evaluate is one modular pipeline, reused per method through Kedro
namespaces.

Test sets (``evaluation.task_sets``): ``mbpp`` is the paper's MBPP_Test, read from the
project's ``tasks`` as ``test_prompts`` and ``<method>.test_results``. Every other set
``<set>`` is a catalog entry ``<set>_raw`` (schema in ``evaluation.task_set_formats``)
that becomes ``<set>.tasks`` and ``<set>.test_prompts``, and each method's model is
evaluated on it in namespace ``<method>.<set>``. Kedro builds pipelines from code before
it knows the run's parameters, so the registry builds this pipeline with the run's test
sets (``ilf_kedro.pipelines.run_plan``).
"""

from collections.abc import Callable, Collection, Sequence
from functools import partial, update_wrapper
from typing import Any

from kedro.pipeline import Node, Pipeline

from ilf_kedro.execution import time_limits_node
from ilf_kedro.ingest.task_sets import PAPER_SET, TaskSet, build_set_tasks
from ilf_kedro.pipelines import model_loading, shared_parameters
from ilf_kedro.pipelines.stage_nodes import run_tests, sample, select_tasks, train_model
from ilf_kedro.tracking.metrics import eval_metric_values

from .nodes import (
    build_gold_training_set,
    build_source_refinement_training_set,
    build_test_set_tasks,
    combine_metrics,
    compute_program_perplexities,
    method_metrics,
    select_test_set_prompts,
)

# Methods whose model another stage made: namespace -> model dataset.
GIVEN_MODELS = {"zero_shot": "base_model", "ilf": "ilf_model"}
# Baselines fine-tuned from base_model on ``<namespace>.training_set`` (the same task ids
# as ilf_training_set): namespace -> (node that builds the set, its inputs).
BASELINES = {
    "gold": (build_gold_training_set, ["tasks", "ilf_training_set"]),
    "source_refinements": (
        build_source_refinement_training_set,
        ["feedback_annotations", "tasks", "ilf_training_set"],
    ),
}
SHARED = {"tasks", "task_time_limits", "test_prompts"}
PAPER_TASK_SETS = (TaskSet(PAPER_SET, PAPER_SET),)


def check_test_sets(
    task_sets: Sequence[TaskSet], pipeline_inputs: Collection[str], load: Callable[[str], Any]
) -> None:
    """Validate the raw data of every test set in ``task_sets`` that the pipeline reads
    (``load``: the catalog's), so a malformed row stops the run before any node runs;
    raises ``DataValidationError`` naming the dataset, row and column."""
    for task_set in task_sets:
        if not task_set.is_paper_set and task_set.raw_dataset in pipeline_inputs:
            build_set_tasks(load(task_set.raw_dataset), task_set)


def evaluate_template() -> Pipeline:
    """``model`` -> samples on ``test_prompts`` -> verdicts -> one metrics row."""
    return Pipeline(
        [
            Node(
                sample,
                inputs=["model", "test_prompts", "params:sampling"],
                outputs="test_samples",
                name="sample_test_programs",
            ),
            Node(
                run_tests,
                inputs=["test_samples", "tasks", "task_time_limits", "params:execution"],
                outputs="test_results",
                name="test_programs",
            ),
            Node(
                method_metrics,
                inputs=[
                    "test_results",
                    "tasks",
                    "model",
                    "params:method",
                    "params:pass_at_k",
                    "params:feedback.source",
                ],
                outputs="metrics",
                name="compute_pass_at_k",
            ),
        ]
    )


def finetune_and_evaluate_template() -> Pipeline:
    """``training_set`` -> ``model`` fine-tuned from ``base_model`` -> evaluated."""
    return (
        Pipeline(
            [
                Node(
                    train_model,
                    inputs=["base_model", "training_set", "params:finetune"],
                    outputs="model",
                    name="train_model",
                )
            ]
        )
        + evaluate_template()
    )


def _method(
    template: Pipeline, namespace: str, inputs: dict | set, method: str | None = None
) -> Pipeline:
    """``template`` in ``namespace``; every parameter is shared across methods except the
    method's own label, ``evaluation.methods.<method>`` (``method``: the namespace)."""
    label = f"params:evaluation.methods.{method or namespace}"
    return Pipeline(
        template,
        namespace=namespace,
        inputs=inputs,
        parameters=shared_parameters(template, method=label),
    )


def zero_shot_evaluation() -> Pipeline:
    """``tasks`` -> ``test_prompts`` -> the base model evaluated (``zero_shot.metrics``)."""
    return model_loading.create_pipeline() + Pipeline(
        [
            Node(
                select_tasks,
                inputs=["tasks", "params:evaluation.splits", "params:max_tasks_per_split"],
                outputs="test_prompts",
                name="select_test_tasks",
            ),
            _given("zero_shot", "base_model"),
        ]
    )


def _given(namespace: str, model: str) -> Pipeline:
    return _method(
        evaluate_template(), namespace, {"model": model, **{name: name for name in SHARED}}
    )


def prepare_test_set(task_set: TaskSet) -> Pipeline:
    """``<set>_raw`` -> ``<set>.tasks`` (validated task rows) -> ``<set>.test_prompts``
    and ``<set>.task_time_limits`` (calibrated on the set's own gold programs)."""
    build = update_wrapper(partial(build_test_set_tasks, task_set=task_set), build_test_set_tasks)
    return Pipeline(
        [
            Node(
                build,
                inputs=task_set.raw_dataset,
                outputs=f"{task_set.name}.tasks",
                name="build_test_set_tasks",
            ),
            Node(
                time_limits_node,
                inputs=[f"{task_set.name}.tasks", "params:execution"],
                outputs=f"{task_set.name}.task_time_limits",
                name="calibrate_task_time_limits",
            ),
            Node(
                select_test_set_prompts,
                inputs=[f"{task_set.name}.tasks", "params:max_tasks_per_split"],
                outputs=f"{task_set.name}.test_prompts",
                name="select_test_tasks",
            ),
        ],
        namespace=task_set.name,
        prefix_datasets_with_namespace=False,
    )


def _on_test_set(method: str, model: str, task_set: TaskSet) -> Pipeline:
    """``method``'s ``model`` evaluated on ``task_set`` in namespace ``<method>.<set>``."""
    inputs = {"model": model, **{name: f"{task_set.name}.{name}" for name in SHARED}}
    return _method(evaluate_template(), f"{method}.{task_set.name}", inputs, method=method)


def create_pipeline(
    few_shot_refiners: tuple[str, ...] = (),
    task_sets: Sequence[TaskSet] | None = None,
    **kwargs,
) -> Pipeline:
    """``few_shot_refiners``: namespaces whose ``<namespace>.training_set`` a few-shot
    refiner wrote (``ilf_ablations``); each is fine-tuned and evaluated as one more method.
    ``task_sets``: the test sets (default: MBPP only); every method is evaluated on each,
    and ``eval_metrics`` has one row per set and method, sets in the listed order."""
    sets = task_sets or PAPER_TASK_SETS
    methods = list(GIVEN_MODELS) + list(BASELINES) + list(few_shot_refiners)
    models = {**GIVEN_MODELS, **{ns: f"{ns}.model" for ns in methods if ns not in GIVEN_MODELS}}
    baselines = [
        _method(finetune_and_evaluate_template(), ns, {"base_model", *SHARED})
        for ns in [*BASELINES, *few_shot_refiners]
    ]
    others = [s for s in sets if not s.is_paper_set]
    metrics = [
        f"{ns}.metrics" if task_set.is_paper_set else f"{ns}.{task_set.name}.metrics"
        for task_set in sets
        for ns in methods
    ]
    return zero_shot_evaluation() + Pipeline(
        [
            *(
                Node(build, inputs=inputs, outputs=f"{ns}.training_set", name=build.__name__)
                for ns, (build, inputs) in BASELINES.items()
            ),
            *(_given(ns, model) for ns, model in GIVEN_MODELS.items() if ns != "zero_shot"),
            *baselines,
            *(prepare_test_set(task_set) for task_set in others),
            *(_on_test_set(ns, models[ns], task_set) for task_set in others for ns in methods),
            Node(
                combine_metrics,
                inputs=metrics,
                outputs="eval_metrics",
                name="combine_method_metrics",
            ),
            Node(
                eval_metric_values,
                inputs="eval_metrics",
                outputs="eval_metrics_mlflow",
                name="track_eval_metrics",
            ),
            # Scored here, where pi_theta is loaded anyway, so reporting loads no model.
            Node(
                compute_program_perplexities,
                inputs=[
                    "base_model",
                    "tasks",
                    "annotations_to_refine",
                    "refinement_results",
                    "params:reporting.perplexity",
                ],
                outputs="perplexities",
                name="compute_program_perplexities",
            ),
        ]
    )

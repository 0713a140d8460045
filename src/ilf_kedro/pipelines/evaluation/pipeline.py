"""evaluation: every method sampled and tested on every test set -> ``eval_metrics``
(paper Table 4), and the base model's perplexity on the training programs (Figure 3,
scored here where pi_theta is loaded, so ``reporting`` loads no model).
Fine-tune-then-evaluate is one modular pipeline, reused per method through Kedro
namespaces.

Test sets (``evaluation.task_sets``): ``mbpp`` is the paper's MBPP_Test, read from the
project's ``tasks`` as ``test_prompts`` and ``<method>.test_results``. Every other set
``<set>`` is a catalog entry ``<set>_raw`` (schema in ``evaluation.task_set_formats``)
that becomes ``<set>_tasks`` and ``<set>_test_prompts``, and each method's model is
evaluated on it in namespace ``<method>.<set>``. Kedro builds pipelines from code before
it knows the run's parameters, so the registry builds this pipeline with the run's test
sets (``ilf_kedro.pipelines.run_plan``).

What a namespace hands to nodes outside it has a flat name, since Kedro reserves the dot
for its own namespacing: a method's metrics row is ``<method>_metrics`` (on another set
``<method>_metrics_on_<set>``), a set's prepared data ``<set>_tasks`` and so on.
"""

from collections.abc import Callable, Collection, Sequence
from typing import Any

from kedro.pipeline import Node, Pipeline

from ilf_kedro.execution import time_limits_node
from ilf_kedro.ingest.task_sets import PAPER_SET, TaskSet, build_set_tasks
from ilf_kedro.pipelines import bound, model_loading, shared_parameters
from ilf_kedro.pipelines.stage_nodes import run_tests, sample, select_tasks, train_model
from ilf_kedro.tracking.metrics import eval_metric_values

from .distribution import distribution_pipeline
from .nodes import (
    build_gold_training_set,
    build_ilf_rft_training_set,
    build_rft_training_set,
    build_source_refinement_training_set,
    build_test_set_tasks,
    combine_metrics,
    compute_program_perplexities,
    method_metrics,
    select_test_set_prompts,
)

# Methods whose model another stage made: namespace -> model dataset.
GIVEN_MODELS = {"zero_shot": "base_model", "ilf": "ilf_model"}
# Baselines fine-tuned from base_model on their own ``training_set``, built in their
# namespace: namespace -> (node function, its inputs). Gold and the source's refinements
# cover ilf_training_set's task ids; RFT the tasks where a zero-shot sample passes.
BASELINES = {
    "gold": (build_gold_training_set, ["tasks", "ilf_training_set"]),
    "source_refinements": (
        build_source_refinement_training_set,
        ["feedback_annotations", "tasks", "ilf_training_set"],
    ),
    "rft": (
        build_rft_training_set,
        ["initial_sample_results", "tasks", "params:refinement.split", "params:rft"],
    ),
    "ilf_rft": (build_ilf_rft_training_set, ["ilf_training_set", "rft_training_set"]),
}
# Baseline training sets that leave their namespace (another baseline reads them).
EXPOSED_TRAINING_SETS = {"rft": "rft_training_set"}
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
                inputs=["model", "test_prompts", "params:sampling", "params:compute"],
                outputs="test_samples",
                name="sample_test_programs",
            ),
            Node(
                run_tests,
                inputs=[
                    "test_samples",
                    "tasks",
                    "task_time_limits",
                    "params:execution",
                    "params:compute",
                ],
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
                    inputs=["base_model", "training_set", "params:finetune", "params:compute"],
                    outputs="model",
                    name="train_model",
                )
            ]
        )
        + evaluate_template()
    )


def metrics_dataset(namespace: str) -> str:
    """The flat name under which an evaluation namespace hands its metrics row to nodes
    outside it: ``gold_metrics``, ``round_2_metrics``; ``gold_metrics_on_humaneval`` for
    namespace ``gold.humaneval``."""
    method, _, task_set = namespace.partition(".")
    return f"{method}_metrics_on_{task_set}" if task_set else f"{method}_metrics"


def method_pipeline(
    template: Pipeline,
    namespace: str,
    inputs: dict | set,
    method: str | None = None,
    outputs: dict[str, str] | None = None,
) -> Pipeline:
    """``template`` in ``namespace``; every parameter is shared across methods except the
    method's own label, ``evaluation.methods.<method>`` (``method``: the namespace). Its
    ``metrics`` leave it as :func:`metrics_dataset`, with any other ``outputs``."""
    label = f"params:evaluation.methods.{method or namespace}"
    return Pipeline(
        template,
        namespace=namespace,
        inputs=inputs,
        outputs={"metrics": metrics_dataset(namespace), **(outputs or {})},
        parameters=shared_parameters(template, method=label),
    )


def zero_shot_evaluation() -> Pipeline:
    """``tasks`` -> ``test_prompts`` -> the base model evaluated (``zero_shot_metrics``;
    its verdicts, ``zero_shot_test_results``, are also read by ``reporting``)."""
    return model_loading.create_pipeline() + Pipeline(
        [
            Node(
                select_tasks,
                inputs=["tasks", "params:evaluation.splits", "params:max_tasks_per_split"],
                outputs="test_prompts",
                name="select_test_tasks",
            ),
            _given("zero_shot", "base_model", outputs={"test_results": "zero_shot_test_results"}),
        ]
    )


def _given(namespace: str, model: str, outputs: dict[str, str] | None = None) -> Pipeline:
    inputs = {"model": model, **{name: name for name in SHARED}}
    return method_pipeline(evaluate_template(), namespace, inputs, outputs=outputs)


def _baseline(namespace: str) -> Pipeline:
    """A baseline in ``namespace``: its ``training_set`` built (``BASELINES``), a model
    fine-tuned from ``base_model`` on it, evaluated."""
    build, inputs = BASELINES[namespace]
    template = (
        Pipeline([Node(build, inputs=inputs, outputs="training_set", name=build.__name__)])
        + finetune_and_evaluate_template()
    )
    datasets = {name for name in inputs if not name.startswith("params:")}
    exposed = EXPOSED_TRAINING_SETS.get(namespace)
    outputs = {"training_set": exposed} if exposed else None
    return method_pipeline(template, namespace, {"base_model", *datasets, *SHARED}, outputs=outputs)


def set_dataset(task_set: TaskSet, name: str) -> str:
    """The flat name of a test set's prepared ``name`` (``tasks``, ``task_time_limits``,
    ``test_prompts``) that every method's evaluation reads: ``humaneval_tasks``."""
    return f"{task_set.name}_{name}"


def prepare_test_set(task_set: TaskSet) -> Pipeline:
    """``<set>_raw`` -> ``<set>_tasks`` (validated task rows) -> ``<set>_test_prompts``
    and ``<set>_task_time_limits`` (calibrated on the set's own gold programs), in
    namespace ``<set>``."""
    build = bound(build_test_set_tasks, task_set=task_set)
    template = Pipeline(
        [
            Node(build, inputs="raw", outputs="tasks", name="build_test_set_tasks"),
            Node(
                time_limits_node,
                inputs=["tasks", "params:execution"],
                outputs="task_time_limits",
                name="calibrate_task_time_limits",
            ),
            Node(
                select_test_set_prompts,
                inputs=["tasks", "params:max_tasks_per_split"],
                outputs="test_prompts",
                name="select_test_tasks",
            ),
        ]
    )
    return Pipeline(
        template,
        namespace=task_set.name,
        inputs={"raw": task_set.raw_dataset},
        outputs={name: set_dataset(task_set, name) for name in SHARED},
        parameters=shared_parameters(template),
    )


def _on_test_set(method: str, model: str, task_set: TaskSet) -> Pipeline:
    """``method``'s ``model`` evaluated on ``task_set`` in namespace ``<method>.<set>``."""
    inputs = {"model": model, **{name: set_dataset(task_set, name) for name in SHARED}}
    return method_pipeline(evaluate_template(), f"{method}.{task_set.name}", inputs, method=method)


def create_pipeline(
    few_shot_refiners: tuple[str, ...] = (),
    task_sets: Sequence[TaskSet] | None = None,
    candidates: str | None = None,
    **kwargs,
) -> Pipeline:
    """``few_shot_refiners``: namespaces whose ``<namespace>.training_set`` a few-shot
    refiner wrote (``ilf_ablations``); each is fine-tuned and evaluated as one more method.
    ``task_sets``: the test sets (default: MBPP only); every method is evaluated on each,
    and ``eval_metrics`` has one row per set and method, sets in the listed order.
    ``candidates``: a dataset of every candidate program of each task
    (``reporting.distribution.candidates``): every method's model is then compared with
    the target distribution on it (``distribution``); None: not measured."""
    sets = task_sets or PAPER_TASK_SETS
    methods = list(GIVEN_MODELS) + list(BASELINES) + list(few_shot_refiners)
    models = {**GIVEN_MODELS, **{ns: f"{ns}.model" for ns in methods if ns not in GIVEN_MODELS}}
    # A few-shot refiner's training_set comes from its namespace in ``refinement``.
    few_shot = [
        method_pipeline(finetune_and_evaluate_template(), ns, {"base_model", *SHARED})
        for ns in few_shot_refiners
    ]
    others = [s for s in sets if not s.is_paper_set]
    metrics = [
        metrics_dataset(ns if task_set.is_paper_set else f"{ns}.{task_set.name}")
        for task_set in sets
        for ns in methods
    ]
    metrics_of = {ns: metrics_dataset(ns) for ns in methods}
    measured = [distribution_pipeline(models, metrics_of, candidates)] if candidates else []
    return zero_shot_evaluation() + Pipeline(
        [
            *(_given(ns, model) for ns, model in GIVEN_MODELS.items() if ns != "zero_shot"),
            *(_baseline(ns) for ns in BASELINES),
            *few_shot,
            *(prepare_test_set(task_set) for task_set in others),
            *(_on_test_set(ns, models[ns], task_set) for task_set in others for ns in methods),
            *measured,
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

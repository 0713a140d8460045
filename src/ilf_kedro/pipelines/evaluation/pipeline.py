"""evaluation: every method sampled and tested on the test split -> ``eval_metrics``
(paper Table 4), and the base model's perplexity on the training programs (Figure 3).
Fine-tune-then-evaluate is one modular pipeline, reused per method through Kedro
namespaces."""

from kedro.pipeline import Node, Pipeline

from ilf_kedro.pipelines import model_loading
from ilf_kedro.pipelines.stage_nodes import run_tests, sample, select_tasks, train_model
from ilf_kedro.tracking import eval_metric_values

from .nodes import (
    build_gold_training_set,
    build_source_refinement_training_set,
    combine_metrics,
    compute_program_perplexities,
    method_metrics,
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
SHARED = {"tasks", "test_prompts"}


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
                inputs=["test_samples", "tasks", "params:execution"],
                outputs="test_results",
                name="test_programs",
            ),
            Node(
                method_metrics,
                inputs=[
                    "test_results",
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


def _method(template: Pipeline, namespace: str, inputs: dict | set) -> Pipeline:
    return Pipeline(
        template,
        namespace=namespace,
        inputs=inputs,
        # Every parameter is shared across methods except each method's own label.
        parameters={
            **{p: p for p in template.inputs() if p.startswith("params:")},
            "params:method": f"params:evaluation.methods.{namespace}",
        },
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


def create_pipeline(few_shot_refiners: tuple[str, ...] = (), **kwargs) -> Pipeline:
    """``few_shot_refiners``: namespaces whose ``<namespace>.training_set`` a few-shot
    refiner wrote (``ilf_ablations``); each is fine-tuned and evaluated as one more method."""
    methods = list(GIVEN_MODELS) + list(BASELINES) + list(few_shot_refiners)
    baselines = [
        _method(finetune_and_evaluate_template(), ns, {"base_model", *SHARED})
        for ns in [*BASELINES, *few_shot_refiners]
    ]
    return zero_shot_evaluation() + Pipeline(
        [
            *(
                Node(build, inputs=inputs, outputs=f"{ns}.training_set", name=build.__name__)
                for ns, (build, inputs) in BASELINES.items()
            ),
            *(_given(ns, model) for ns, model in GIVEN_MODELS.items() if ns != "zero_shot"),
            *baselines,
            Node(
                combine_metrics,
                inputs=[f"{ns}.metrics" for ns in methods],
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

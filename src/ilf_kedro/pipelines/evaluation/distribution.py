"""The paper's theory measured inside ``evaluation``: where a dataset holds every
candidate program of each task (the world's ``candidate_programs``; parameter
``reporting.distribution.candidates`` names it), each method's model scores every
candidate given its task prompt, and ``distribution_metrics`` compares the methods with
the target distribution (``ilf_kedro.ilf.target_distribution``).

Built from evaluation's own methods (namespace -> model dataset), so every method with a
Table 4 row gets a row here, and only when the parameter names a dataset.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd
from kedro.pipeline import Node, Pipeline

from ilf_kedro.ilf import target_distribution
from ilf_kedro.models import ModelBundle, completion_log_likelihoods
from ilf_kedro.parameters import Distribution
from ilf_kedro.pipelines import shared_parameters

PARAMS = "params:reporting.distribution"


def build_candidate_pairs(
    candidates: pd.DataFrame, tasks: pd.DataFrame, params: Distribution
) -> pd.DataFrame:
    """Every candidate program (``task_id``, ``correct``, ``program``) of the test and
    train tasks -> (task prompt -> completion) pairs, ``candidate_pairs``."""
    return target_distribution.candidate_pairs(
        candidates,
        tasks,
        params.test_split,
        params.train_split,
        params.max_tasks_per_split,
        params.seed,
    )


def score_candidates(
    model: ModelBundle, candidate_pairs: pd.DataFrame, metrics: pd.DataFrame, params: Distribution
) -> pd.DataFrame:
    """A method's model's log-likelihood of every candidate given its task prompt, under
    the method's name in its Table 4 row (``metrics``) -> ``<method>_candidate_scores``."""
    log_likelihood, _ = completion_log_likelihoods(
        model,
        list(candidate_pairs["prompt"]),
        list(candidate_pairs["completion"]),
        batch_size=params.batch_size,
    )
    scores = candidate_pairs.drop(columns=["prompt", "completion"])
    scores.insert(0, "method", str(metrics["method"].iloc[0]))
    return scores.assign(log_likelihood=log_likelihood)[target_distribution.SCORE_COLUMNS]


def compute_distribution_metrics(params: Distribution, *scores: pd.DataFrame) -> pd.DataFrame:
    """Every method's candidate scores, the base model's first -> ``distribution_metrics``:
    mass on the right programs and KL from the target (test tasks), KL from the base
    model (train tasks)."""
    return target_distribution.distribution_metrics(
        list(scores), params.test_split, params.train_split
    )


def scores_dataset(namespace: str) -> str:
    """The flat name of a method's candidate scores: ``ilf_candidate_scores``."""
    return f"{namespace}_candidate_scores"


def _scored(namespace: str, model: str, metrics: str) -> Pipeline:
    template = Pipeline(
        [
            Node(
                score_candidates,
                inputs=["model", "candidate_pairs", "metrics", PARAMS],
                outputs="candidate_scores",
                name="score_candidates",
            )
        ]
    )
    return Pipeline(
        template,
        namespace=namespace,
        inputs={"model": model, "candidate_pairs": "candidate_pairs", "metrics": metrics},
        outputs={"candidate_scores": scores_dataset(namespace)},
        parameters=shared_parameters(template),
    )


def distribution_pipeline(
    models: Mapping[str, str], metrics: Mapping[str, str], candidates: str
) -> Pipeline:
    """``models``: method namespace -> its model dataset, the base model's first;
    ``metrics``: namespace -> its Table 4 row (the method's name); ``candidates``: the
    dataset of candidate programs."""
    return Pipeline(
        [
            Node(
                build_candidate_pairs,
                inputs=[candidates, "tasks", PARAMS],
                outputs="candidate_pairs",
                name="build_candidate_pairs",
            ),
            *(_scored(ns, model, metrics[ns]) for ns, model in models.items()),
            Node(
                compute_distribution_metrics,
                inputs=[PARAMS, *(scores_dataset(ns) for ns in models)],
                outputs="distribution_metrics",
                name="compute_distribution_metrics",
            ),
        ]
    )

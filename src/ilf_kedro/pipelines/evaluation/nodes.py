"""Nodes of evaluation: each method's pass@k on each test set (paper Table 4), and the
perplexity under pi_theta of the programs ILF trains on (paper Figure 3)."""

from __future__ import annotations

import logging

import pandas as pd

from ilf_kedro.ilf import training_sets
from ilf_kedro.ingest import task_sets
from ilf_kedro.ingest.humaneval import TEST_SPLIT
from ilf_kedro.models import ModelBundle, perplexity_table
from ilf_kedro.parameters import Method, Perplexity, RejectionSampling
from ilf_kedro.pipelines.stage_nodes import select_tasks, summarise_pass_rates

logger = logging.getLogger(__name__)

# Figure 3's sources; the third is named by who wrote the annotations' refinements.
GOLD = "MBPP gold programs"
PI_REFINE = "pi_Refine refinements"


def build_test_set_tasks(raw: pd.DataFrame, task_set: task_sets.TaskSet) -> pd.DataFrame:
    """A test set's raw rows (``<set>_raw``, MBPP or HumanEval schema) -> ``<set>_tasks``:
    validated task rows with ``task_set`` and ``source_task_id``, every one a test task.
    A malformed row stops the run here, naming the dataset, row and column."""
    return task_sets.build_set_tasks(raw, task_set)


def select_test_set_prompts(tasks: pd.DataFrame, max_tasks_per_split) -> pd.DataFrame:
    """``<set>_tasks`` -> ``<set>_test_prompts``: the first ``max_tasks_per_split`` tasks
    (null for all) as ``task_id``, ``split``, ``prompt`` rows to sample from."""
    return select_tasks(tasks, [TEST_SPLIT], max_tasks_per_split)


def build_gold_training_set(tasks: pd.DataFrame, ilf_training_set: pd.DataFrame) -> pd.DataFrame:
    """Baseline set: MBPP gold programs for the task ids of ``ilf_training_set``."""
    return training_sets.gold_training_set(tasks, ilf_training_set["task_id"])


def build_source_refinement_training_set(
    feedback_annotations: pd.DataFrame, tasks: pd.DataFrame, ilf_training_set: pd.DataFrame
) -> pd.DataFrame:
    """Baseline set: the feedback source's own passing refinements (human, LLM, or gold
    stand-ins) for the task ids of ``ilf_training_set``."""
    passing = feedback_annotations[feedback_annotations["refinement_passed"]]
    return training_sets.source_refinement_training_set(passing, tasks, ilf_training_set["task_id"])


def build_rft_training_set(
    initial_sample_results: pd.DataFrame,
    tasks: pd.DataFrame,
    split: str,
    params: RejectionSampling,
) -> pd.DataFrame:
    """Baseline set without feedback (STaR / RFT / ReST-EM): zero-shot pi_theta's own
    passing samples on the tasks of ``split`` (ILF's) where one passes, ``params.
    samples_per_task`` per task at most -> ``rft_training_set``."""
    return training_sets.rft_training_set(
        initial_sample_results,
        tasks,
        split,
        samples_per_task=params.samples_per_task,
        dedupe=params.dedupe,
        seed=params.seed,
    )


def build_ilf_rft_training_set(
    ilf_training_set: pd.DataFrame, rft_training_set: pd.DataFrame
) -> pd.DataFrame:
    """ILF's training set plus RFT's: feedback on the tasks no sample passes, the model's
    own passing samples on the others."""
    return training_sets.ilf_and_rft_training_set(ilf_training_set, rft_training_set)


# The source-refinements baseline's name, by feedback source: whose refinements it trains on.
SOURCE_REFINEMENTS = {
    "human": "human refinements",
    "unrelated": "human refinements",
    "llm": "LLM refinements",
    "interpreter": "gold stand-in refinements",
}


def method_metrics(
    test_results: pd.DataFrame,
    tasks: pd.DataFrame,
    model: ModelBundle,
    method: Method,
    ks: list[int],
    feedback_source: str,
) -> pd.DataFrame:
    """One row for a method on one test set: the set (``task_set`` of ``tasks``; ``mbpp``
    for the project's own tasks), the method's name, the feedback source it learnt from
    (``none`` for methods without feedback), pass@k on the set's test tasks, samples per
    task, tasks, and how many examples (and whether random weights) its model had."""
    summary = summarise_pass_rates(test_results, ks)
    info = model.info
    name = method.name
    if name == "source refinements":
        name = SOURCE_REFINEMENTS[feedback_source]
    summary.insert(0, "task_set", task_sets.set_of(tasks))
    summary.insert(1, "method", name)
    summary.insert(2, "feedback_source", feedback_source if method.uses_feedback else "none")
    summary["training_set_size"] = int(info.get("training_examples", 0))
    summary["random_weights"] = bool(info.get("random_weights", False))
    summary["untrained_reason"] = info.get("untrained_reason") or ""
    return summary


def combine_metrics(*method_rows: pd.DataFrame) -> pd.DataFrame:
    """Every (test set, method) row -> ``eval_metrics``, in the configured order."""
    return pd.concat(method_rows, ignore_index=True)


def _sample(frame: pd.DataFrame, limit, seed: int) -> pd.DataFrame:
    if limit is None or len(frame) <= int(limit):
        return frame
    return frame.sample(n=int(limit), random_state=seed).sort_values("task_id")


def compute_program_perplexities(
    base_model: ModelBundle,
    tasks: pd.DataFrame,
    annotations_to_refine: pd.DataFrame,
    refinement_results: pd.DataFrame,
    params: Perplexity,
) -> pd.DataFrame:
    """Figure 3's data: perplexity under pi_theta of the MBPP gold programs, pi_Refine's
    refinements and the feedback source's own refinements (human in the paper) of the
    tasks that were refined, each scored on the same span under the same conditioning:
    its body given its task prompt, as pi_theta writes it (so the same program gets the
    same perplexity whichever source it comes from).

    ``params``: ``refinements`` (``passing``: only refinements that pass the tests, the
    ones ILF trains on; ``all``: every generated one), ``max_programs_per_source`` (a
    seeded random subset above it; null: all), ``batch_size``, ``max_length``, ``seed``.
    Returns ``source``, ``task_id``, ``n_tokens``, ``perplexity`` rows.
    """
    task_ids = annotations_to_refine["task_id"].unique()
    writers = sorted(set(annotations_to_refine["refinement_source"])) or ["human"]
    refined = refinement_results
    if params.refinements == "passing" and len(refined):
        refined = refined[refined["passed"].astype(bool)]
    limit, seed = params.max_programs_per_source, params.seed
    # (task prompt -> body) pairs, as the fine-tunes see their targets.
    pairs = {
        GOLD: training_sets.gold_training_set(tasks, task_ids),
        PI_REFINE: training_sets.source_refinement_training_set(
            refined.rename(columns={"program": "refinement"}), tasks, task_ids
        ),
        f"{'/'.join(writers)} refinements": training_sets.source_refinement_training_set(
            annotations_to_refine, tasks, task_ids
        ),
    }
    sources = {name: _sample(frame, limit, seed) for name, frame in pairs.items()}
    if base_model.info.get("random_weights"):
        logger.warning("Perplexities are under a model with RANDOM weights: not meaningful.")
    return perplexity_table(
        base_model,
        sources,
        batch_size=params.batch_size,
        max_length=params.max_length,
    )

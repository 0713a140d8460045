"""Nodes more than one ILF stage uses: sampling, test verdicts and pass@k summaries."""

from __future__ import annotations

import pandas as pd

from ilf_kedro.execution import evaluate_node
from ilf_kedro.ilf.metrics import pass_at_k_table, summarise_pass_at_k
from ilf_kedro.ingest import tasks as task_table
from ilf_kedro.models import ModelBundle, finetune, sample_programs
from ilf_kedro.parameters import Execution, Finetune, Sampling


def select_tasks(tasks: pd.DataFrame, splits: list[str], max_tasks_per_split) -> pd.DataFrame:
    """The tasks of ``splits`` (at most ``max_tasks_per_split`` each; null for all), as
    ``task_id``, ``split``, ``prompt`` rows to sample from."""
    chosen = [task_table.select_split(tasks, split, max_tasks_per_split) for split in splits]
    return pd.concat(chosen, ignore_index=True)[["task_id", "split", "prompt"]]


def sample(model: ModelBundle, prompts: pd.DataFrame, sampling: Sampling) -> pd.DataFrame:
    """``sampling.num_samples`` programs per prompt row from ``model``, generated in
    this process (``sampling.backend: hf``) or through a served copy (``server``); every
    finished batch is kept under ``sampling.resume_dir`` so a killed run resumes."""
    return sample_programs(model, prompts, sampling)


def run_tests(
    programs: pd.DataFrame,
    tasks: pd.DataFrame,
    task_time_limits: pd.DataFrame,
    execution: Execution,
) -> pd.DataFrame:
    """Unit-test verdicts for every program row (the input columns plus the verdict), each
    program limited by its task's row of ``task_time_limits``."""
    return evaluate_node(programs, tasks, task_time_limits, execution)


def per_task_pass_rates(results: pd.DataFrame, ks: list[int]) -> pd.DataFrame:
    """Per task: n samples, c correct, pass@k for each k, and whether any passed."""
    return pass_at_k_table(results, ks=tuple(ks))


def select_annotations(
    feedback_annotations: pd.DataFrame, split: str, max_tasks_per_split
) -> pd.DataFrame:
    """The annotations of one split as programs to test (``program`` = the refinement),
    at most ``max_tasks_per_split`` of them (null for all)."""
    chosen = task_table.select_split(feedback_annotations, split, max_tasks_per_split)
    return chosen.assign(program=chosen["refinement"])


def train_model(
    base_model: ModelBundle, training_set: pd.DataFrame, params: Finetune
) -> ModelBundle:
    """Fine-tune ``base_model`` on (prompt, completion) pairs with ``params`` (Trainer
    hyperparameters, ``strategy`` full or lora, ``num_processes``); ``base_model`` is left
    as it was. An empty set returns the base model, marked as untrained."""
    return finetune(base_model, training_set, params)


def summarise_pass_rates(results: pd.DataFrame, ks: list[int]) -> pd.DataFrame:
    """One row: mean pass@k over tasks for each k, the share of tasks with at least one
    passing program, tasks, programs, and ``n`` samples per task."""
    summary = summarise_pass_at_k(results, ks=tuple(ks))
    summary["n"] = summary["n_programs"] // summary["n_tasks"] if summary["n_tasks"] else 0
    return pd.DataFrame([summary])

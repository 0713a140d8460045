"""Nodes more than one ILF stage uses: sampling, test verdicts, fine-tuning and pass@k
summaries; and the one place where the ``compute`` section picks the local or the Ray
implementation of sampling (:func:`replicas`), verdicts (:func:`judge`) and fine-tuning
(:func:`launcher`)."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

from ilf_kedro.compute.ray_sampling import RaySampling
from ilf_kedro.compute.ray_train import RayTrain
from ilf_kedro.compute.ray_verdicts import evaluate_programs_on_ray
from ilf_kedro.execution import evaluate_node, evaluate_programs
from ilf_kedro.ilf.metrics import pass_at_k_table, summarise_pass_at_k
from ilf_kedro.ingest import tasks as task_table
from ilf_kedro.models import ModelBundle, finetune, sample_programs
from ilf_kedro.models.finetune import local_launcher
from ilf_kedro.models.finetune_job import Launcher
from ilf_kedro.parameters import Compute, Execution, Finetune, Sampling


def replicas(sampling: Sampling, compute: Compute) -> RaySampling | None:
    """The replicas ``sampling.backend: ray`` samples with, on the cluster of ``compute``;
    None for the other backends."""
    return RaySampling(compute) if sampling.backend == "ray" else None


def judge(compute: Compute) -> Callable[[pd.DataFrame, pd.DataFrame, Execution], pd.DataFrame]:
    """What runs programs against their tests: here, or on the Ray cluster with
    ``compute.backend: ray`` (same verdicts)."""
    if compute.backend == "ray":
        return lambda programs, tasks, execution: evaluate_programs_on_ray(
            programs, tasks, execution, compute=compute
        )
    return evaluate_programs


def launcher(finetune_params: Finetune, compute: Compute) -> Launcher:
    """Where a fine-tune runs: a Ray Train job with ``compute.backend: ray``, else this
    machine (one process, or ``finetune.num_processes`` accelerate ranks)."""
    if compute.backend == "ray":
        return RayTrain(compute)
    return local_launcher(finetune_params)


def select_tasks(tasks: pd.DataFrame, splits: list[str], max_tasks_per_split) -> pd.DataFrame:
    """The tasks of ``splits`` (at most ``max_tasks_per_split`` each; null for all), as
    ``task_id``, ``split``, ``prompt`` rows to sample from."""
    chosen = [task_table.select_split(tasks, split, max_tasks_per_split) for split in splits]
    return pd.concat(chosen, ignore_index=True)[["task_id", "split", "prompt"]]


def sample(
    model: ModelBundle, prompts: pd.DataFrame, sampling: Sampling, compute: Compute
) -> pd.DataFrame:
    """``sampling.num_samples`` programs per prompt row from ``model``, generated in
    this process (``sampling.backend: hf``), through a served copy (``server``) or on the
    Ray cluster of ``compute`` (``ray``); every finished batch is kept under
    ``sampling.resume_dir`` so a killed run resumes."""
    return sample_programs(model, prompts, sampling, replicas=replicas(sampling, compute))


def run_tests(
    programs: pd.DataFrame,
    tasks: pd.DataFrame,
    task_time_limits: pd.DataFrame,
    execution: Execution,
    compute: Compute,
) -> pd.DataFrame:
    """Unit-test verdicts for every program row (the input columns plus the verdict), each
    program limited by its task's row of ``task_time_limits``; judged here or, with
    ``compute.backend: ray``, on the Ray cluster."""
    return evaluate_node(programs, tasks, task_time_limits, execution, judge(compute))


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
    base_model: ModelBundle,
    training_set: pd.DataFrame,
    params: Finetune,
    compute: Compute,
) -> ModelBundle:
    """Fine-tune ``base_model`` on (prompt, completion) pairs with ``params`` (Trainer
    hyperparameters, ``strategy`` full or lora, ``num_processes``), here or, with
    ``compute.backend: ray``, as a Ray Train job; ``base_model`` is left as it was. An
    empty set returns the base model, marked as untrained."""
    return finetune(base_model, training_set, params, launcher=launcher(params, compute))


def summarise_pass_rates(results: pd.DataFrame, ks: list[int]) -> pd.DataFrame:
    """One row: mean pass@k over tasks for each k, the share of tasks with at least one
    passing program, tasks, programs, and ``n`` samples per task."""
    summary = summarise_pass_at_k(results, ks=tuple(ks))
    summary["n"] = summary["n_programs"] // summary["n_tasks"] if summary["n_tasks"] else 0
    return pd.DataFrame([summary])

"""Nodes of the world pipeline: thin wrappers over ``ilf_kedro.world``."""

from __future__ import annotations

import pandas as pd

from ilf_kedro.ilf import training_sets
from ilf_kedro.ilf.metrics import pass_at_k_table
from ilf_kedro.models import ModelBundle
from ilf_kedro.parameters import Compute, Execution, Sampling, World
from ilf_kedro.pipelines.stage_nodes import run_tests, sample, select_tasks
from ilf_kedro.world import annotator, generate, pretrain


def generate_world_tasks(world: World, splits: dict) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``world.num_tasks`` tasks in MBPP's schema (ids 1.. across ``splits``), gold
    programs by the gold author -> the raw tasks, and each task's candidate programs
    (every style, right or with each known slip, with the annotator's sentence on it)."""
    gold_styles = generate.gold_author_mix(world.corpus.styles, world.gold_author.distance)
    return generate.generate_tasks(
        splits, world.num_tasks, world.families, world.seed, gold_styles=gold_styles
    )


def build_world_corpus(world: World) -> pd.DataFrame:
    """The base model's imperfect pretraining corpus (paper prompt -> program pairs)."""
    corpus = world.corpus
    return generate.generate_corpus(
        corpus.size,
        world.families,
        corpus.mistake_rates,
        corpus.seed,
        styles=corpus.styles,
        repeat_rate=corpus.repeat_rate,
    )


def pretrain_world_model(world_corpus: pd.DataFrame, world: World) -> ModelBundle:
    """A small transformer trained from scratch on ``world_corpus`` -> the base model."""
    params = world.pretraining
    return pretrain.pretrain(
        world_corpus,
        params.tiny_config,
        epochs=params.epochs,
        learning_rate=params.learning_rate,
        batch_size=params.batch_size,
        seed=params.seed,
        threads=params.threads,
    )


def sample_for_annotation(
    model: ModelBundle,
    tasks: pd.DataFrame,
    world: World,
    sampling: Sampling,
    compute: Compute,
    max_tasks_per_split,
) -> pd.DataFrame:
    """The base model's samples on the annotated splits (``world.annotator``)."""
    params = world.annotator
    prompts = select_tasks(tasks, params.splits, max_tasks_per_split)
    annotator_sampling = sampling.model_copy(update={"num_samples": params.num_samples})
    return sample(model, prompts, annotator_sampling, compute)


def annotate_failures(
    samples: pd.DataFrame,
    tasks: pd.DataFrame,
    task_time_limits: pd.DataFrame,
    candidates: pd.DataFrame,
    world: World,
    execution: Execution,
    compute: Compute,
) -> pd.DataFrame:
    """Feedback in the released schema on one failing program of each task none of whose
    samples passed (the paper's selection), for a seeded ``world.annotator.fraction`` of
    those tasks -> the annotation file ``ilf_annotations_raw`` reads."""
    params = world.annotator
    results = run_tests(samples, tasks, task_time_limits, execution, compute)
    failing = training_sets.failing_tasks(pass_at_k_table(results, ks=(1,)), tasks)
    failing = failing.sample(frac=params.fraction, random_state=params.seed)
    picked = training_sets.failing_programs(failing, results, params.seed)
    return annotator.annotate(picked, tasks, candidates)

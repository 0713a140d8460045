"""Every branch of `ilf` with rows in it: pi_Refine memorises its refinements so that they
pass, ``ilf_training_set`` has rows, and pi_theta* and the baselines are really trained."""

from __future__ import annotations

import pandas as pd
import pytest

from ilf_kedro.pipelines import model_loading
from ilf_kedro.pipelines.ilf import create_pipeline
from tests.kedro_project import copy_project, load, run_pipeline

pytestmark = pytest.mark.slow

# Refine the refine split itself with a pi_Refine that learns it by heart (greedy decoding,
# a learning rate and epochs the tiny model memorises 3 programs with), so refinements pass.
MEMORISING = {
    "feedback.source": "interpreter",
    "max_tasks_per_split": 3,
    "refinement.split": "refine",
    "finetune.learning_rate": 3.0e-3,
    "finetune.num_epochs": 80,
    "finetune.gradient_accumulation_steps": 1,
    "sampling.temperature": 0.0,
    "sampling.num_samples": 1,
    "sampling.max_new_tokens": 96,
}
# Only pi_Refine has to learn by heart: the models trained after the refinements (pi_theta*
# and the baselines) train one epoch, which trains them as really as 80 would.
ONE_EPOCH = {**MEMORISING, "finetune.num_epochs": 1}
# Empty by design in this run: the demo tasks all have prompts, an automatic feedback
# source never reads the human annotations, and no zero-shot sample of a random-weight
# model passes, so RFT has nothing to train on (tests/pipelines/evaluation covers RFT).
EMPTY_BY_DESIGN = {
    "prompt_errors.parquet",
    "human_feedback_annotations.parquet",
    "rft_training_set.parquet",
}


def test_every_dataset_of_a_run_whose_refinements_pass_holds_rows(tmp_path):
    project = copy_project(tmp_path / "project")
    # The run in two parts: up to the refinements' verdicts, then the rest of it (with the
    # base model loaded again: it lives in memory only).
    ilf = create_pipeline()
    refining = {node.name for node in ilf.to_outputs("refinement_results").nodes}
    loading = {node.name for node in model_loading.create_pipeline().nodes}
    rest = {node.name for node in ilf.nodes} - refining
    run_pipeline(project, "ilf", params=MEMORISING, to_outputs=["refinement_results"])
    run_pipeline(project, "ilf", params=ONE_EPOCH, node_names=sorted(loading | rest))

    # Every Parquet file the run wrote (shards are sampling's resume points, not datasets).
    tables = [p for p in (project / "data").rglob("*.parquet") if ".shards" not in p.parts]
    empty = {p.name for p in tables if pd.read_parquet(p).empty}
    assert empty == EMPTY_BY_DESIGN
    results = load(project, "refinement_results")
    assert results["passed"].all() and len(results) == 3
    training = load(project, "ilf_training_set")
    assert len(training) == 3
    for model in ("refiner_model", "ilf_model", "gold.model", "source_refinements.model"):
        info = load(project, model).info
        assert info["training_examples"] == 3, model
        assert not info.get("untrained_reason"), model
    metrics = load(project, "eval_metrics")
    sizes = metrics.set_index("method")["training_set_size"].drop(["zero-shot", "RFT"])
    assert (sizes == 3).all()  # ILF + RFT: ILF's 3 and RFT's none

"""RFT (rejection-sampling fine-tuning) and ILF + RFT through the demo project: the set is
zero-shot pi_theta's own passing samples on the train split, and both methods really
fine-tune on it. A random-weight model passes no test, so the run's zero-shot samples get
the gold programs of two train tasks and one refine task mixed in, judged by the real
harness, before the RFT branch runs again on them. The run is a copy of the session's
default run (``default_ilf_run``): only the RFT branches run again."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest

from ilf_kedro.ilf.prompts import completion_after_prompt
from ilf_kedro.parameters import Compute, Execution, section
from ilf_kedro.pipelines import model_loading
from ilf_kedro.pipelines.ilf import create_pipeline
from ilf_kedro.pipelines.stage_nodes import run_tests
from tests.kedro_project import catalog_path, load, run_pipeline

_MLRUNS = shutil.ignore_patterns("mlruns")
RERUN = {"sampling.max_new_tokens": 8}


def _gold_samples(project, task_ids: list[int]) -> pd.DataFrame:
    """One more zero-shot sample per task of ``task_ids``: its gold program, as pi_theta
    would have written it (the prompt, then the body)."""
    tasks = load(project, "tasks").set_index("task_id")
    extra = []
    for task_id in task_ids:
        prompt = tasks.loc[task_id, "prompt"]
        body = completion_after_prompt(tasks.loc[task_id, "gold_code"], prompt)
        extra.append(
            {"task_id": task_id, "split": tasks.loc[task_id, "split"], "sample_idx": 99}
            | {"prompt": prompt, "completion": body, "program": prompt + body}
        )
    return pd.DataFrame(extra)


@pytest.mark.slow
def test_rft_and_ilf_rft_fine_tune_on_the_passing_train_samples(default_ilf_run, tmp_path):
    # MLflow's runs stay behind: this run logs its own.
    project = shutil.copytree(default_ilf_run, tmp_path / "project", ignore=_MLRUNS)
    tasks = load(project, "tasks")
    train = tasks.loc[tasks["split"] == "train", "task_id"].head(2).tolist()
    refine = tasks.loc[tasks["split"] == "refine", "task_id"].head(1).tolist()
    gold = _gold_samples(project, train + refine)
    execution = section(Execution, load(project, "params:execution"), "execution")
    judged = run_tests(gold, tasks, load(project, "task_time_limits"), execution, Compute())
    assert judged["passed"].all()  # gold programs pass
    # The run's own verdicts on its samples (none passes), then the gold programs'.
    results = pd.concat([load(project, "initial_sample_results"), judged], ignore_index=True)
    results.to_parquet(catalog_path(project, "initial_sample_results"))

    again = [n.name for n in create_pipeline().nodes if n.namespace in ("rft", "ilf_rft")]
    loading = [n.name for n in model_loading.create_pipeline().nodes]
    # Shorter test samples than the run's: the point is what the two methods train on.
    run_pipeline(project, "ilf", params=RERUN, node_names=[*loading, *again])
    run_pipeline(project, "ilf", node_names=["combine_method_metrics"])

    rft = load(project, "rft_training_set")
    assert rft["task_id"].tolist() == train  # the refine task's gold sample is left out
    gold = tasks.set_index("task_id").loc[train]
    assert rft["completion"].tolist() == [
        completion_after_prompt(code, prompt)
        for code, prompt in zip(gold["gold_code"], gold["prompt"], strict=True)
    ]
    ilf = load(project, "ilf_training_set")
    both = load(project, "ilf_rft.training_set")
    assert len(both) == len(pd.concat([ilf, rft]).drop_duplicates(["task_id", "completion"]))
    for model, size in (("rft.model", len(rft)), ("ilf_rft.model", len(both))):
        info = load(project, model).info
        assert info["training_examples"] == size, model
        assert not info.get("untrained_reason"), model
    metrics = load(project, "eval_metrics").set_index("method")
    assert metrics.loc["RFT", "training_set_size"] == len(rft)
    assert metrics.loc["ILF + RFT", "training_set_size"] == len(both)
    assert metrics.loc["RFT", "feedback_source"] == "none"
    assert metrics.loc["ILF + RFT", "feedback_source"] == "human"

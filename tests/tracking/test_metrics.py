"""ilf_kedro.tracking.metrics: an ILF run's tables as metrics for kedro-mlflow's datasets."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ilf_kedro.tracking import metrics as tracking

EVAL_METRICS = pd.DataFrame(
    {
        "method": ["zero-shot", "ILF", "MBPP gold"],
        "feedback_source": ["none", "human", "none"],
        "pass@1": [0.25, 0.375, 0.2],
        "pass@10": [0.6, 0.7, np.nan],
        "any_correct": [0.6, 0.7, 0.65],
        "n_tasks": [8, 8, 8],
        "training_set_size": [0, 5, 5],
        "random_weights": [True, True, True],
    }
)


def test_metric_keys_are_mlflow_names():
    assert tracking.metric_key("ILF", "pass@1") == "ILF.pass_at_1"
    assert tracking.metric_key("MBPP gold", "pass@10") == "MBPP_gold.pass_at_10"
    assert tracking.metric_key("1-shot refiner", "any_correct") == "1-shot_refiner.any_correct"
    assert tracking.metric_key("ILF + RFT", "pass@1") == "ILF_RFT.pass_at_1"


def test_eval_metrics_become_method_pass_at_k_metrics():
    values = tracking.eval_metric_values(EVAL_METRICS)
    assert values["ILF.pass_at_1"] == {"value": 0.375, "step": 0}
    assert values["zero-shot.pass_at_10"]["value"] == 0.6
    assert values["MBPP_gold.training_set_size"]["value"] == 5
    assert "MBPP_gold.pass_at_10" not in values  # NaN is left out
    assert not any("random_weights" in key or "feedback_source" in key for key in values)
    other_set = EVAL_METRICS.assign(task_set=["mbpp", "humaneval", "humaneval"])
    values = tracking.eval_metric_values(other_set)
    assert values["zero-shot.pass_at_1"]["value"] == 0.25
    assert values["ILF.humaneval.pass_at_1"]["value"] == 0.375
    assert "ILF.pass_at_1" not in values


def test_refinement_and_annotation_statistics_become_metrics():
    stats = pd.DataFrame(
        [{"pass@1": 0.19, "pass@10": np.nan, "any_correct": 0.61, "n_tasks": 4, "note": "x"}]
    )
    values = tracking.refinement_metric_values(stats)
    assert values == {
        "pass_at_1": {"value": 0.19, "step": 0},
        "any_correct": {"value": 0.61, "step": 0},
        "n_tasks": {"value": 4.0, "step": 0},
    }
    assert tracking.refinement_metric_values(stats.iloc[:0]) == {}
    annotations = pd.DataFrame({"split": ["refine", "train"], "annotations": [44, 128]})
    assert tracking.annotation_metric_values(annotations) == {
        "refine": {"value": 44.0, "step": 0},
        "train": {"value": 128.0, "step": 0},
    }
    assert tracking.annotation_metric_values(pd.DataFrame({"split": []})) == {}


def test_sample_efficiency_becomes_pass_at_k_per_method_against_annotations():
    from ilf_kedro.tracking.metrics import sample_efficiency_metric_values

    table = pd.DataFrame(
        {
            "share": [0.0, 0.5, 0.5, 1.0, 1.0],
            "annotations": [0, 10, 10, 20, 20],
            "method": ["zero-shot", "ILF", "MBPP gold", "ILF", "MBPP gold"],
            "pass@1": [0.4, 0.6, 0.5, 0.7, float("nan")],
        }
    )
    values = sample_efficiency_metric_values(table)
    assert values == {
        "zero-shot.pass_at_1": [{"value": 0.4, "step": 0}],
        "ILF.pass_at_1": [{"value": 0.6, "step": 10}, {"value": 0.7, "step": 20}],
        "MBPP_gold.pass_at_1": [{"value": 0.5, "step": 10}],
    }

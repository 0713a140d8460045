"""ilf_kedro.tracking: metrics for kedro-mlflow's datasets, the run's name and tags, the store."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ilf_kedro import tracking

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


def test_run_name_and_tags_come_from_the_parameters(tmp_path):
    params = {
        "base_model": "tiny-random",
        "feedback": {"source": "interpreter"},
        "refiner": {"kind": "few_shot"},
    }
    assert tracking.run_name("ilf", params) == "ilf (tiny-random, interpreter feedback)"
    assert tracking.run_tags(params) == {
        "base_model": "tiny-random",
        "feedback_source": "interpreter",
        "refiner_kind": "few_shot",
        "random_weights": "true",
    }
    pretrained = {**params, "base_model": "Salesforce/codegen-6B-mono"}
    assert tracking.run_tags(pretrained)["random_weights"] == "false"
    # A directory the project saved says itself whether its weights are random.
    saved = tmp_path / "model"
    saved.mkdir()
    (saved / "ilf_model_info.json").write_text('{"random_weights": true}')
    assert tracking.run_tags({**params, "base_model": str(saved)})["random_weights"] == "true"


def test_a_relative_sqlite_store_lives_under_the_project(tmp_path):
    config = {"server": {"mlflow_tracking_uri": "sqlite:///mlruns/mlflow.db"}, "ui": {"port": "1"}}
    resolved = tracking.resolve_store(config, None, tmp_path)
    database = tmp_path / "mlruns" / "mlflow.db"
    assert resolved["server"]["mlflow_tracking_uri"] == f"sqlite:///{database.as_posix()}"
    assert database.parent.is_dir()
    kwargs = resolved["tracking"]["experiment"]["create_experiment_kwargs"]
    assert kwargs["artifact_location"] == (tmp_path / "mlruns" / "artifacts").as_uri()
    assert resolved["ui"] == {"port": "1"}
    assert config["server"]["mlflow_tracking_uri"] == "sqlite:///mlruns/mlflow.db"  # untouched


def test_the_environment_wins_and_a_server_keeps_its_own_artifacts(tmp_path):
    config = {"server": {"mlflow_tracking_uri": "sqlite:///mlruns/mlflow.db"}}
    other = tmp_path / "elsewhere" / "store.db"
    resolved = tracking.resolve_store(config, f"sqlite:///{other}", tmp_path)
    assert resolved["server"]["mlflow_tracking_uri"] == f"sqlite:///{other.as_posix()}"
    assert not (tmp_path / "mlruns").exists()
    served = tracking.resolve_store(config, "http://127.0.0.1:5000", tmp_path)
    assert served["server"]["mlflow_tracking_uri"] == "http://127.0.0.1:5000"
    assert served["tracking"]["experiment"]["create_experiment_kwargs"] == {}
    assert tracking.resolve_store({}, None, tmp_path)["server"]["mlflow_tracking_uri"] == (
        f"sqlite:///{(tmp_path / 'mlruns' / 'mlflow.db').as_posix()}"
    )


def test_a_store_folder_that_cannot_exist_raises(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("a file where the store's folder should be")
    with pytest.raises(OSError):
        tracking.resolve_store({}, f"sqlite:///{Path(blocker) / 'mlflow.db'}", tmp_path)

"""ilf_kedro.tracking.runs: the run's name and tags, the store."""

from __future__ import annotations

from pathlib import Path

import pytest

from ilf_kedro.tracking import runs as tracking


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


def test_unset_choices_are_named_by_the_schema_defaults():
    """A run without ``feedback.source`` or ``refiner.kind`` uses the schema's defaults;
    its name and tags say so (one source for them)."""
    params = {"base_model": "tiny-random"}
    assert tracking.run_name("ilf", params) == "ilf (tiny-random, human feedback)"
    tags = tracking.run_tags(params)
    assert (tags["feedback_source"], tags["refiner_kind"]) == ("human", "finetuned")


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

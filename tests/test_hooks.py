"""ilf_kedro.hooks in real runs: the shared default `kedro run --pipelines=ilf` (conftest's
``default_ilf_run``) is tracked in the SQLite store of its project, and `reporting` re-run
on copies of it shows the parameter checks coming first, tracking switched off and a store
out of reach (a warning, never a failed run)."""

from __future__ import annotations

import logging
import math
import os
import shutil

import mlflow
import pandas as pd
import pytest
from kedro.io import DataCatalog, MemoryDataset
from kedro.pipeline import Node, Pipeline

from ilf_kedro import hooks
from ilf_kedro.infra.ports import free_port
from ilf_kedro.tracking.metrics import metric_key
from tests.conftest import NUM_SAMPLES, mlflow_uris_kept
from tests.kedro_project import mlflow_client, mlflow_runs, run_pipeline

REPORTS = "data/08_reporting"
# The files `reporting` writes through MlflowArtifactDataset (logged under reports/).
REPORT_FILES = (
    "comparison_table.md",
    "pass_at_k.png",
    "perplexity_histogram.png",
    "feedback_lengths.png",
    "run_summary.txt",
)
tracked = pytest.mark.skipif(
    not hooks.tracking_switched_on(), reason=f"MLflow tracking switched off by {hooks.ENV_SWITCH}"
)


class _Records(logging.Handler):
    """The messages of one logger. Kedro configures logging again whenever a session
    starts, which drops caplog's handler from the root logger, so tests listen here."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())

    @property
    def text(self) -> str:
        return "\n".join(self.messages)


@pytest.fixture
def hook_log():
    """What ilf_kedro.hooks logs during the test."""
    from kedro.framework.project import configure_project

    # Kedro configures the project's loggers once per process, at its first session, and
    # that drops the handlers already on them: done before the handler is added.
    configure_project("ilf_kedro")
    logger, records = logging.getLogger("ilf_kedro.hooks"), _Records()
    logger.addHandler(records)
    yield records
    logger.removeHandler(records)


@tracked
def test_the_default_run_is_tracked_in_mlflow(default_ilf_run):
    (run,) = mlflow_runs(default_ilf_run)
    assert run.info.status == "FINISHED"
    assert run.info.run_name == "ilf (tiny-random, human feedback)"
    tags = run.data.tags
    assert tags["base_model"] == "tiny-random" and tags["random_weights"] == "true"
    assert tags["feedback_source"] == "human" and tags["refiner_kind"] == "finetuned"
    assert tags["kedro_command"] == "kedro run --pipeline=ilf"
    logged = run.data.metrics
    eval_metrics = pd.read_parquet(default_ilf_run / REPORTS / "eval_metrics.parquet")
    for row in eval_metrics.to_dict("records"):
        for column in ("pass@1", "pass@10"):
            key = metric_key(row["method"], column)
            if math.isnan(row[column]):
                assert key not in logged
            else:
                assert logged[key] == pytest.approx(row[column])
    assert "ILF.pass_at_1" in logged
    stats = pd.read_parquet(default_ilf_run / REPORTS / "refinement_stats.parquet").iloc[0]
    assert logged["refinement.pass_at_1"] == pytest.approx(stats["pass@1"])
    annotations = pd.read_parquet(default_ilf_run / REPORTS / "annotation_stats.parquet")
    for row in annotations.to_dict("records"):
        assert logged[f"annotations.{row['split']}"] == row["annotations"]
    params = run.data.params
    assert params["sampling.num_samples"] == str(NUM_SAMPLES)
    assert params["base_model"] == "tiny-random"
    assert params["splits.train"] == "[311, 974]"  # every parameter, not only nodes' ones
    client = mlflow_client(default_ilf_run)
    models = {a.path for a in client.list_artifacts(run.info.run_id, "models")}
    assert {"models/refiner_model", "models/ilf_model"} <= models
    weights = {a.path for a in client.list_artifacts(run.info.run_id, "models/ilf_model")}
    assert "models/ilf_model/ilf_model_info.json" in weights
    reports = {a.path for a in client.list_artifacts(run.info.run_id, "reports")}
    assert {f"reports/{name}" for name in REPORT_FILES} <= reports


@pytest.fixture
def finished_run(default_ilf_run, tmp_path):
    """A copy of the default run without its reports, for `reporting` to write again."""
    project = shutil.copytree(default_ilf_run, tmp_path / "project")
    for name in REPORT_FILES:
        (project / REPORTS / name).unlink()
    return project


@pytest.mark.parametrize("store", ["a file where its folder should be", "a closed port"])
def test_a_store_out_of_reach_warns_and_the_run_goes_on(store, finished_run, monkeypatch, hook_log):
    if store == "a closed port":
        monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{free_port()}")
        monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    else:
        blocker = finished_run / "not_a_folder"
        blocker.write_text("")
        monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{blocker}/mlflow.db")
    monkeypatch.delenv(hooks.ENV_SWITCH, raising=False)
    run_pipeline(finished_run, "reporting")
    assert "MLflow tracking: could not set up tracking" in hook_log.text
    for name in REPORT_FILES:
        assert (finished_run / REPORTS / name).stat().st_size > 0, name


@tracked
def test_tracking_switched_off_logs_nothing(finished_run, monkeypatch, hook_log):
    before = len(mlflow_runs(finished_run))
    monkeypatch.setenv(hooks.ENV_SWITCH, "false")
    run_pipeline(finished_run, "reporting")
    assert "MLflow tracking is off (ILF_KEDRO_MLFLOW=false)" in hook_log.text
    assert "could not" not in hook_log.text
    assert (finished_run / REPORTS / "run_summary.txt").read_text().startswith("ILF run summary")
    assert len(mlflow_runs(finished_run)) == before
    monkeypatch.delenv(hooks.ENV_SWITCH)
    run_pipeline(finished_run, "reporting")
    (*_, latest) = mlflow_runs(finished_run)
    assert len(mlflow_runs(finished_run)) == before + 1
    assert latest.info.run_name == "reporting (tiny-random, human feedback)"
    assert latest.info.status == "FINISHED"
    assert mlflow.active_run() is None  # nothing left open for the next session


@tracked
def test_a_threaded_run_tracks_every_node_into_its_one_run(finished_run):
    # Nodes run in other threads than the session's, which has the run open: each thread
    # reopens it, so the reports logged there land in this run, not in runs of their own.
    from kedro.runner import ThreadRunner

    before = len(mlflow_runs(finished_run))
    run_pipeline(finished_run, "reporting", runner=ThreadRunner(max_workers=2))
    (*_, latest) = mlflow_runs(finished_run)
    assert len(mlflow_runs(finished_run)) == before + 1
    assert latest.info.status == "FINISHED"
    assert latest.data.params["splits.train"] == "[311, 974]"  # every parameter, once
    client = mlflow_client(finished_run)
    reports = {a.path for a in client.list_artifacts(latest.info.run_id, "reports")}
    assert {f"reports/{name}" for name in REPORT_FILES} <= reports
    assert mlflow.active_run() is None


@tracked
def test_each_session_of_a_process_tracks_into_its_own_project(
    default_ilf_run, tmp_path, monkeypatch
):
    """MLflow exports the store it is given to os.environ: the hook takes it back, so a
    second project run in the same process (a notebook, a test) tracks into its own."""
    for name in hooks.MLFLOW_EXPORTED_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv(hooks.ENV_SWITCH, raising=False)
    projects = [shutil.copytree(default_ilf_run, tmp_path / name) for name in ("one", "two")]
    for project in projects:
        run_pipeline(project, "reporting")
        assert not set(hooks.MLFLOW_EXPORTED_VARIABLES) & set(os.environ)
    for project in projects:
        (run,) = mlflow_runs(project)
        assert run.info.run_name == "reporting (tiny-random, human feedback)"


@tracked
def test_parameters_are_checked_before_a_run_starts(finished_run):
    before = len(mlflow_runs(finished_run))
    with pytest.raises(ValueError, match="feedback.source"):
        run_pipeline(finished_run, "reporting", params={"feedback.source": "oracle"})
    assert len(mlflow_runs(finished_run)) == before


def test_the_run_summary_is_logged_when_the_run_ends(caplog):
    pipeline = Pipeline([Node(str.strip, "eval_metrics", "run_summary", name="summarise")])
    catalog = DataCatalog({"run_summary": MemoryDataset("ILF run summary\n  tasks: 3")})
    with caplog.at_level(logging.INFO, logger="ilf_kedro.hooks"):
        hooks.RunSummaryHooks().after_pipeline_run({}, {}, pipeline, catalog)
    assert "ILF run summary" in caplog.text
    caplog.clear()
    other = Pipeline([Node(str.strip, "eval_metrics", "comparison", name="compare")])
    hooks.RunSummaryHooks().after_pipeline_run({}, {}, other, catalog)
    assert "ILF run summary" not in caplog.text


def test_a_run_that_cannot_be_ended_is_reported_not_swallowed(tmp_path, monkeypatch, hook_log):
    def store_gone(status="FINISHED"):
        raise ConnectionError("the tracking store went away")

    with mlflow_uris_kept(f"sqlite:///{tmp_path / 'mlflow.db'}"):
        experiment = mlflow.MlflowClient().create_experiment("hook-test")
        run = mlflow.start_run(experiment_id=experiment)
        hook = hooks.MLflowTrackingHooks()
        hook.run_id = run.info.run_id
        with monkeypatch.context() as patched:
            patched.setattr(mlflow, "end_run", store_gone)
            hook._switch_off("a test")
        mlflow.end_run()
    assert hook.run_id is None
    assert f"could not mark run {run.info.run_id} failed" in hook_log.text
    assert "the tracking store went away" in hook_log.text


@pytest.mark.parametrize("strategy", ["tag", "truncate", "fail"])
def test_a_long_parameter_follows_mlflow_yml_long_params_strategy(strategy, tmp_path):
    from kedro_mlflow.config.kedro_mlflow_config import KedroMlflowConfig
    from mlflow.utils.validation import MAX_PARAM_VAL_LENGTH

    hook = hooks.MLflowTrackingHooks()
    hook.mlflow_config = KedroMlflowConfig.model_validate(
        {"tracking": {"params": {"long_params_strategy": strategy}}}
    )
    hook.flatten = True  # what kedro-mlflow's before_pipeline_run reads from mlflow.yml
    long = "x" * (MAX_PARAM_VAL_LENGTH + 1)
    with mlflow_uris_kept(f"sqlite:///{tmp_path / 'mlflow.db'}"):
        run = mlflow.start_run(experiment_id=mlflow.MlflowClient().create_experiment("long"))
        try:
            if strategy == "fail":
                with pytest.raises(ValueError, match="long_params_strategy in mlflow.yml"):
                    hook._log_parameters({"feedback": {"template": long}, "seed": 3})
            else:
                hook._log_parameters({"feedback": {"template": long}, "seed": 3})
        finally:
            mlflow.end_run()
        data = mlflow.get_run(run.info.run_id).data
    if strategy == "fail":
        assert data.params == {}
    elif strategy == "tag":
        assert data.params == {"seed": "3"} and data.tags["feedback.template"] == long
    else:
        assert data.params == {"seed": "3", "feedback.template": long[:MAX_PARAM_VAL_LENGTH]}


@tracked
def test_a_pipeline_disabled_in_mlflow_yml_runs_untracked(finished_run, monkeypatch, hook_log):
    import yaml

    config_path = finished_run / "conf/base/mlflow.yml"
    config = yaml.safe_load(config_path.read_text())
    config["tracking"]["disable_tracking"]["pipelines"] = ["reporting"]
    config_path.write_text(yaml.safe_dump(config))
    monkeypatch.delenv(hooks.ENV_SWITCH, raising=False)
    before = len(mlflow_runs(finished_run))
    run_pipeline(finished_run, "reporting")
    assert len(mlflow_runs(finished_run)) == before
    assert "could not" not in hook_log.text
    assert (finished_run / REPORTS / "run_summary.txt").read_text().startswith("ILF run summary")
    assert mlflow.active_run() is None

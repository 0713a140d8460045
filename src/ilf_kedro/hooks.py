"""Project hooks: the run summary at the end of a run, and MLflow experiment tracking.

``MLflowTrackingHooks`` calls mlflow's ``MlflowClient`` directly (no kedro-mlflow: the
plugin's default ``./mlruns`` file store makes mlflow 3.x refuse to start). Every
``kedro run`` becomes one MLflow run that holds:

- parameters: the run's Kedro parameters, flattened (``sampling.num_samples``...);
- metrics: ``eval_metrics`` as ``<method>.pass_at_<k>`` (and training-set size, share
  of tasks with a correct program), ``refinement_stats`` as ``refinement.*``,
  ``annotation_stats`` as ``annotations.<split>``;
- tags: the Kedro pipeline, environment and session, the base model, the feedback source
  and whether the weights were random;
- artifacts: the report files and the fine-tuned model directories (``refiner_model``,
  ``ilf_model``) that the run wrote.

Configuration: the ``mlflow`` parameters (conf/base/parameters_reporting.yml). The
``MLFLOW_TRACKING_URI`` environment variable overrides ``mlflow.tracking_uri``;
``ILF_KEDRO_MLFLOW=false`` (or ``0``/``off``/``no``) switches tracking off, ``true``
switches it on. A tracking failure logs a warning and never fails the run.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
from pathlib import Path
from typing import Any

from kedro.framework.hooks import hook_impl

logger = logging.getLogger(__name__)

ENV_SWITCH = "ILF_KEDRO_MLFLOW"
DEFAULT_TRACKING_URI = "sqlite:///mlruns/mlflow.db"
MAX_PARAM_LENGTH = 6000  # mlflow's limit on a parameter value
BATCH = 100  # mlflow's limit on params per log_batch call
RUN_SUMMARY = "run_summary"


class ParameterCheckHooks:
    """Checks the run's parameters before any node runs (``ilf_kedro.run_checks``), and
    tells ``ilf_rounds`` how many rounds and ``evaluation`` which test sets to build before
    Kedro builds the pipelines."""

    @hook_impl
    def after_context_created(self, context) -> None:
        from ilf_kedro.pipelines.evaluation import plan_task_sets
        from ilf_kedro.pipelines.ilf_rounds import plan_rounds

        # The config loader, not context.params: reading those builds every pipeline
        # (Kedro validates them against node type hints), before the plan is known.
        params = context.config_loader["parameters"]
        plan_rounds(params)
        plan_task_sets(params, catalog_entries=context.config_loader["catalog"].keys())

    @hook_impl
    def before_pipeline_run(self, run_params, pipeline, catalog) -> None:
        from ilf_kedro.pipelines.evaluation import check_test_sets
        from ilf_kedro.run_checks import check_parameters

        rounds = any((node.namespace or "").startswith("round_") for node in pipeline.nodes)
        check_parameters(catalog.load("parameters"), rounds=rounds)
        # Malformed test-set rows stop the run before any node (or model) runs.
        check_test_sets(pipeline.inputs(), catalog.load)


class RunSummaryHooks:
    """Logs the ``run_summary`` text (pipeline ``reporting``) when a run that wrote it ends."""

    @hook_impl
    def after_pipeline_run(self, run_params, run_result, pipeline, catalog) -> None:
        if RUN_SUMMARY not in pipeline.all_outputs():
            return
        try:
            logger.info("\n%s", catalog.load(RUN_SUMMARY))
        except Exception as exc:  # noqa: BLE001 - a summary must never fail the run
            logger.warning("Could not log the run summary: %s", exc)


def flatten(params: Any, prefix: str = "") -> dict[str, str]:
    """Nested parameters -> ``{"a.b.c": "value"}``; lists become JSON, values strings
    of at most ``MAX_PARAM_LENGTH`` characters."""
    if isinstance(params, dict):
        flat: dict[str, str] = {}
        for key, value in params.items():
            flat.update(flatten(value, f"{prefix}{key}."))
        return flat
    if isinstance(params, (list, tuple)):
        text = json.dumps(list(params), default=str)
    else:
        text = "null" if params is None else str(params)
    return {prefix[:-1]: text[:MAX_PARAM_LENGTH]}


def metric_key(*parts: Any) -> str:
    """MLflow metric name from parts: ``("MBPP gold", "pass@1")`` -> ``MBPP_gold.pass_at_1``."""
    cleaned = []
    for part in parts:
        text = str(part).replace("@", "_at_")
        cleaned.append(re.sub(r"[^0-9A-Za-z_\-/.]+", "_", text).strip("_"))
    return ".".join(cleaned)


def _switch(value: str | None) -> bool | None:
    if value is None or not value.strip():
        return None
    return value.strip().lower() not in {"0", "false", "off", "no"}


def tracking_enabled(config: dict) -> bool:
    """``ILF_KEDRO_MLFLOW`` when set, else ``config['enabled']`` (default true)."""
    from_env = _switch(os.environ.get(ENV_SWITCH))
    if from_env is not None:
        return from_env
    enabled = config.get("enabled", True)
    # --params=mlflow.enabled=false may arrive as the string "false".
    return _switch(enabled) is not False if isinstance(enabled, str) else bool(enabled)


def resolve_tracking_uri(config: dict, project_path: Path) -> str:
    """``MLFLOW_TRACKING_URI`` or ``config['tracking_uri']``; a relative SQLite path is
    made absolute under ``project_path`` and its folder created."""
    uri = os.environ.get("MLFLOW_TRACKING_URI") or config.get("tracking_uri")
    uri = uri or DEFAULT_TRACKING_URI
    prefix = "sqlite:///"
    if uri.startswith(prefix):
        path = Path(uri[len(prefix) :])
        if not path.is_absolute():
            path = Path(project_path) / path
        path.parent.mkdir(parents=True, exist_ok=True)
        uri = prefix + path.resolve().as_posix()
    return uri


def resolve_artifact_location(config: dict, tracking_uri: str, project_path: Path) -> str | None:
    """Where a new experiment keeps artifacts: ``config['artifact_location']`` (relative:
    under the project), else ``artifacts/`` beside a SQLite db, else the server's default."""
    location = config.get("artifact_location")
    if location:
        if "://" in str(location):
            return str(location)
        path = Path(location)
        return (path if path.is_absolute() else Path(project_path) / path).resolve().as_uri()
    if tracking_uri.startswith("sqlite:///"):
        return (Path(tracking_uri[len("sqlite:///") :]).parent / "artifacts").resolve().as_uri()
    return None


def _dataset_path(catalog, name: str) -> Path | None:
    """Local path of a file/directory dataset (its current version), or None."""
    try:
        dataset = catalog.get(name)
    except Exception:  # noqa: BLE001
        return None
    if dataset is None:
        return None
    for getter in ("_get_load_path", "_get_save_path"):
        try:
            path = Path(str(getattr(dataset, getter)()))
        except Exception:  # noqa: BLE001
            continue
        if path.exists():
            return path
    path = getattr(dataset, "_filepath", None)
    return Path(str(path)) if path is not None and Path(str(path)).exists() else None


class MLflowTrackingHooks:
    """One MLflow run per Kedro run (see the module docstring)."""

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self._client = None
        self._run_id: str | None = None
        self._params: dict = {}
        self._project_path = Path.cwd()
        self._env: str | None = None

    # ---- safety: a tracking problem warns once and switches tracking off for the run
    def _safely(self, what: str, func, *args, **kwargs):
        if self._client is None:
            return None
        try:
            return func(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - tracking must never fail the run
            logger.warning("MLflow tracking: could not %s (%s); tracking is off.", what, exc)
            self._client = None
            return None

    @hook_impl
    def after_context_created(self, context) -> None:
        self._reset()
        try:
            self._params = dict(context.params)
        except Exception as exc:  # noqa: BLE001
            logger.warning("MLflow tracking: could not read the parameters (%s).", exc)
        self._project_path = Path(context.project_path)
        self._env = getattr(context, "env", None)

    @hook_impl
    def before_pipeline_run(self, run_params, pipeline, catalog) -> None:
        config = dict(self._params.get("mlflow") or {})
        if not tracking_enabled(config):
            logger.info("MLflow tracking is off (mlflow.enabled / %s).", ENV_SWITCH)
            return
        try:
            self._start(run_params, config)
        except Exception as exc:  # noqa: BLE001
            logger.warning("MLflow tracking: could not start a run (%s); tracking is off.", exc)
            self._client = None

    def _start(self, run_params: dict, config: dict) -> None:
        from mlflow.entities import Param, RunTag
        from mlflow.tracking import MlflowClient

        uri = resolve_tracking_uri(config, self._project_path)
        client = MlflowClient(tracking_uri=uri)
        name = config.get("experiment_name") or "ilf-kedro"
        experiment = client.get_experiment_by_name(name)
        if experiment is None:
            experiment_id = client.create_experiment(
                name, artifact_location=resolve_artifact_location(config, uri, self._project_path)
            )
        else:
            experiment_id = experiment.experiment_id
        pipeline_names = run_params.get("pipeline_names") or [
            run_params.get("pipeline_name") or "__default__"
        ]
        pipeline_label = "+".join(str(p) for p in pipeline_names)
        feedback = self._params.get("feedback") or {}
        refiner = self._params.get("refiner") or {}
        tags = {
            "kedro.pipeline": pipeline_label,
            "kedro.env": str(run_params.get("env") or self._env or "local"),
            "kedro.session_id": str(run_params.get("session_id", "")),
            "kedro.project_path": str(self._project_path),
            "base_model": str(self._params.get("base_model", "")),
            "feedback_source": str(feedback.get("source", "")),
            "refiner_kind": str(refiner.get("kind", "")),
        }
        run = client.create_run(
            experiment_id,
            run_name=f"{pipeline_label} ({tags['base_model']}, {tags['feedback_source']} feedback)",
            tags=tags,
        )
        self._client, self._run_id = client, run.info.run_id
        params = flatten({k: v for k, v in self._params.items() if k != "mlflow"})
        items = [Param(key, value) for key, value in sorted(params.items())]
        for start in range(0, len(items), BATCH):
            self._safely(
                "log parameters",
                client.log_batch,
                self._run_id,
                params=items[start : start + BATCH],
            )
        self._safely("tag the run", client.log_batch, self._run_id, tags=[RunTag("ilf", "1")])
        logger.info("MLflow tracking: run %s in %s (experiment %r).", self._run_id, uri, name)

    @hook_impl
    def after_pipeline_run(self, run_params, run_result, pipeline, catalog) -> None:
        if self._client is None:
            return
        config = dict(self._params.get("mlflow") or {})
        outputs = pipeline.all_outputs()
        metrics = {}
        for name, collect in (
            ("eval_metrics", eval_metric_values),
            ("refinement_stats", refinement_metric_values),
            ("annotation_stats", annotation_metric_values),
        ):
            if name in outputs:
                table = self._safely(f"load {name}", catalog.load, name)
                if table is not None:
                    metrics.update(self._safely(f"read {name}", collect, table) or {})
                    if name == "eval_metrics" and "random_weights" in table:
                        random = str(bool(table["random_weights"].any())).lower()
                        self._safely(
                            "tag", self._client.set_tag, self._run_id, "random_weights", random
                        )
        self._log_metrics(metrics)
        for name in config.get("log_artifacts") or []:
            if name in outputs:
                self._log_path(catalog, name, "reports")
        for name in config.get("log_models") or []:
            if name in outputs:
                self._log_path(catalog, name, f"models/{name}")
        self._end("FINISHED")

    @hook_impl
    def on_pipeline_error(self, error, run_params, pipeline, catalog) -> None:
        if self._client is not None:
            self._safely("tag the error", self._client.set_tag, self._run_id, "error", str(error))
            self._end("FAILED")

    def _log_metrics(self, metrics: dict[str, float]) -> None:
        import time

        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        items = [
            Metric(key, float(value), now, 0)
            for key, value in sorted(metrics.items())
            if value is not None and not math.isnan(float(value))
        ]
        for start in range(0, len(items), BATCH):
            self._safely(
                "log metrics",
                self._client.log_batch,
                self._run_id,
                metrics=items[start : start + BATCH],
            )

    def _log_path(self, catalog, name: str, artifact_path: str) -> None:
        path = _dataset_path(catalog, name)
        if path is None:
            return
        if path.is_dir():
            self._safely(
                f"log {name}", self._client.log_artifacts, self._run_id, str(path), artifact_path
            )
        else:
            self._safely(
                f"log {name}", self._client.log_artifact, self._run_id, str(path), artifact_path
            )

    def _end(self, status: str) -> None:
        self._safely("end the run", self._client.set_terminated, self._run_id, status)
        self._client, self._run_id = None, None


def _finite(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) or math.isinf(number) else number


def eval_metric_values(eval_metrics) -> dict[str, float]:
    """``eval_metrics`` rows -> ``{"<method>.pass_at_<k>": value, ...}`` (also
    ``any_correct``, ``training_set_size``, ``n_tasks``); NaN values are left out. Rows of
    a test set other than MBPP's get the set in the key: ``<method>.<set>.pass_at_<k>``."""
    wanted = [c for c in eval_metrics.columns if str(c).startswith("pass@")]
    wanted += [c for c in ("any_correct", "training_set_size", "n_tasks") if c in eval_metrics]
    values = {}
    for row in eval_metrics.to_dict("records"):
        for column in wanted:
            number = _finite(row.get(column))
            if number is None:
                continue
            task_set = row.get("task_set") or "mbpp"
            prefix = [row["method"]] if task_set == "mbpp" else [row["method"], task_set]
            values[metric_key(*prefix, column)] = number
    return values


def refinement_metric_values(refinement_stats) -> dict[str, float]:
    """``refinement_stats`` (one row) -> ``{"refinement.pass_at_1": ..., ...}``."""
    values = {}
    for row in refinement_stats.head(1).to_dict("records"):
        for column, value in row.items():
            number = _finite(value)
            if number is not None and not isinstance(value, bool | str):
                values[metric_key("refinement", column)] = number
    return values


def annotation_metric_values(annotation_stats) -> dict[str, float]:
    """``annotation_stats`` -> ``{"annotations.<split>": count, ...}``."""
    values = {}
    if {"split", "annotations"} <= set(annotation_stats.columns):
        for row in annotation_stats.to_dict("records"):
            number = _finite(row["annotations"])
            if number is not None:
                values[metric_key("annotations", row["split"])] = number
    return values

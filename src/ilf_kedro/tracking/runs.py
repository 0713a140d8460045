"""An ILF run in MLflow, as plain data (no Kedro, no MLflow calls): its name and tags from
the run's parameters, and where a local store lives (``MLFLOW_TRACKING_URI`` wins over
``mlflow.yml``; a relative SQLite path is under the project root, with its artifacts beside
it)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ilf_kedro.models.loading import declares_random_weights
from ilf_kedro.parameters import Feedback, Refiner

SQLITE = "sqlite:///"
DEFAULT_TRACKING_URI = f"{SQLITE}mlruns/mlflow.db"


def _chosen(params: Mapping[str, Any], section: str, model, key: str) -> str:
    """``params[section][key]`` as the run uses it: the schema's default when unset."""
    return str((params.get(section) or {}).get(key, model.model_fields[key].default))


def run_name(pipeline: str, params: Mapping[str, Any]) -> str:
    """``"ilf (tiny-random, human feedback)"``: the pipeline, base model, feedback source."""
    source = _chosen(params, "feedback", Feedback, "source")
    return f"{pipeline} ({params.get('base_model', '')}, {source} feedback)"


def run_tags(params: Mapping[str, Any]) -> dict[str, str]:
    """The choices a run is compared by: base model, feedback source, refiner kind and
    whether the base model's weights are random (``true``/``false``)."""
    base_model = str(params.get("base_model", ""))
    return {
        "base_model": base_model,
        "feedback_source": _chosen(params, "feedback", Feedback, "source"),
        "refiner_kind": _chosen(params, "refiner", Refiner, "kind"),
        "random_weights": str(declares_random_weights(base_model)).lower(),
    }


def resolve_store(config: Mapping[str, Any], tracking_uri: str | None, project_path: Path) -> dict:
    """kedro-mlflow's configuration (``mlflow.yml``) with the store made concrete.

    ``tracking_uri`` (the ``MLFLOW_TRACKING_URI`` environment variable) wins over
    ``server.mlflow_tracking_uri`` (default ``sqlite:///mlruns/mlflow.db``). A relative
    SQLite path becomes absolute under ``project_path`` and its folder is created; a new
    experiment of a SQLite store keeps its artifacts in ``artifacts/`` beside the database
    unless ``tracking.experiment.create_experiment_kwargs.artifact_location`` says where.
    """
    config = {**config}
    server = {**(config.get("server") or {})}
    uri = tracking_uri or server.get("mlflow_tracking_uri") or DEFAULT_TRACKING_URI
    tracking = {**(config.get("tracking") or {})}
    experiment = {**(tracking.get("experiment") or {})}
    create = {**(experiment.get("create_experiment_kwargs") or {})}
    if uri.startswith(SQLITE):
        database = Path(uri[len(SQLITE) :])
        if not database.is_absolute():
            database = Path(project_path) / database
        database.parent.mkdir(parents=True, exist_ok=True)
        uri = SQLITE + database.resolve().as_posix()
        if not create.get("artifact_location"):
            create["artifact_location"] = (database.parent / "artifacts").resolve().as_uri()
    server["mlflow_tracking_uri"] = uri
    experiment["create_experiment_kwargs"] = create
    tracking["experiment"] = experiment
    return {**config, "server": server, "tracking": tracking}

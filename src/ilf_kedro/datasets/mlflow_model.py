"""``MlflowRegisteredModelDataset``: a run's model logged to MLflow as a pyfunc model and
registered under a stable name, a new version per run (docs/models.md)."""

from __future__ import annotations

import logging
from typing import Any

from kedro.io.core import AbstractDataset

logger = logging.getLogger(__name__)


class MlflowRegisteredModelDataset(AbstractDataset):
    """Saves a :class:`~ilf_kedro.tracking.pyfunc.PackagedModel` to the active MLflow run
    (artifact ``name``) and registers it as a new version of ``registered_model_name``,
    tagged with the run id and the model's tags; loads a registered version (``version``;
    null: the latest) as an ``mlflow.pyfunc`` model.

    Like kedro-mlflow's datasets (its ``switch_catalog_logging`` finds this one by its
    ``Mlflow`` name), it logs nothing when tracking is off for the run or no MLflow run is
    active; the run goes on.

    Example catalog entry::

        ilf_model_mlflow:
          type: ilf_kedro.datasets.MlflowRegisteredModelDataset
          registered_model_name: ilf-kedro-pi-theta-star
          name: ilf_model_mlflow
          load_args:
            model_config: {device: cpu}  # override the logged settings when loading
    """

    def __init__(
        self,
        *,
        registered_model_name: str,
        name: str | None = None,
        version: int | str | None = None,
        load_args: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self.registered_model_name = registered_model_name
        self.name = name or registered_model_name
        self.version = version
        self.load_args = dict(load_args or {})
        self.metadata = metadata
        self._logging_activated = True

    @property
    def model_uri(self) -> str:
        return f"models:/{self.registered_model_name}/{self.version or 'latest'}"

    def _load(self):
        import mlflow

        return mlflow.pyfunc.load_model(self.model_uri, **self.load_args)

    def _save(self, data) -> None:
        import mlflow

        run = mlflow.active_run()
        if not self._logging_activated or run is None:
            logger.info(
                "%s: not logged (MLflow tracking is off for this run)", self.registered_model_name
            )
            return
        data.tags["mlflow_run_id"] = run.info.run_id
        info = data.log(self.name, self.registered_model_name)
        logger.info(
            "Registered %s version %s (run %s)",
            self.registered_model_name,
            info.registered_model_version,
            run.info.run_id,
        )

    def _describe(self) -> dict[str, Any]:
        return {
            "registered_model_name": self.registered_model_name,
            "name": self.name,
            "version": self.version,
        }

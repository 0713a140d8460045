"""Project hooks: parameter checks before a run, the run summary at its end, and MLflow
tracking through kedro-mlflow.

``MLflowTrackingHooks`` is kedro-mlflow's own hook (configured in ``conf/base/mlflow.yml``;
settings.py disables the copy the plugin registers by itself) with three additions:

- it never fails a run: a store that cannot be reached or written logs one warning and
  the run goes on untracked (the catalog's MLflow datasets then only write their files);
- ``MLFLOW_TRACKING_URI`` wins over ``mlflow.yml``, a relative SQLite store lives under
  the project root (``ilf_kedro.tracking.runs.resolve_store``), and ``ILF_KEDRO_MLFLOW=false``
  switches tracking off for every pipeline (``tracking.disable_tracking.pipelines`` in
  ``mlflow.yml`` does it per pipeline);
- the run is named after the pipeline, base model and feedback source, tagged with the
  base model, feedback source, refiner kind and random weights, and holds every parameter
  of the run, logged in one batch as the configuration writes them (kedro-mlflow alone
  logs those that nodes read, one by one as each node starts).

Metrics, reports and model directories reach MLflow through the catalog
(``MlflowMetricsHistoryDataset`` and ``MlflowArtifactDataset`` entries), not through code.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from kedro.config import MissingConfigException
from kedro.framework.hooks import hook_impl
from kedro.io.core import is_parameter
from kedro_mlflow.framework.hooks.mlflow_hook import MlflowHook
from kedro_mlflow.io.catalog.switch_catalog_logging import switch_catalog_logging

logger = logging.getLogger(__name__)

ENV_SWITCH = "ILF_KEDRO_MLFLOW"
RUN_SUMMARY = "run_summary"
MLFLOW_CONFIG_PATTERNS = ["mlflow*", "mlflow*/**", "**/mlflow*"]  # as kedro-mlflow's
# What mlflow.set_tracking_uri, set_registry_uri and set_experiment export to os.environ.
MLFLOW_EXPORTED_VARIABLES = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "MLFLOW_EXPERIMENT_ID")


class ParameterCheckHooks:
    """Validates the run's parameters against the schema (``ilf_kedro.parameters``) when
    the context is created, before Kedro builds any pipeline or validates node inputs,
    and keeps the run's :class:`~ilf_kedro.pipelines.run_plan.RunPlan` (how many rounds
    ``ilf_rounds`` chains, which test sets ``evaluation`` builds, which pipelines run before
    ``ilf``), from which ``register_pipelines()`` builds those pipelines. Before the
    pipeline runs: an ``ilf_rounds`` run needs an automatic feedback source, and every test
    set it reads must have well-formed rows."""

    def __init__(self) -> None:
        self.plan = None  # no context created yet: the default plan (RunPlan())

    @hook_impl
    def after_context_created(self, context) -> None:
        from ilf_kedro.parameters import validate_parameters
        from ilf_kedro.pipelines.run_plan import RunPlan

        # The config loader, not context.params: reading those builds every pipeline
        # (Kedro validates them against node type hints), before the plan is known.
        params = validate_parameters(context.config_loader["parameters"])
        self.plan = RunPlan.from_parameters(params, context.config_loader["catalog"].keys())

    @hook_impl
    def before_pipeline_run(self, run_params, pipeline, catalog) -> None:
        from ilf_kedro.parameters import check_rounds_source
        from ilf_kedro.pipelines.evaluation import check_test_sets

        if any((node.namespace or "").startswith("round_") for node in pipeline.nodes):
            check_rounds_source(catalog.load("params:feedback.source"))
        # Malformed test-set rows stop the run before any node (or model) runs.
        check_test_sets(self.plan.task_sets, pipeline.inputs(), catalog.load)


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


def tracking_switched_on() -> bool:
    """False when ``ILF_KEDRO_MLFLOW`` is ``false``/``0``/``off``/``no``; else true."""
    return os.environ.get(ENV_SWITCH, "").strip().lower() not in {"0", "false", "off", "no"}


class MLflowTrackingHooks(MlflowHook):
    """kedro-mlflow's hook that never fails a run, names and tags it and logs every
    parameter (see the module docstring)."""

    def __init__(self) -> None:
        super().__init__()
        self._off: str | None = None  # why tracking is off for this run; None: on
        self._pipeline = None
        # The parameters as configured: nodes get validated models (Kedro's parameter
        # validation), MLflow gets the values as written.
        self._raw_params: dict[str, Any] = {}
        # An MLflow run was open before the session (an orchestrator's): the run is
        # kedro-mlflow's to reuse and not ours to end.
        self._run_was_active = False

    def _safely(self, what: str, func, *args, catalog=None) -> Any:
        """``func(*args)``; an error warns once and switches tracking off for the run."""
        try:
            return func(*args)
        except Exception as exc:  # noqa: BLE001 - tracking must never fail a run
            logger.warning(
                "MLflow tracking: could not %s (%s: %s); the run goes on untracked.",
                what,
                type(exc).__name__,
                exc,
            )
            self._switch_off(f"could not {what}", catalog)
            return None

    def _switch_off(self, reason: str, catalog=None) -> None:
        # No kedro-mlflow hook is called once ``_off`` is set, so its own switch stays as is.
        self._off = self._off or reason
        if self.run_id is not None:
            try:
                _end_runs(self.run_id, "FAILED")
            except Exception as exc:  # noqa: BLE001 - the store may be the problem
                logger.warning(
                    "MLflow tracking: could not mark run %s failed (%s: %s).",
                    self.run_id,
                    type(exc).__name__,
                    exc,
                )
            self.run_id = None
        if catalog is not None:
            # Dataset factories resolve lazily: materialise the run's datasets first so
            # that every MLflow dataset of the run stops logging.
            for name in self._pipeline.datasets() if self._pipeline is not None else ():
                catalog.get(name)
            switch_catalog_logging(catalog, False)

    @hook_impl
    def after_context_created(self, context) -> None:
        self._off, self.run_id = None, None
        self._raw_params = context.config_loader["parameters"]
        if not tracking_switched_on():
            self._switch_off(f"{ENV_SWITCH}={os.environ.get(ENV_SWITCH)}")
            logger.info("MLflow tracking is off (%s).", self._off)
            return
        self._safely("set up tracking", self._set_up, context)

    def _set_up(self, context) -> None:
        import mlflow

        from ilf_kedro.tracking.runs import resolve_store

        loader = context.config_loader
        loader.config_patterns.setdefault("mlflow", MLFLOW_CONFIG_PATTERNS)
        try:
            config = loader["mlflow"]
        except MissingConfigException:
            config = {}
        # A key set on the loader is what every later read of it returns (kedro-mlflow's too).
        loader["mlflow"] = resolve_store(
            config, os.environ.get("MLFLOW_TRACKING_URI"), context.project_path
        )
        self._run_was_active = mlflow.active_run() is not None
        with mlflow_environment_kept():
            super().after_context_created(context)

    @hook_impl
    def before_pipeline_run(self, run_params, pipeline, catalog) -> None:
        self._pipeline = pipeline
        if self._off is None:
            self._safely("start a run", self._start, run_params, pipeline, catalog)
        if self._off is not None:
            self._switch_off(self._off, catalog)

    def _start(self, run_params, pipeline, catalog) -> None:
        import mlflow

        from ilf_kedro.tracking.runs import run_name, run_tags

        params = self._raw_params
        run = self.mlflow_config.tracking.run
        if run.name is None:
            pipelines = run_params.get("pipeline_names") or ["__default__"]
            run.name = run_name("+".join(pipelines), params)
        super().before_pipeline_run(run_params, pipeline, catalog)
        if self.run_id is None:  # kedro-mlflow started no run: mlflow.yml's
            # tracking.disable_tracking.pipelines names every pipeline of this run
            self._switch_off("disabled for this pipeline in mlflow.yml", catalog)
            return
        mlflow.set_tags(run_tags(params))
        self._log_parameters(params)

    def _log_parameters(self, params: dict) -> None:
        """Every parameter, flattened and capped as mlflow.yml says, in one batch (the
        values equal those kedro-mlflow logs again when a node reads them)."""
        import mlflow
        from mlflow.utils.validation import MAX_PARAM_VAL_LENGTH

        flat = flatten(params, recursive=self.recursive, sep=self.sep)
        batch = {}
        for key, value in (flat if self.flatten else params).items():
            name = self.sanitize_param_name(key)
            if len(str(value)) > MAX_PARAM_VAL_LENGTH:
                self._log_long_parameter(name, str(value))
            else:
                batch[name] = value
        mlflow.log_params(batch)

    def _log_long_parameter(self, name: str, value: str) -> None:
        """A value longer than MLflow takes, as mlflow.yml's ``long_params_strategy``
        says (kedro-mlflow's documented ``fail``, ``tag`` or ``truncate``)."""
        import mlflow
        from mlflow.utils.validation import MAX_PARAM_VAL_LENGTH

        strategy = self.mlflow_config.tracking.params.long_params_strategy
        if strategy == "fail":
            raise ValueError(
                f"parameter {name} is {len(value)} characters long, MLflow takes up to "
                f"{MAX_PARAM_VAL_LENGTH}: set tracking.params.long_params_strategy in "
                "mlflow.yml to tag or truncate"
            )
        if strategy == "tag":
            mlflow.set_tag(name, value)
        else:
            mlflow.log_param(name, value[:MAX_PARAM_VAL_LENGTH])

    @hook_impl
    def before_node_run(self, node, catalog, inputs, is_async) -> None:
        if self._off is None and not _active_here(self.run_id):
            # kedro-mlflow reopens the run in a thread that has none (threaded runners), and
            # logs the parameters a node reads, one SQLite transaction each (~600 in a demo
            # run); the run's one batch (``_log_parameters``) logged them all already, so it
            # gets the node's other inputs only.
            others = {k: v for k, v in inputs.items() if not is_parameter(k)}
            parent = super().before_node_run
            self._safely("reopen the run", parent, node, catalog, others, is_async, catalog=catalog)

    @hook_impl
    def after_pipeline_run(self, run_params, pipeline, catalog) -> None:
        if self._off is None:
            self._safely("end the run", self._end, run_params, pipeline, catalog)
        else:
            switch_catalog_logging(catalog, True)

    def _end(self, run_params, pipeline, catalog) -> None:
        run_id = self.run_id
        super().after_pipeline_run(run_params, pipeline, catalog)
        if run_id is not None and not self._run_was_active:
            # kedro-mlflow reopens the run in each thread that runs a node; with mlflow 3
            # each reopening nests it once more, and one end_run leaves it active for the
            # next session of this process.
            _end_runs(run_id, "FINISHED")

    @hook_impl
    def on_pipeline_error(self, error, run_params, pipeline, catalog) -> None:
        if self._off is None:
            parent = super().on_pipeline_error
            self._safely("mark the run failed", parent, error, run_params, pipeline, catalog)


@contextmanager
def mlflow_environment_kept() -> Iterator[None]:
    """``MLFLOW_EXPORTED_VARIABLES`` as they were before the block. MLflow exports the store
    and experiment it is given to os.environ (for subprocesses); left there, the next
    session of this process (a notebook, a test) would take this project's store for the
    user's MLFLOW_TRACKING_URI and track into it."""
    saved = {name: os.environ.get(name) for name in MLFLOW_EXPORTED_VARIABLES}
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _active_here(run_id: str | None) -> bool:
    """Whether ``run_id`` is this thread's active MLflow run."""
    import mlflow

    active = mlflow.active_run()
    return active is not None and active.info.run_id == run_id


def _end_runs(run_id: str, status: str) -> None:
    """End ``run_id`` as often as it is open in this thread's stack of active runs."""
    import mlflow

    while (active := mlflow.active_run()) is not None and active.info.run_id == run_id:
        mlflow.end_run(status)


def flatten(params: dict, *, recursive: bool = True, sep: str = ".") -> dict:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}`` (one level unless ``recursive``), as
    ``mlflow.yml``'s ``flatten_dict_params`` says (kedro-mlflow keeps its own private)."""
    flat = {}
    for key, value in params.items():
        if isinstance(value, dict):
            inner = flatten(value, recursive=recursive, sep=sep) if recursive else value
            flat.update({f"{key}{sep}{k}": v for k, v in inner.items()})
        else:
            flat[key] = value
    return flat

"""Run the project's pipelines in a throwaway copy, so tests never touch ./data."""

from __future__ import annotations

import atexit
import functools
import os
import shutil
import tempfile
from pathlib import Path

from ilf_kedro.infra.project_catalog import load_dataset, project_catalog
from tests.conftest import PROJECT_ROOT

# The tests run the offline demo (demo MBPP tasks, tiny-random: every stage in seconds);
# conf/base is the miniature world (tests/pipelines/world runs that one).
DEMO_ENV = "demo"


def copy_project(destination: Path) -> Path:
    """Copy the config and the demo inputs (not outputs) of the project to ``destination``."""
    destination.mkdir(parents=True, exist_ok=True)
    shutil.copy(PROJECT_ROOT / "pyproject.toml", destination)
    shutil.copytree(PROJECT_ROOT / "conf", destination / "conf", ignore=_ignore_local)
    (destination / "conf" / "local").mkdir(exist_ok=True)
    shutil.copytree(PROJECT_ROOT / "data" / "01_raw" / "demo", destination / "data/01_raw/demo")
    # The package is installed; Kedro only needs the source folder to exist.
    (destination / "src").mkdir()
    # conf/base/mlflow.yml's store, made by MLflow once per process and copied here.
    (destination / "mlruns").mkdir()
    shutil.copy(_empty_mlflow_store(), destination / "mlruns" / "mlflow.db")
    return destination


@functools.cache
def _empty_mlflow_store() -> Path:
    """An MLflow SQLite store with MLflow's schema and no experiment but its default: a
    new store runs every schema migration of MLflow's history (~1.4 s of CPU), and each
    of the suite's ~50 project copies would make its own."""
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    folder = Path(tempfile.mkdtemp(prefix="ilf_kedro_mlflow_store_"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    database = folder / "mlflow.db"
    SqlAlchemyStore(f"sqlite:///{database}", (folder / "artifacts").as_uri())
    return database


def _ignore_local(directory, names):
    return [n for n in names if Path(directory).name == "local" and n != ".gitkeep"]


def run_pipeline(project: Path, pipeline: str, env: str | None = DEMO_ENV, params=None, **run):
    """Run ``pipeline`` in ``project`` in this process; returns the session's outputs.
    ``run`` goes to ``KedroSession.run`` (``to_outputs``, ``from_nodes``...)."""
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    bootstrap_project(project)
    runtime_params = nested(params or {})
    # From the project folder, like `kedro run`: relative paths in parameters (the
    # sampling shards' resume_dir) land in the copy, not in this repository.
    here = os.getcwd()
    os.chdir(project)
    try:
        with KedroSession.create(project_path=project, env=env, runtime_params=runtime_params) as s:
            return s.run(pipeline_names=[pipeline], **run)
    finally:
        os.chdir(here)


def load(project: Path, name: str, env: str | None = DEMO_ENV):
    """Dataset ``name`` of ``project`` through its catalog, as it is on disk now."""
    return load_dataset(project, name, env)


def catalog_path(project: Path, name: str, env: str | None = DEMO_ENV) -> Path:
    """Where the catalog keeps dataset ``name`` of ``project``."""
    return Path(project_catalog(project, env).get(name)._describe()["filepath"])


def nested(params: dict) -> dict:
    """``{"sampling.num_samples": 2}`` -> ``{"sampling": {"num_samples": 2}}``, as the
    command line's ``--params`` does, so a key overrides one setting of its section."""
    tree: dict = {}
    for dotted, value in params.items():
        *parents, key = dotted.split(".")
        node = tree
        for parent in parents:
            node = node.setdefault(parent, {})
        node[key] = value
    return tree


def mlflow_client(project: Path):
    """A client of ``project``'s store (its own SQLite store unless MLFLOW_TRACKING_URI
    points elsewhere). Not mlflow.set_tracking_uri: that exports the store to os.environ,
    where later runs and subprocesses of this worker would take it for the user's."""
    import mlflow

    from ilf_kedro.tracking.runs import resolve_store

    store = resolve_store({}, os.environ.get("MLFLOW_TRACKING_URI"), project)
    return mlflow.MlflowClient(tracking_uri=store["server"]["mlflow_tracking_uri"])


def mlflow_runs(project: Path) -> list:
    """The MLflow runs of ``project`` (see ``mlflow_client``), oldest first."""
    client = mlflow_client(project)
    experiment = client.get_experiment_by_name("ilf-kedro")
    if experiment is None:
        return []
    return client.search_runs(
        [experiment.experiment_id],
        filter_string=f"tags.project_path = '{project}'",
        order_by=["attributes.start_time ASC"],
    )

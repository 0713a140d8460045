"""Shared fixtures: offline settings and the reference data in ../shared/data."""

from __future__ import annotations

import functools
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml

os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "true")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
# Kedro's plain logging configuration, not its default (rich's handler renders each record
# as a table, 0.7 ms against 0.01 ms, a cost every dataset load and save of every run
# pays); the same records. Set before Kedro is imported, for every session and `kedro`
# command of the tests; found without importing Kedro.
os.environ.setdefault(
    "KEDRO_LOGGING_CONFIG",
    str(
        Path(importlib.util.find_spec("kedro").origin).parent
        / "framework/project/default_logging.yml"
    ),
)
# One thread per pytest-xdist worker (and its subprocesses): the workers already use every
# core, and torch's own threads on top of them only contend.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.setdefault("OMP_NUM_THREADS", "1")

# What a test needs, read from the fixtures it uses: the markers of pyproject.toml, so
# `-m "not slow"` leaves out every test that starts a cluster, a server or a browser.
MARKERS_OF_FIXTURES = {
    "ray_cluster": ("ray", "slow"),
    "tiny_server": ("server", "slow"),
    "label_studio_server": ("server", "slow"),
    "viz_server": ("browser", "slow"),
    "default_ilf_run": ("slow",),
    "mlflow_model_server": ("server", "slow"),
}


# The tests of a group run on one pytest-xdist worker, one after the other: a module's
# tests when they share a module-scoped fixture (so a module's run is made once), or the
# modules that share a server or the Ray cluster (it starts once); any other test is a
# group of its own. pytest-xdist's own `xdist_group` marker cannot do it with
# pytest 9.2 (its `--dist loadgroup` renames nodes through `item._nodeid`, which pytest no
# longer reads), so the controller groups node ids by their module's path, and every
# worker checks that a test's server fixture agrees with its group.
GROUPS = {
    "ray_cluster": ("tests/compute/",),
    "tiny_server": ("tests/serving/", "tests/pipelines/feedback/"),
}
# Groups start in this order (pyproject: `--no-loadscope-reorder` keeps it), the longest
# first, so that no long group starts last while the other worker idles.
FIRST = ("semantic", "ray", "server", "browser", "slow")


# A fixture made once per module (or class, package): its module's tests stay together.
WIDE_SCOPE = re.compile(r"scope=[\"'](module|package|class)[\"']")


@functools.cache
def shares_fixtures(path: str) -> bool:
    """Whether the tests of module ``path`` share a fixture wider than one test, made in
    the module or in a ``conftest.py`` of its folders (session fixtures are made once per
    worker wherever the tests run)."""
    module = PROJECT_ROOT / path
    sources = [module, *(folder / "conftest.py" for folder in module.parents)]
    return any(
        WIDE_SCOPE.search(source.read_text())
        for source in sources
        if source.is_file()
        and source.is_relative_to(PROJECT_ROOT / "tests")
        and source != PROJECT_ROOT / "tests/conftest.py"
    )


def group_of(nodeid: str) -> str:
    """The group of the test with id ``nodeid``: a shared server's, its module's when the
    module's tests share a fixture, else its own (so a long module of independent tests,
    the benchmark smokes say, spreads over the workers)."""
    path = nodeid.split("::", 1)[0]
    shared = next((g for g, paths in GROUPS.items() if path.startswith(paths)), None)
    return shared or (path if shares_fixtures(path) else nodeid)


@pytest.hookimpl(optionalhook=True)  # a hook of pytest-xdist: absent with -p no:xdist
def pytest_xdist_make_scheduler(config, log):
    from xdist.scheduler import LoadScopeScheduling

    class GroupScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return group_of(nodeid)

    return GroupScheduling(config, log)


def pytest_collection_modifyitems(config, items):
    ranks: dict[str, int] = {}
    for item in items:
        for fixture, markers in MARKERS_OF_FIXTURES.items():
            if fixture in item.fixturenames:
                for marker in markers:
                    item.add_marker(marker)
        if item.get_closest_marker("semantic"):
            item.add_marker("slow")
        group = group_of(item.nodeid)
        for fixture in GROUPS:
            if fixture in item.fixturenames and group != fixture:
                raise pytest.UsageError(
                    f"{item.nodeid} uses {fixture}: add its folder or file to "
                    f"GROUPS[{fixture!r}] in tests/conftest.py"
                )
        rank = min((i for i, m in enumerate(FIRST) if item.get_closest_marker(m)), default=9)
        ranks[group] = min(ranks.get(group, rank), rank)
    order = {group: i for i, group in enumerate(ranks)}  # collection order within a rank
    items.sort(key=lambda item: (ranks[group_of(item.nodeid)], order[group_of(item.nodeid)]))


@contextmanager
def mlflow_uris_kept(tracking_uri: str | None = None) -> Iterator[None]:
    """MLflow's store is ``tracking_uri`` inside the block (when given) and what it was
    before after it, os.environ included (``ilf_kedro.hooks.mlflow_environment_kept``):
    every later run or subprocess of this worker would take an exported store for the
    user's."""
    import mlflow

    from ilf_kedro.hooks import mlflow_environment_kept

    tracking = os.environ.get("MLFLOW_TRACKING_URI")
    registry = os.environ.get("MLFLOW_REGISTRY_URI")
    with mlflow_environment_kept():
        if tracking_uri is not None:
            mlflow.set_tracking_uri(tracking_uri)
        try:
            yield
        finally:
            mlflow.set_tracking_uri(tracking)
            mlflow.set_registry_uri(registry)


@pytest.fixture(autouse=True)
def _mlflow_uris_of_the_session():
    """No test leaves an MLflow store behind for the next (see ``mlflow_uris_kept``)."""
    with mlflow_uris_kept():
        yield


PROJECT_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = PROJECT_ROOT.parent / "shared" / "data"
MBPP_PATH = SHARED_DATA / "mbpp" / "mbpp.jsonl"
ANNOTATIONS_PATH = SHARED_DATA / "ilf" / "surge_annotations.jsonl"
HUMANEVAL_PATH = SHARED_DATA / "humaneval" / "HumanEval.jsonl.gz"
# Samples per prompt of the offline default (conf/base), which the run fixtures use.
NUM_SAMPLES = yaml.safe_load((PROJECT_ROOT / "conf/base/parameters_models.yml").read_text())[
    "sampling"
]["num_samples"]
PAPER_SPLITS = {"prompt": [1, 10], "test": [11, 110], "refine": [111, 310], "train": [311, 974]}


@pytest.fixture
def temp_folder(tmp_path, monkeypatch) -> Path:
    """``tmp_path`` as the temporary folder of this process (``tempfile``) and of the
    processes it starts (``TMPDIR``): what the code under test leaves there, the test
    sees, and nothing reaches the machine's own."""
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    return tmp_path


def _require(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"reference data {path} is absent (it lives in ../shared/data beside the repo)")
    return path


@pytest.fixture(scope="session")
def mbpp_path() -> Path:
    return _require(MBPP_PATH)


@pytest.fixture(scope="session")
def annotations_path() -> Path:
    return _require(ANNOTATIONS_PATH)


@pytest.fixture(scope="session")
def humaneval_path() -> Path:
    return _require(HUMANEVAL_PATH)


@pytest.fixture(scope="session")
def mbpp_raw(mbpp_path):
    from ilf_kedro.datasets import JSONLinesDataset

    return JSONLinesDataset(filepath=str(mbpp_path)).load()


@pytest.fixture(scope="session")
def annotations_raw(annotations_path):
    from ilf_kedro.datasets import JSONLinesDataset

    return JSONLinesDataset(filepath=str(annotations_path)).load()


@pytest.fixture(scope="session")
def mbpp_tasks(mbpp_raw):
    from ilf_kedro.ingest.tasks import build_tasks

    tasks, errors = build_tasks(mbpp_raw, PAPER_SPLITS)
    assert errors.empty, errors
    return tasks


def build_once(tmp_path_factory, name: str, build: Callable[[Path], None]) -> Path:
    """``build(folder)`` run once per test session, whatever the number of pytest-xdist
    workers: the first worker to ask builds it under a lock, in the session's shared
    temporary folder; the others wait for it, then read the same folder. Tests only
    read what it holds (copy it to change it)."""
    from filelock import FileLock

    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # shared by the workers of this session
    folder, done = root / name, root / f"{name}.done"
    with FileLock(str(root / f"{name}.lock")):
        if not done.exists():
            shutil.rmtree(folder, ignore_errors=True)  # a failed try's leftovers
            folder.mkdir(parents=True)
            build(folder)
            done.touch()
    return folder


@pytest.fixture(scope="session")
def default_ilf_run(tmp_path_factory):
    """A copy of the project after the offline default `kedro run --pipelines=ilf`, made
    once per session and read by every test that asks for it."""
    from tests.kedro_project import DEMO_ENV, copy_project

    # `kedro run` in a process of its own, as a user runs it: the worker that builds it may
    # have run other sessions in its process, and a run after those was found untracked
    # by MLflow (issue 26's closing note).
    def build(folder: Path) -> None:
        project = copy_project(folder / "project")
        command = [sys.executable, "-m", "kedro", "run", f"--env={DEMO_ENV}", "--pipelines=ilf"]
        path = os.pathsep.join([str(PROJECT_ROOT / "src"), str(PROJECT_ROOT)])
        env = {**os.environ, "PYTHONPATH": path, "COLUMNS": "300"}
        done = subprocess.run(command, cwd=project, env=env, capture_output=True, text=True)
        assert done.returncode == 0, f"{' '.join(command)} failed:\n{done.stdout[-4000:]}"

    return build_once(tmp_path_factory, "ilf_default", build) / "project"


SERVE_COMMAND = "transformers serve {model} --host {host} --port {port} --device cpu"
# A chat template for the tiny tokenizer, so the chat API works with it too.
TINY_CHAT_TEMPLATE = "{% for m in messages %}{{ m['content'] }}\n{% endfor %}"


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """The offline tiny-random model saved as a Hugging Face directory that servers load:
    with a chat template and sampling on by default (``transformers serve`` applies a
    request's temperature only when the model's generation config samples)."""
    from ilf_kedro.models import load_model, save_bundle

    bundle = load_model("tiny-random")
    bundle.tokenizer.chat_template = TINY_CHAT_TEMPLATE
    bundle.model.generation_config.do_sample = True
    path = tmp_path_factory.mktemp("served") / "tiny-model"
    save_bundle(bundle, path)
    return path


@pytest.fixture(scope="session")
def tiny_server(tiny_model_dir, tmp_path_factory):
    """A real OpenAI-compatible server (``transformers serve``) for the tiny model on
    loopback, started once per session and always stopped."""
    from ilf_kedro.infra.commands import CommandNotFoundError, find_command
    from ilf_kedro.serving.server import ServedModel

    try:
        find_command("transformers", parameter="sampling.server.command")
    except CommandNotFoundError as exc:
        pytest.skip(str(exc))
    log = tmp_path_factory.mktemp("served") / "server.log"
    with ServedModel(SERVE_COMMAND, str(tiny_model_dir), log_path=str(log)) as server:
        yield server

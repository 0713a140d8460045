"""Shared fixtures: offline settings and the reference data in ../shared/data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "true")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

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


@pytest.fixture(scope="session")
def default_ilf_run(tmp_path_factory):
    """A copy of the project after the offline default `kedro run --pipelines=ilf`."""
    from tests.kedro_project import copy_project, run_pipeline

    project = copy_project(tmp_path_factory.mktemp("ilf_default") / "project")
    run_pipeline(project, "ilf")
    return project


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

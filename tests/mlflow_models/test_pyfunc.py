"""pi_theta* and pi_Refine as MLflow models, in this process: what the registry records
per save, that predict samples exactly as the run's sampler does on the run's prompt, and
the request checks (the served side: test_serving.py)."""

from __future__ import annotations

import mlflow
import pandas as pd
import pytest

from ilf_kedro.datasets import MlflowRegisteredModelDataset
from ilf_kedro.ilf.prompts import build_code_prompt, build_refinement_prompt
from ilf_kedro.models import load_model, sample_programs
from ilf_kedro.parameters import Execution, Model, Sampling
from ilf_kedro.tracking.pyfunc import (
    EXAMPLE_REFINEMENT,
    EXAMPLE_TASK,
    PI_REFINE,
    PI_THETA_STAR,
    TASK_COLUMNS,
    RequestError,
    check_rows,
    package,
)
from tests.conftest import mlflow_uris_kept

SAMPLING = Sampling(num_samples=2, max_new_tokens=12, batch_size=3, seed=4, stop_sequences=["\n\n"])
GOLD = "def sum_of_squares(n):\n    return sum(i * i for i in range(1, n + 1))\n"


@pytest.fixture(scope="module")
def bundle():
    return load_model("tiny-random")


@pytest.fixture
def store(tmp_path):
    """A fresh SQLite tracking and registry store, this test's only."""
    with mlflow_uris_kept(f"sqlite:///{tmp_path / 'mlflow.db'}"):
        mlflow.set_experiment("pyfunc-test")
        yield mlflow.MlflowClient()


def _packaged(kind, bundle, seed=0):
    return package(
        kind,
        bundle,
        SAMPLING,
        Execution(progress=False),
        Model(device="cpu"),
        tags={"seed": seed, "training_set_digest": "abc"},
        max_old_code_tokens=512,
    )


def test_each_save_is_a_new_version_recording_its_run(bundle, store):
    dataset = MlflowRegisteredModelDataset(registered_model_name="pi-test")
    runs = []
    for seed in (1, 2):
        with mlflow.start_run() as run:
            dataset.save(_packaged(PI_THETA_STAR, bundle, seed))
        runs.append(run.info.run_id)
    versions = sorted(store.search_model_versions("name = 'pi-test'"), key=lambda v: int(v.version))
    assert [str(v.version) for v in versions] == ["1", "2"]
    for version, run_id, seed in zip(versions, runs, (1, 2), strict=True):
        assert version.run_id == run_id
        tags = version.tags
        assert tags["mlflow_run_id"] == run_id and tags["seed"] == str(seed)
        assert tags["training_set_digest"] == "abc" and tags["random_weights"] == "true"
    # The catalog entry loads the latest; the run's own params are not touched.
    assert dataset.load().metadata.run_id == runs[1]
    assert store.get_run(runs[1]).data.params == {}


def test_without_an_active_run_nothing_is_logged(bundle, store):
    MlflowRegisteredModelDataset(registered_model_name="pi-test").save(
        _packaged(PI_THETA_STAR, bundle)
    )
    assert store.search_registered_models() == []


def test_predict_samples_the_runs_prompt_as_the_runs_sampler(bundle, store):
    with mlflow.start_run():
        info = _packaged(PI_THETA_STAR, bundle).log("m", "pi-test")
    model = mlflow.pyfunc.load_model(info.model_uri)
    out = model.predict(pd.DataFrame([EXAMPLE_TASK]))
    prompt, _ = build_code_prompt(EXAMPLE_TASK["text"], GOLD, EXAMPLE_TASK["tests"][0])
    expected = sample_programs(bundle, pd.DataFrame({"task_id": [0], "prompt": [prompt]}), SAMPLING)
    assert out["prompt"].tolist() == [prompt] * SAMPLING.num_samples
    assert out["program"].tolist() == expected["program"].tolist()
    assert set(out["status"]) <= {"passed", "failed", "error", "timeout", "crashed"}
    # A request's params replace the run's: another seed, other samples.
    other = model.predict(pd.DataFrame([EXAMPLE_TASK]), params={"seed": 5, "num_samples": 3})
    assert len(other) == 3 and other["program"].tolist()[:2] != out["program"].tolist()


def test_pi_refine_prompts_with_figure_2(bundle, store):
    with mlflow.start_run():
        info = _packaged(PI_REFINE, bundle).log("r", "refine-test")
    out = mlflow.pyfunc.load_model(info.model_uri).predict(pd.DataFrame([EXAMPLE_REFINEMENT]))
    task_prompt, _ = build_code_prompt(EXAMPLE_TASK["text"], GOLD, EXAMPLE_TASK["tests"][0])
    row = EXAMPLE_REFINEMENT
    assert out["prompt"].iloc[0] == build_refinement_prompt(
        row["program"], row["feedback"], task_prompt
    )
    assert (out["program"] == task_prompt + out["completion"]).all()


@pytest.mark.parametrize(
    "rows, named",
    [
        ([], "empty batch"),
        ([{"header": "def f(x):"}], "missing column(s) ['text']"),
        ([{"text": 5, "header": "def f(x):"}], "row 0, column 'text'"),
        ([{"text": " ", "header": "def f(x):"}], "row 0, column 'text'"),
        ([{"text": "t", "header": "def f(x):", "tests": "assert f(1)"}], "column 'tests'"),
        ([{"text": "t", "header": "def f(x):", "tests": [3]}], "column 'tests'"),
    ],
)
def test_malformed_rows_are_named(rows, named):
    with pytest.raises(RequestError, match=None) as err:
        check_rows(pd.DataFrame(rows), TASK_COLUMNS)
    assert named in err.value.message
    assert err.value.get_http_status_code() == 400


def test_rows_without_tests_get_none():
    rows = check_rows(pd.DataFrame([{"text": "t", "header": "def f(x):"}]), TASK_COLUMNS)
    assert rows["tests"].tolist() == [[]]

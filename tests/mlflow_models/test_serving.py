"""The registered pi_theta* and pi_Refine of the demo run (``default_ilf_run``), served by
MLflow's own server on loopback with the command docs/models.md gives, asked over HTTP:
the same programs as the model loaded in this process with the same seed, clear 400s for
malformed requests, and docs/models.md's examples run as written."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import mlflow
import pandas as pd
import pytest

from ilf_kedro import hooks
from ilf_kedro.infra.ports import free_port
from ilf_kedro.tracking.pyfunc import digest
from tests.conftest import PROJECT_ROOT, mlflow_uris_kept
from tests.kedro_project import mlflow_client, mlflow_runs

pytestmark = pytest.mark.skipif(
    not hooks.tracking_switched_on(), reason=f"MLflow tracking switched off by {hooks.ENV_SWITCH}"
)

DOC = (PROJECT_ROOT / "docs" / "models.md").read_text()
BLOCKS = re.findall(r"```(\w+)\n(.*?)```", DOC, re.S)
SERVE = next(code for lang, code in BLOCKS if lang == "bash" and "mlflow models serve" in code)
CURL = next(code for lang, code in BLOCKS if lang == "bash" and code.startswith("curl"))
REQUESTS, NOTEBOOK = (code for lang, code in BLOCKS if lang == "python")
DOC_PORT, PI_THETA_STAR, PI_REFINE = "5001", "ilf-kedro-pi-theta-star", "ilf-kedro-pi-refine"
STARTUP_S = 300

TASK = {
    "text": "Write a function to return the last 3 characters of a string.",
    "header": "def last_three(s):",
    "tests": ["assert last_three('python') == 'hon'", "assert last_three('abc') == 'abc'"],
}
UNTESTED = {"text": "Write a function to reverse a list.", "header": "def rev(items):", "tests": []}
ROWS = {
    PI_THETA_STAR: [TASK, UNTESTED],
    PI_REFINE: [
        {**TASK, "program": TASK["header"] + "\n    return s[3:]\n", "feedback": "Slice from -3."},
        {
            **UNTESTED,
            "program": UNTESTED["header"] + "\n    return items\n",
            "feedback": "Reverse.",
        },
    ],
}


def _post(url: str, body: dict) -> tuple[int, dict]:
    request = urllib.request.Request(
        f"{url}/invocations",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=600) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"{}")


def _with_none(frame: pd.DataFrame) -> pd.DataFrame:
    """Missing values as None (JSON's null comes back as NaN in a string column)."""
    frame = frame.astype(object)
    return frame.where(frame.notna(), None)


def _wait_for(url: str, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_S
    while time.monotonic() < deadline:
        assert process.poll() is None, f"the server exited:\n{log.read_text()[-3000:]}"
        with (
            contextlib.suppress(urllib.error.URLError, ConnectionError, TimeoutError),
            urllib.request.urlopen(f"{url}/ping", timeout=2) as response,
        ):
            if response.status == 200:
                return
        time.sleep(0.5)  # a poll interval, under a deadline
    raise AssertionError(f"no answer from {url}/ping in {STARTUP_S} s:\n{log.read_text()[-3000:]}")


def _environment() -> dict:
    bin_dir = str(Path(sys.executable).parent)  # the `mlflow` of this interpreter
    path = os.pathsep.join([str(PROJECT_ROOT / "src"), str(PROJECT_ROOT)])
    return {**os.environ, "PATH": bin_dir + os.pathsep + os.environ["PATH"], "PYTHONPATH": path}


@pytest.fixture(scope="module", params=[PI_THETA_STAR, PI_REFINE])
def mlflow_model_server(request, default_ilf_run, tmp_path_factory):
    """docs/models.md's serve command, run as written from the demo run's project (another
    port; pi_Refine's name for pi_Refine), until the module's tests of that model end."""
    name, port = request.param, free_port()
    command = SERVE.replace(DOC_PORT, str(port)).replace(PI_THETA_STAR, name)
    log = tmp_path_factory.mktemp("mlflow-serve") / "server.log"
    with open(log, "wb") as sink:
        process = subprocess.Popen(
            ["bash", "-c", f"set -e\n{command}"],
            cwd=default_ilf_run,
            env=_environment(),
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_for(url, process, log)
        yield name, url
    finally:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, sig)
            try:
                process.wait(timeout=15)
                break
            except subprocess.TimeoutExpired:
                continue


@pytest.fixture(scope="module")
def in_process(default_ilf_run):
    """The registered models loaded in this process, from the demo run's store."""
    with mlflow_uris_kept(f"sqlite:///{default_ilf_run / 'mlruns' / 'mlflow.db'}"):
        return {name: mlflow.pyfunc.load_model(f"models:/{name}/latest") for name in ROWS}


TRAINING_SETS = {
    PI_THETA_STAR: "data/05_model_input/ilf_training_set.parquet",
    PI_REFINE: "data/05_model_input/refiner_training_set.parquet",
}


def test_the_run_registered_both_models_with_their_origin(default_ilf_run):
    """`kedro run --pipelines=ilf` registered pi_theta* and pi_Refine, each version
    linked to the run and tagged with its seed and the digest of its training set."""
    runs = {run.info.run_id for run in mlflow_runs(default_ilf_run)}
    client = mlflow_client(default_ilf_run)
    for name, training_set in TRAINING_SETS.items():
        versions = client.search_model_versions(f"name = '{name}'")
        latest = max(versions, key=lambda v: int(v.version))
        assert latest.run_id in runs and latest.tags["mlflow_run_id"] == latest.run_id
        assert latest.tags["seed"] == "0" and latest.tags["base_model"] == "tiny-random"
        assert latest.tags["training_set_digest"] == digest(
            pd.read_parquet(default_ilf_run / training_set)
        )
        with mlflow_uris_kept(client.tracking_uri):
            info = mlflow.models.get_model_info(f"models:/{name}/{latest.version}")
        assert {"text", "header", "tests"} <= set(info.signature.inputs.input_names())


def test_served_programs_are_the_in_process_ones(mlflow_model_server, in_process):
    name, url = mlflow_model_server
    params = {"num_samples": 3, "seed": 7}
    status, answer = _post(url, {"dataframe_records": ROWS[name], "params": params})
    assert status == 200, answer
    served = _with_none(pd.DataFrame(answer["predictions"]))
    local = _with_none(in_process[name].predict(pd.DataFrame(ROWS[name]), params=params))
    assert len(served) == 2 * params["num_samples"]
    columns = ["row", "sample_idx", "prompt", "program", "finish_reason", "passed", "status"]
    pd.testing.assert_frame_equal(served[columns], local[columns])
    # The prompt is the paper's, with the first assert as its example; pi_Refine's programs
    # start with the task prompt, as the run's refinements do.
    first = served[served["row"] == 0].iloc[0]
    assert ">>> Example: last_three('python') = 'hon'" in first["prompt"]
    assert first["program"].startswith('"""\n' + TASK["text"])
    # Verdicts from the harness for the row with asserts, none for the row without.
    assert served.loc[served["row"] == 0, "status"].notna().all()
    assert served.loc[served["row"] == 1, "status"].isna().all()
    # The seed decides the samples: another seed, other programs.
    _, other = _post(url, {"dataframe_records": ROWS[name], "params": {**params, "seed": 8}})
    assert [p["program"] for p in other["predictions"]] != served["program"].tolist()


BAD_REQUESTS = {
    "missing column": ({"dataframe_records": [{"header": "def f(x):"}]}, "text"),
    "wrong type": ({"dataframe_records": [{"text": 5, "header": "def f(x):"}]}, "text"),
    "empty batch": ({"dataframe_records": []}, "empty batch"),
    "no def line": ({"dataframe_records": [{**TASK, "header": "x = 1"}]}, "header"),
    "bad tests": ({"dataframe_records": [{**TASK, "tests": "assert f(1) == 1"}]}, "tests"),
    "bad param": ({"params": {"num_samples": 0}}, "num_samples"),
}


@pytest.mark.parametrize("case", BAD_REQUESTS)
def test_a_malformed_request_gets_a_400_naming_the_problem(mlflow_model_server, case):
    name, url = mlflow_model_server
    body, named = BAD_REQUESTS[case]
    body = {"dataframe_records": ROWS[name][:1], **body}
    if name == PI_REFINE and case != "empty batch":
        body["dataframe_records"] = [
            {"program": "def f(x):\n    pass\n", "feedback": "f", **r}
            for r in body["dataframe_records"]
        ]
    status, answer = _post(url, body)
    assert 400 <= status < 500, (status, answer)
    assert named in answer.get("message", ""), answer
    # ... and the server keeps serving.
    status, answer = _post(url, {"dataframe_records": ROWS[name][:1], "params": {"num_samples": 1}})
    assert status == 200 and len(answer["predictions"]) == 1, answer


@pytest.mark.parametrize("mlflow_model_server", [PI_REFINE], indirect=True)
def test_a_refiner_row_without_feedback_is_refused(mlflow_model_server):
    name, url = mlflow_model_server
    row = {k: v for k, v in ROWS[PI_REFINE][0].items() if k != "feedback"}
    status, answer = _post(url, {"dataframe_records": [row]})
    assert status == 400 and "feedback" in answer.get("message", ""), answer


@pytest.mark.parametrize("mlflow_model_server", [PI_THETA_STAR], indirect=True)
def test_the_docs_examples_run_as_written(mlflow_model_server, default_ilf_run):
    """docs/models.md: curl and requests against the served pi_theta*, then the notebook."""
    name, url = mlflow_model_server
    port = url.rsplit(":", 1)[1]
    env = _environment()
    curl = subprocess.run(
        ["bash", "-c", CURL.replace(DOC_PORT, port)],
        cwd=default_ilf_run,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    predictions = json.loads(curl.stdout)["predictions"]
    assert len(predictions) == 2 and all("sum_of_squares" in p["program"] for p in predictions)
    shown = {REQUESTS.replace(DOC_PORT, port): "def sum_of_squares(n):", NOTEBOOK: "sample_idx"}
    for code, expected in shown.items():
        done = subprocess.run(
            [sys.executable, "-c", code],
            cwd=default_ilf_run,
            env=env,
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        assert expected in done.stdout, done.stdout

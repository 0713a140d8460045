"""LabelStudioDataset on export files, and the whole round trip against a real label-studio.

The round trip starts `label-studio` on loopback (once per session) with its data and
config directories in a temporary folder, version check and analytics off. Label Studio
cannot share the project's environment (label-studio 1.23.2 pins openai<2 and pyarrow<25),
so it lives in its own virtual environment: the test runs the executable named by
ILF_LABEL_STUDIO_BIN, else `label-studio` on PATH, else .venv-label-studio/bin/label-studio
(where .ci/run installs it), and is skipped with the reason when there is none.
"""

import json
import os
import secrets
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
import yaml
from kedro.io import DatasetError

from ilf_kedro import label_studio
from ilf_kedro.datasets import LabelStudioDataset
from ilf_kedro.infra.commands import CommandNotFoundError, find_command
from ilf_kedro.infra.ports import free_port
from ilf_kedro.label_studio import LabelStudioClient
from tests.conftest import PROJECT_ROOT
from tests.kedro_project import copy_project, load, run_pipeline

EXPORT_PATH = PROJECT_ROOT / "tests/data/label_studio_export.json"
START_TIMEOUT_S = 240


def _complete_export(tmp_path) -> Path:
    export = [t for t in json.loads(EXPORT_PATH.read_text()) if t["data"]["task_id"] != 113]
    path = tmp_path / "export.json"
    path.write_text(json.dumps(export))
    return path


def test_loads_an_export_file(tmp_path):
    frame = LabelStudioDataset(filepath=str(_complete_export(tmp_path))).load()
    assert frame["task_id"].tolist() == [111, 311, 311]
    assert frame["passed"].dtype == bool


def test_loads_from_any_fsspec_protocol(tmp_path):
    import fsspec

    with fsspec.open("memory://label_studio/export.json", "wb") as handle:
        handle.write(_complete_export(tmp_path).read_bytes())
    frame = LabelStudioDataset(filepath="memory://label_studio/export.json").load()
    assert frame["task_id"].tolist() == [111, 311, 311]


def test_half_filled_export_names_the_file_and_task():
    with pytest.raises(DatasetError, match=r"label_studio_export.json: task_id 113 .*half-filled"):
        LabelStudioDataset(filepath=str(EXPORT_PATH)).load()


def test_configuration_mistakes_are_named():
    with pytest.raises(DatasetError, match="exactly one of 'filepath'"):
        LabelStudioDataset()
    with pytest.raises(DatasetError, match="set `filepath: null` there"):
        LabelStudioDataset(filepath="a.json", url="http://127.0.0.1:8080", project=1)
    with pytest.raises(DatasetError, match="'project' must be the project's integer id"):
        LabelStudioDataset(url="http://127.0.0.1:8080", project="one", credentials={"token": "t"})
    with pytest.raises(DatasetError, match="needs credentials with a 'token'"):
        LabelStudioDataset(url="http://127.0.0.1:8080", project=1)
    with pytest.raises(DatasetError, match="read-only"):
        LabelStudioDataset(filepath="a.json").save(pd.DataFrame())


# ---- the round trip against a real Label Studio server


def _label_studio_executable() -> str:
    configured = os.environ.get("ILF_LABEL_STUDIO_BIN")
    if configured:
        if not Path(configured).is_file():
            pytest.fail(f"ILF_LABEL_STUDIO_BIN={configured} is not a file")
        return configured
    try:
        return find_command(
            "label-studio",
            parameter="ILF_LABEL_STUDIO_BIN",
            extra_dirs=[PROJECT_ROOT / ".venv-label-studio/bin"],
        )
    except CommandNotFoundError as exc:
        pytest.skip(f"{exc} (`bash .ci/run` puts it in .venv-label-studio)")


def _wait_until_healthy(url: str, server: subprocess.Popen, log: Path) -> float:
    import requests

    started = time.monotonic()
    while time.monotonic() - started < START_TIMEOUT_S:
        if server.poll() is not None:
            pytest.fail(f"label-studio exited ({server.returncode}):\n{log.read_text()[-3000:]}")
        try:
            if requests.get(f"{url}/health", timeout=2).ok:
                return time.monotonic() - started
        except requests.ConnectionError:
            pass
        time.sleep(0.5)
    pytest.fail(f"label-studio not healthy after {START_TIMEOUT_S} s:\n{log.read_text()[-3000:]}")


@dataclass(frozen=True)
class Server:
    """A running label-studio: its URL, a legacy token and a personal access token."""

    url: str
    token: str
    personal_access_token: str


@pytest.fixture(scope="session")
def label_studio_server(tmp_path_factory):
    """A fresh label-studio on 127.0.0.1 with a legacy API token; yields a ``Server``."""
    executable = _label_studio_executable()
    home = tmp_path_factory.mktemp("label_studio")
    port, token = free_port(), secrets.token_hex(20)
    env = {
        **os.environ,
        "HOME": str(home),  # appdirs' config and cache directories live under it
        "XDG_CONFIG_HOME": str(home / "config"),
        "XDG_DATA_HOME": str(home / "share"),
        "XDG_CACHE_HOME": str(home / "cache"),
        "LABEL_STUDIO_BASE_DATA_DIR": str(home / "data"),
        "LATEST_VERSION_CHECK": "false",
        "COLLECT_ANALYTICS": "false",
        "SENTRY_DSN": "",
        "FRONTEND_SENTRY_DSN": "",
    }
    command = [
        executable, "start", "--no-browser",
        "--internal-host", "127.0.0.1", "--port", str(port),
        "--username", "annotator@example.com", "--password", secrets.token_hex(12),
        "--user-token", token, "--enable-legacy-api-token",
    ]  # fmt: skip
    log = home / "label_studio.log"
    with log.open("wb") as out:
        server = subprocess.Popen(
            command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    url = f"http://127.0.0.1:{port}"
    try:
        seconds = _wait_until_healthy(url, server, log)
        print(f"label-studio answered its health check {seconds:.1f} s after start")
        yield Server(url, token, _personal_access_token(url, token))
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


def _point_annotations_at(project: Path, source: dict, credentials: dict | None = None) -> None:
    """The run's environment (demo, which the tests run in): ``ilf_annotations_raw`` read
    through LabelStudioDataset from ``source``."""
    dataset = {"type": "ilf_kedro.datasets.LabelStudioDataset", **source}
    entry = {"type": "ilf_kedro.datasets.DeferredDataset", "dataset": dataset}
    env = project / "conf/demo"
    catalog = yaml.safe_load((env / "catalog.yml").read_text())
    catalog["ilf_annotations_raw"] = entry
    (env / "catalog.yml").write_text(yaml.safe_dump(catalog))
    (env / "credentials.yml").write_text(yaml.safe_dump(credentials or {}))


def test_round_trip_through_label_studio(label_studio_server, tmp_path):
    url, token = label_studio_server.url, label_studio_server.token
    project = copy_project(tmp_path / "project")
    run_pipeline(project, "data_processing")
    run_pipeline(project, "initial_sampling", params={"max_tasks_per_split": 2})
    tasks = json.loads((project / "data/07_model_output/annotation_tasks.json").read_text())
    assert {t["data"]["split"] for t in tasks} == {"refine", "train"}
    assert all("\nTests:\nassert " in t["data"]["test_results"] for t in tasks)

    client = LabelStudioClient(url, token)
    config = (project / "conf/base/label_studio/labeling_config.xml").read_text()
    ls_project = client.create_project("ILF feedback round trip", config)
    assert client.import_tasks(ls_project, tasks) == len(tasks)

    # One person's annotation of the refine-split task, as the labeling interface submits it.
    first = next(t for t in client.export(ls_project) if t["data"]["split"] == "refine")
    mbpp = {json.loads(line)["task_id"]: json.loads(line) for line in _demo_mbpp(project)}
    gold = mbpp[first["data"]["task_id"]]["code"]
    refinement = first["data"]["prompt"] + gold.split(":\n", 1)[1] + "\n"
    words = "The completion is not Python; loop over the items and return the first index."
    _submit(url, token, first["id"], label_studio.submission(words, refinement, passes=True))

    export = tmp_path / "export.json"
    export.write_text(json.dumps(client.export(ls_project)))
    _point_annotations_at(project, {"filepath": str(export)})
    run_pipeline(project, "data_processing", params={"annotations": {"max_edit_distance": None}})
    run_pipeline(project, "feedback")

    annotations = load(project, "feedback_annotations")
    assert annotations["task_id"].tolist() == [first["data"]["task_id"]]
    row = annotations.iloc[0]
    assert (row["feedback"], row["split"], row["feedback_source"]) == (words, "refine", "human")
    assert row["refinement"] == refinement and row["incorrect_program"] == first["data"]["program"]
    assert row["refinement_passed"]  # the feedback pipeline ran it against the task's tests

    # The same annotations straight from the server, through the catalog and credentials.
    from_file = LabelStudioDataset(filepath=str(export)).load()
    for credential in (token, label_studio_server.personal_access_token):
        server = {"filepath": None, "url": url, "project": ls_project}
        server["credentials"] = "label_studio"
        _point_annotations_at(project, server, {"label_studio": {"token": credential}})
        pd.testing.assert_frame_equal(load(project, "ilf_annotations_raw")(), from_file)


def test_server_errors_name_the_server_and_project(label_studio_server):
    url = label_studio_server.url
    with pytest.raises(DatasetError, match=f"{url}: exporting project 1 failed with HTTP 401"):
        LabelStudioDataset(url=url, project=1, credentials={"token": "0" * 40}).load()


def test_parser_refuses_an_export_of_another_configuration(label_studio_server):
    url, token = label_studio_server.url, label_studio_server.token
    client = LabelStudioClient(url, token)
    other = (
        '<View><Text name="program" value="$program"/>'
        '<TextArea name="answer" toName="program"/></View>'
    )
    ls_project = client.create_project("Another configuration", other)
    client.import_tasks(ls_project, [{"data": {"task_id": 111, "prompt": "p", "program": "x"}}])
    (task,) = client.export(ls_project)
    _submit(
        url,
        token,
        task["id"],
        [label_studio.submission("Wrong.", "y", True)[0] | {"from_name": "answer"}],
    )
    with pytest.raises(DatasetError, match="project [0-9]+: task_id 111 .*control 'answer'"):
        LabelStudioDataset(url=url, project=ls_project, credentials={"token": token}).load()


def _personal_access_token(url: str, legacy_token: str) -> str:
    """A personal access token (a JWT refresh token) made the way Account & Settings does."""
    import requests

    response = requests.post(
        f"{url}/api/token/", headers={"Authorization": f"Token {legacy_token}"}, timeout=30
    )
    assert response.status_code == 201, response.text
    return response.json()["token"]


def _demo_mbpp(project: Path) -> list[str]:
    return (project / "data/01_raw/demo/mbpp_demo.jsonl").read_text().splitlines()


def _submit(url: str, token: str, task: int, result: list) -> None:
    import requests

    response = requests.post(
        f"{url}/api/tasks/{task}/annotations/",
        headers={"Authorization": f"Token {token}"},
        json={"result": result, "was_cancelled": False},
        timeout=30,
    )
    assert response.status_code == 201, response.text

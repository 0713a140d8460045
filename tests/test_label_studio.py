"""Label Studio import tasks and export parsing (ilf_kedro.label_studio).

tests/data/label_studio_export.json is a real export of label-studio 1.23.2 (JSON format,
every task included) of a project made with conf/base/label_studio/labeling_config.xml and
five demo tasks, annotated through the REST API: task 111 annotated, 112 skipped, 113
half-filled (no refinement), 311 annotated twice, 312 with a draft only.
"""

import copy
import http.server
import json
import logging
import threading

import pandas as pd
import pytest

from ilf_kedro import feedback, label_studio, validation
from ilf_kedro.label_studio import LabelStudioExportError, parse_export
from tests.conftest import PROJECT_ROOT

EXPORT = json.loads((PROJECT_ROOT / "tests/data/label_studio_export.json").read_text())
CONFIG = (PROJECT_ROOT / "conf/base/label_studio/labeling_config.xml").read_text()


def _export_without(*task_ids):
    return [copy.deepcopy(t) for t in EXPORT if t["data"]["task_id"] not in task_ids]


def _task(task_id):
    return next(copy.deepcopy(t) for t in EXPORT if t["data"]["task_id"] == task_id)


def test_half_filled_annotation_stops_the_load_naming_the_task():
    with pytest.raises(LabelStudioExportError) as error:
        parse_export(EXPORT, "export.json")
    assert "export.json: task_id 113 (Label Studio task 7) annotation 6 is half-filled" in str(
        error.value
    )
    assert "refinement is empty" in str(error.value)


def test_submitted_annotations_in_the_released_schema_with_warnings(caplog):
    with caplog.at_level(logging.WARNING, logger="ilf_kedro.label_studio"):
        frame = parse_export(_export_without(113), "export.json")
    assert frame.columns.tolist() == label_studio.EXPORT_COLUMNS
    assert frame["task_id"].tolist() == [111, 311, 311]
    first = frame.iloc[0]
    task = _task(111)
    assert first["Feedback"].startswith("The comparison must be strict")
    assert first["original_model_completion"] == task["data"]["program"]
    assert first["prompt"] == task["data"]["prompt"]
    assert first["unedited_annotator_completion"].startswith(task["data"]["prompt"])
    assert "if value > threshold" in first["unedited_annotator_completion"]
    assert bool(first["passed"]) and first["label_studio_task"] == task["id"]
    log = caplog.text
    assert "skipped by the annotator, not used: task_id 112 (Label Studio task 6)" in log
    assert "no annotation yet: task_id 312 (Label Studio task 9) (draft not submitted)" in log
    assert "several annotations for one task, all kept" in log
    assert "task_id 311 (Label Studio task 8 annotation 7, Label Studio task 8 annotation 8)" in log


def test_parsed_export_passes_validation_and_the_paper_filters(mbpp_raw_demo, demo_tasks):
    raw = parse_export(_export_without(113), "export.json")
    checked = validation.validate_annotations(raw, mbpp_raw_demo["task_id"])
    kept = feedback.normalise_annotations(checked, demo_tasks, max_edit_distance=0.5, seed=0)
    assert kept["task_id"].tolist() == [111, 311]  # one of task 311's two annotations
    assert kept.set_index("task_id").loc[111, "split"] == "refine"


@pytest.mark.parametrize(
    ("result", "message"),
    [
        (label_studio.submission("", "def f(): pass", True), "feedback is empty"),
        (label_studio.submission("Wrong.", "x", True)[:2], "no pass/fail answer"),
        ([], "feedback is empty, refinement is empty, no pass/fail answer"),
    ],
)
def test_every_kind_of_half_filled_annotation_is_named(result, message):
    task = _task(111)
    task["annotations"][0]["result"] = result
    with pytest.raises(LabelStudioExportError, match=f"task_id 111 .*half-filled: {message}"):
        parse_export([task])


def test_failing_program_submitted_unchanged_is_refused():
    task = _task(111)
    program = task["data"]["program"]
    task["annotations"][0]["result"] = label_studio.submission("Fix it.", program, True)
    with pytest.raises(LabelStudioExportError, match="failing program unchanged"):
        parse_export([task])


def test_an_annotator_saying_the_refinement_fails_gives_passed_false():
    task = _task(111)
    task["annotations"][0]["result"][2]["value"]["choices"] = ["fails"]
    assert not parse_export([task])["passed"].iloc[0]


def test_results_of_another_labeling_configuration_are_refused():
    task = _task(111)
    task["annotations"][0]["result"][0]["from_name"] = "answer"
    with pytest.raises(LabelStudioExportError, match="control 'answer'.*labeling configuration"):
        parse_export([task])


def test_every_problem_is_listed_at_once():
    bad_config, half = _task(111), _task(113)
    bad_config["annotations"][0]["result"][0]["from_name"] = "answer"
    with pytest.raises(LabelStudioExportError) as error:
        parse_export([bad_config, half])
    assert "task_id 111" in str(error.value) and "task_id 113" in str(error.value)


def test_other_export_formats_are_refused_with_the_fix():
    json_min = [{"id": 1, "task_id": 111, "feedback": "x"}]
    with pytest.raises(LabelStudioExportError, match="Label Studio task 1.*JSON_MIN"):
        parse_export(json_min)
    with pytest.raises(LabelStudioExportError, match="expected a JSON list of tasks"):
        parse_export({"tasks": []})
    with pytest.raises(LabelStudioExportError, match="export.csv: not valid JSON"):
        label_studio.load_export_text("id,task_id\n1,111\n", "export.csv")


def test_import_tasks_show_the_verdict_and_the_asserts(demo_tasks):
    task = demo_tasks.set_index("task_id").loc[111]
    program = task["prompt"] + "    return 0\n"
    queue = pd.DataFrame(
        {
            "task_id": [111],
            "prompt": [task["prompt"]],
            "Feedback": [""],
            "original_model_completion": [program],
            "unedited_annotator_completion": [""],
            "passed": [False],
        }
    )
    results = pd.DataFrame(
        {
            "task_id": [111, 111],
            "program": [program, "other"],
            "passed": [False, False],
            "status": ["failed", "error"],
            "error_type": ["AssertionError", "SyntaxError"],
            "error_message": ["first_above([1, 2, 3], 3) returned 0, expected -1", "bad"],
        }
    )
    (imported,) = label_studio.build_import_tasks(queue, results, demo_tasks)
    data = imported["data"]
    assert (data["task_id"], data["split"], data["program"]) == (111, "refine", program)
    assert data["test_results"].startswith(
        "Verdict: failed\nError: AssertionError: first_above([1, 2, 3], 3) returned 0, "
        "expected -1\n\nTests:\n"
    )
    assert all(test in data["test_results"] for test in task["tests"])
    prefill = imported["predictions"][0]["result"][0]
    assert prefill["from_name"] == "refinement" and prefill["value"]["text"] == [program]


def test_import_tasks_refuse_a_program_without_a_verdict(demo_tasks):
    queue = pd.DataFrame(
        {"task_id": [111], "prompt": ["p"], "original_model_completion": ["never tested"]}
    )
    results = pd.DataFrame({"task_id": [111], "program": ["x"], "status": ["failed"]})
    with pytest.raises(ValueError, match="task_id 111 has no verdict in the test results"):
        label_studio.build_import_tasks(queue, results, demo_tasks)


def test_the_repository_labeling_config_matches_the_parser():
    label_studio.check_labeling_config(CONFIG)
    with pytest.raises(ValueError, match="no control named 'refinement_passes'"):
        label_studio.check_labeling_config(CONFIG.replace('"refinement_passes"', '"ok"'))
    with pytest.raises(ValueError, match=r"task field\(s\) \['code'\]"):
        label_studio.check_labeling_config(CONFIG.replace('"$program"', '"$code"'))


@pytest.fixture(scope="module")
def mbpp_raw_demo():
    from ilf_kedro.datasets import JSONLinesDataset

    return JSONLinesDataset(filepath=str(PROJECT_ROOT / "data/01_raw/demo/mbpp_demo.jsonl")).load()


@pytest.fixture(scope="module")
def demo_tasks(mbpp_raw_demo):
    from ilf_kedro.tasks import build_tasks
    from tests.conftest import PAPER_SPLITS

    tasks, _ = build_tasks(mbpp_raw_demo, PAPER_SPLITS)
    return tasks


class _TokenCountingServer(http.server.BaseHTTPRequestHandler):
    """The two routes a personal access token round trip uses, counting token exchanges
    (label-studio itself needs its own virtualenv: tests/datasets/test_label_studio.py)."""

    refreshes: list[str] = []
    valid_access: set[str] = set()

    def _answer(self, status: int, body) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"null")
        if self.path == "/api/token/refresh/":
            access = f"access-{len(self.refreshes)}"
            self.refreshes.append(body["refresh"])
            self.valid_access.add(access)
            return self._answer(200, {"access": access})
        if self.headers["Authorization"].removeprefix("Bearer ") not in self.valid_access:
            return self._answer(401, {"detail": "expired"})
        return self._answer(201, {"id": 7, "task_count": len(body or [])})

    def log_message(self, *args):
        pass


def test_a_personal_access_token_is_exchanged_once_per_client_and_again_when_expired():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _TokenCountingServer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        client = label_studio.LabelStudioClient(url, "header.payload.signature")
        assert client.create_project("p", CONFIG) == 7
        assert client.import_tasks(7, [{"data": {}}] * 3) == 3
        assert client.import_tasks(7, [{"data": {}}]) == 1
        assert _TokenCountingServer.refreshes == ["header.payload.signature"]
        _TokenCountingServer.valid_access.clear()  # the access token expires
        assert client.import_tasks(7, [{"data": {}}] * 2) == 2
        assert len(_TokenCountingServer.refreshes) == 2
    finally:
        server.shutdown()
        server.server_close()

"""Label Studio export parsing (ilf_kedro.label_studio.export).

tests/data/label_studio_export.json is a real export of label-studio 1.23.2 (JSON format,
every task included) of a project made with conf/base/label_studio/labeling_config.xml and
five demo tasks, annotated through the REST API: task 111 annotated, 112 skipped, 113
half-filled (no refinement), 311 annotated twice, 312 with a draft only.
"""

import copy
import json
import logging

import pytest

from ilf_kedro import label_studio
from ilf_kedro.feedback import sources
from ilf_kedro.ingest import validation
from ilf_kedro.label_studio import LabelStudioExportError, parse_export
from tests.conftest import PROJECT_ROOT

EXPORT = json.loads((PROJECT_ROOT / "tests/data/label_studio_export.json").read_text())


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
    kept = sources.normalise_annotations(checked, demo_tasks, max_edit_distance=0.5, seed=0)
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

"""`kedro run --pipelines=data_processing` end to end, in a copy of the project."""

import json

import pytest

from tests.kedro_project import catalog_path, copy_project, load, run_pipeline


@pytest.fixture
def project(tmp_path):
    return copy_project(tmp_path / "project")


@pytest.mark.slow  # a whole pipeline run
def test_default_run_on_the_demo_data(project):
    run_pipeline(project, "data_processing")
    tasks = load(project, "tasks")
    annotations = load(project, "human_feedback_annotations")
    assert len(tasks) >= 40
    assert set(tasks["split"]) == {"prompt", "test", "refine", "train"}
    counts = annotations["split"].value_counts()
    assert counts["refine"] >= 8 and counts["train"] >= 8
    assert catalog_path(project, "prompt_errors").exists()
    limits = load(project, "task_time_limits")
    assert list(limits.columns) == ["task_id", "time_limit_s", "gold_duration_s"]
    assert limits["task_id"].tolist() == tasks["task_id"].tolist()
    assert (limits["time_limit_s"] >= 3.0).all() and (limits["gold_duration_s"] > 0).all()


@pytest.mark.slow
def test_paper_env_on_the_shared_data(project, mbpp_path, annotations_path):
    run_pipeline(
        project,
        "data_processing",
        env="paper",
        params={"mbpp_uri": str(mbpp_path), "annotations_uri": str(annotations_path)},
    )
    tasks = load(project, "tasks")
    annotations = load(project, "human_feedback_annotations")
    assert len(tasks) == 974
    counts = annotations["split"].value_counts()
    assert (counts["refine"], counts["train"]) == (44, 128)
    # `paper` turns the edit-distance filter off: the five curated outliers stay.
    assert {260, 386, 511, 620, 702} <= set(annotations["task_id"])


def _write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def test_bad_annotations_stop_the_run_and_write_nothing_they_feed(project):
    rows = [
        json.loads(line)
        for line in (project / "data/01_raw/demo/annotations_demo.jsonl").read_text().splitlines()
    ]
    rows[3]["task_id"] = 4242
    bad = _write_jsonl(project / "bad.jsonl", rows)
    with pytest.raises(Exception, match=r"ilf_annotations_raw: column 'task_id'.*task_id 4242"):
        run_pipeline(project, "data_processing", params={"annotations_uri": bad})
    assert not catalog_path(project, "human_feedback_annotations").exists()


def test_undecodable_task_file_stops_before_anything_is_written(project):
    path = project / "bad_tasks.jsonl"
    path.write_bytes(b'{"task_id": 5, "text": "caf\xe9"}\n')
    with pytest.raises(Exception, match=r"bad_tasks.jsonl, line 1 \(task_id 5\).*UTF-8"):
        run_pipeline(project, "data_processing", params={"mbpp_uri": str(path)})
    assert not catalog_path(project, "tasks").exists()

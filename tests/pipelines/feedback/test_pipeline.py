"""Every feedback source and refiner variant through `ilf` / `ilf_ablations`, at toy scale,
in a copy of the project; the endpoint paths against a real server (transformers serve)."""

from __future__ import annotations

import pytest

from tests.kedro_project import copy_project, load, run_pipeline

pytestmark = pytest.mark.slow

TOY = {"max_tasks_per_split": 2, "sampling.num_samples": 2, "sampling.max_new_tokens": 16}


@pytest.fixture
def project(tmp_path):
    return copy_project(tmp_path / "project")


def test_interpreter_feedback_runs_ilf_on_the_models_own_failures(project, tmp_path):
    # The annotation file does not exist: an automatic source must never read it.
    absent = tmp_path / "no-annotations-here.jsonl"
    params = {**TOY, "feedback.source": "interpreter", "annotations_uri": str(absent)}
    run_pipeline(project, "ilf", params=params)

    failing = load(project, "failing_programs")
    annotations = load(project, "feedback_annotations")
    assert set(failing["split"]) == {"refine", "train"} and len(failing) == 4
    assert annotations["task_id"].tolist() == failing["task_id"].tolist()
    assert (annotations["feedback_source"] == "interpreter").all()
    assert (annotations["refinement_source"] == "gold").all()
    assert annotations["refinement_passed"].all()  # gold programs stand in, and pass
    assert annotations["feedback"].str.contains("test|raises|does not run|in time").all()
    assert len(load(project, "refiner_examples")) == 2
    metrics = load(project, "eval_metrics").set_index("method")
    assert metrics.loc["ILF", "feedback_source"] == "interpreter"
    assert metrics.loc["zero-shot", "feedback_source"] == "none"
    assert "gold stand-in refinements" in metrics.index
    table = load(project, "comparison_table").set_index("method")
    assert table.loc["ILF", "feedback_source"] == "interpreter"
    report = load(project, "refinement_report").set_index("table")
    assert report.loc["Table 3", "feedback_source"] == "interpreter"
    assert report.loc["Table 3", "refiner"] == "fine-tuned pi_Refine"
    summary = load(project, "run_summary")
    assert "(feedback: interpreter; refinements: gold)" in summary
    assert "by fine-tuned pi_Refine" in summary


def test_llm_feedback_and_refinements_come_from_a_real_endpoint(project, tiny_server, tmp_path):
    cache = tmp_path / "llm-cache"
    llm = {
        "base_url": tiny_server.base_url,
        "model": tiny_server.model,
        "api": "chat",
        "cache_dir": str(cache),
        "max_tokens": 12,
    }
    params = {**TOY, "feedback.source": "llm", "feedback.llm": llm}
    run_pipeline(project, "ilf", params=params, to_outputs=["feedback_annotations"])

    failing = load(project, "failing_programs")
    annotations = load(project, "feedback_annotations")
    assert len(failing) == 4
    # One feedback and one refinement request per failing program, each cached on disk.
    assert len(list(cache.rglob("*.json"))) == 2 * len(failing)
    assert set(annotations["task_id"]) <= set(failing["task_id"])
    assert (annotations["feedback_source"] == "llm").all()
    assert (annotations["refinement_source"] == "llm").all()
    assert (annotations["feedback"].str.strip() != "").all()


def test_a_few_shot_refiner_behind_an_endpoint_refines(project, tiny_server, tmp_path):
    endpoint = {
        "base_url": tiny_server.base_url,
        "model": tiny_server.model,
        "api": "completions",
        "cache_dir": str(tmp_path / "cache"),
    }
    params = {**TOY, "refiner.kind": "few_shot", "refiner.shots": 1, "refiner.endpoint": endpoint}
    run_pipeline(project, "ilf", params=params, to_outputs=["refinement_results"])

    prompts = load(project, "refinement_prompts")
    refinements = load(project, "refinement_results")
    # One worked example, then the query: two Figure 2 prompts in each.
    assert (prompts["prompt"].str.count("OLD CODE:\n") == 2).all()
    assert len(refinements) == 2 * len(prompts)
    assert (refinements["refiner"] == f"1-shot {tiny_server.model}").all()
    assert set(refinements["status"]) <= {"passed", "failed", "error", "timeout", "crashed"}


def test_ilf_ablations_writes_table_2_and_the_few_shot_rows_of_table_4(project):
    run_pipeline(project, "ilf_ablations", params=TOY)

    ablation = load(project, "refinement_ablation")
    assert ablation["prompt_contents"].tolist() == ["code + feedback", "code + unrelated feedback"]
    assert (ablation["refiner"] == "fine-tuned pi_Refine").all()
    assert (ablation["n_tasks"] == 2).all() and {"pass@1", "pass@10"} <= set(ablation.columns)
    own = load(project, "annotations_to_refine")
    moved = load(project, "unrelated_feedback.annotations_to_refine")
    assert (own["task_id"] == moved["task_id"]).all()
    assert (own["feedback"] != moved["feedback"]).all()
    methods = load(project, "eval_metrics")["method"].tolist()
    assert methods[-2:] == ["1-shot refiner", "2-shot refiner"]
    two_shot = load(project, "two_shot_refiner.refinement_prompts")
    assert (two_shot["prompt"].str.count("OLD CODE:\n") == 3).all()


def test_a_bad_feedback_source_stops_the_run_before_anything_runs(project):
    with pytest.raises(ValueError, match="feedback.source is 'crowd'.*'human'"):
        run_pipeline(project, "ilf", params={"feedback.source": "crowd"})
    assert not list((project / "data").rglob("*.parquet"))

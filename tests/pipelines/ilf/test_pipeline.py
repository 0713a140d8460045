"""`kedro run --pipelines=ilf` end to end: the offline default and the paper's data at toy
scale. Each run happens once per session (see conftest's ``default_ilf_run``)."""

import json
import os
import subprocess
import sys

import pytest

from ilf_kedro.pipelines.ilf import create_pipeline
from tests.conftest import NUM_SAMPLES
from tests.kedro_project import catalog_path, copy_project, load

ILF_TABLES = [
    "tasks",
    "feedback_annotations",
    "refiner_training_set",
    "refinement_prompts",
    "refinements",
    "refinement_results",
    "refinement_stats",
    "passing_refinements",
    "ilf_training_set",
    "test_prompts",
    "eval_metrics",
]
METHODS = ["zero-shot", "ILF", "MBPP gold", "human refinements", "RFT", "ILF + RFT"]


def test_every_ilf_dataset_is_written(default_ilf_run):
    for name in ILF_TABLES:
        assert catalog_path(default_ilf_run, name).exists(), name
    refinements = load(default_ilf_run, "refinements")
    prompts = load(default_ilf_run, "refinement_prompts")
    assert len(prompts) >= 8
    assert len(refinements) == len(prompts) * NUM_SAMPLES
    assert refinements["prompt"].str.startswith("OLD CODE:\n").all()
    # The refined program starts with the task's code-generation prompt.
    tasks = load(default_ilf_run, "tasks").set_index("task_id")
    assert all(
        program.startswith(tasks.loc[task_id, "prompt"])
        for task_id, program in zip(refinements["task_id"], refinements["program"], strict=True)
    )
    results = load(default_ilf_run, "refinement_results")
    assert set(results["status"]) <= {"passed", "failed", "error", "timeout", "crashed"}
    # The human refinements of the refine split pass, so pi_Refine has real training data.
    training = load(default_ilf_run, "refiner_training_set")
    assert len(training) >= 8


def test_models_are_saved_with_their_provenance(default_ilf_run):
    for name in ("refiner_model", "ilf_model"):
        bundle = load(default_ilf_run, name)
        assert bundle.info["random_weights"] is True
    assert load(default_ilf_run, "refiner_model").info["training_examples"] >= 8


def test_eval_metrics_has_one_row_per_method(default_ilf_run):
    metrics = load(default_ilf_run, "eval_metrics")
    assert metrics["method"].tolist() == METHODS
    assert {"pass@1", "pass@10", "n", "n_tasks", "training_set_size"} <= set(metrics.columns)
    assert (metrics["n"] == NUM_SAMPLES).all() and (metrics["n_tasks"] == 13).all()
    assert metrics["pass@1"].between(0, 1).all() and metrics["pass@10"].between(0, 1).all()
    ilf_size = len(load(default_ilf_run, "ilf_training_set"))
    ilf_row = metrics.set_index("method").loc["ILF"]
    assert ilf_row["training_set_size"] == ilf_size
    # An empty training set (the random refiner wrote nothing that passes) is said, not
    # hidden; a non-empty one leaves no reason behind.
    assert ("empty" in ilf_row["untrained_reason"]) == (ilf_size == 0), ilf_row.to_dict()


def test_evaluation_reuses_one_modular_pipeline_per_method():
    names = {node.name for node in create_pipeline().nodes}
    for namespace in ("zero_shot", "ilf", "gold", "source_refinements", "rft", "ilf_rft"):
        assert f"{namespace}.sample_test_programs" in names
        assert f"{namespace}.compute_pass_at_k" in names
    for namespace in ("gold", "source_refinements", "rft", "ilf_rft"):
        assert f"{namespace}.train_model" in names
    assert "zero_shot.train_model" not in names


@pytest.mark.slow
def test_paper_environment_at_toy_scale_from_the_command_line(
    tmp_path, mbpp_path, annotations_path, humaneval_path
):
    project = copy_project(tmp_path / "project")
    params = ",".join(
        [
            f"mbpp_uri={mbpp_path}",
            f"annotations_uri={annotations_path}",
            f"humaneval_uri={humaneval_path}",
            "base_model=tiny-random",
            "max_tasks_per_split=5",
            "sampling.num_samples=2",
            "sampling.max_new_tokens=64",
        ]
    )
    command = [
        sys.executable,
        "-m",
        "kedro",
        "run",
        "--env=paper",
        "--pipelines=ilf",
        f"--params={params}",
    ]
    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "true", "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(
        command, cwd=project, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    metrics = load(project, "eval_metrics")
    # The paper environment evaluates on MBPP_Test and HumanEval.
    assert metrics["method"].tolist() == METHODS * 2
    assert metrics["task_set"].tolist() == ["mbpp"] * len(METHODS) + ["humaneval"] * len(METHODS)
    assert (metrics["n_tasks"] == 5).all() and (metrics["n"] == 2).all()
    training = load(project, "refiner_training_set")
    assert len(training) == 5  # the first five refine-split annotations, all passing
    assert "RANDOM" in done.stdout + done.stderr


@pytest.mark.slow
@pytest.mark.parametrize("pipeline", ["initial_sampling"])
def test_initial_sampling_writes_failing_tasks_and_a_queue(tmp_path, pipeline):
    from tests.kedro_project import run_pipeline

    project = copy_project(tmp_path / "project")
    run_pipeline(project, "data_processing")
    run_pipeline(project, pipeline, params={"max_tasks_per_split": 3})
    stats = load(project, "task_pass_stats")
    failing = load(project, "failing_tasks")
    queue = load(project, "annotation_queue")
    assert len(stats) == 6  # three refine and three train tasks
    assert set(failing["task_id"]) == set(stats.loc[stats["c"] == 0, "task_id"])
    assert set(queue["task_id"]) == set(failing["task_id"])
    assert (queue["Feedback"] == "").all()
    # ...and the same queue as a Label Studio import, one task per queued program.
    imported = json.loads((project / "data/07_model_output/annotation_tasks.json").read_text())
    assert [t["data"]["task_id"] for t in imported] == queue["task_id"].tolist()
    assert [t["data"]["program"] for t in imported] == queue["original_model_completion"].tolist()

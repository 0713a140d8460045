"""Label Studio import tasks (ilf_kedro.label_studio.tasks): each failing program with its
verdict and its task's asserts."""

import pandas as pd
import pytest

from ilf_kedro import label_studio


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

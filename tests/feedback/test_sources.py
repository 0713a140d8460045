import pandas as pd
import pytest

from ilf_kedro.feedback.sources import normalise_annotations
from ilf_kedro.feedback.stats import annotation_stats, edit_distance
from ilf_kedro.ingest.validation import ANNOTATION_COLUMNS


def test_released_annotations_give_44_refine_and_128_train(annotations_raw, mbpp_tasks):
    annotations = normalise_annotations(annotations_raw, mbpp_tasks, max_edit_distance=None, seed=0)
    counts = annotations["split"].value_counts().to_dict()
    assert counts["refine"] == 44 and counts["train"] == 128
    assert annotations["task_id"].is_unique
    assert (annotations["feedback_source"] == "human").all()
    assert not annotations["refinement"].str.contains("\r").any()
    stats = annotation_stats(annotations).set_index("split")
    assert stats.loc["all", "annotations"] == 195
    assert stats.loc["all", "feedback_words_mean"] == pytest.approx(68.7, abs=0.05)
    assert stats.loc["all", "feedback_words_std"] == pytest.approx(48.0, abs=0.05)


def test_edit_distance_threshold_drops_the_five_curated_outliers(annotations_raw, mbpp_tasks):
    kept = normalise_annotations(annotations_raw, mbpp_tasks, max_edit_distance=0.5, seed=0)
    assert set(annotations_raw["task_id"]) - set(kept["task_id"]) == {260, 386, 511, 620, 702}


def _raw(rows):
    return pd.DataFrame(rows, columns=list(ANNOTATION_COLUMNS))


TASKS = pd.DataFrame({"task_id": [111, 112, 311], "split": ["refine", "refine", "train"]})


def test_filters_empty_failing_and_marked_rows():
    raw = _raw(
        [
            (111, "", "def f(): return 1", "def f(): return 2", True),
            (112, "fix it", "def f(): return 1", "Refinement:\ndef f(): return 2", True),
            (311, "fix it", "def f(): return 1", "def f(): return 2", False),
        ]
    )
    kept = normalise_annotations(raw, TASKS, max_edit_distance=0.5, seed=0)
    assert kept["task_id"].tolist() == [112]
    assert kept.loc[0, "refinement"] == "def f(): return 2"
    assert kept.loc[0, "edit_distance"] == pytest.approx(
        edit_distance("def f(): return 2", "def f(): return 1")
    )


def test_one_annotation_per_task_chosen_by_seed():
    raw = _raw(
        [(111, f"fb {i}", "def f(): return 1", f"def f(): return {i}", True) for i in range(2, 8)]
    )
    picks = {
        normalise_annotations(raw, TASKS, max_edit_distance=None, seed=s).loc[0, "feedback"]
        for s in range(10)
    }
    assert len(picks) > 1
    again = normalise_annotations(raw, TASKS, max_edit_distance=None, seed=3)
    assert again.equals(normalise_annotations(raw, TASKS, max_edit_distance=None, seed=3))


# ---- feedback sources ---------------------------------------------------------------


@pytest.mark.parametrize("n", [2, 3, 7, 128])
def test_derangement_moves_every_row_and_is_seeded(n):
    from ilf_kedro.feedback.sources import derangement

    order = derangement(n, seed=5)
    assert sorted(order) == list(range(n))
    assert all(order[i] != i for i in range(n))
    assert (derangement(n, seed=5) == order).all()


def test_unrelated_feedback_keeps_the_texts_but_moves_each_to_another_task(
    annotations_raw, mbpp_tasks
):
    from ilf_kedro.feedback.sources import unrelated_feedback

    human = normalise_annotations(annotations_raw, mbpp_tasks, max_edit_distance=None, seed=0)
    moved = unrelated_feedback(human, seed=0)
    assert sorted(moved["feedback"]) == sorted(human["feedback"])
    assert (moved["feedback"] != human["feedback"]).all()
    assert (moved["refinement"] == human["refinement"]).all()
    assert (moved["feedback_source"] == "unrelated").all()
    with pytest.raises(ValueError, match="at least 2"):
        unrelated_feedback(human.head(1), seed=0)


def test_interpreter_feedback_describes_real_verdicts_in_sentences():
    from ilf_kedro.execution import evaluate_programs
    from ilf_kedro.feedback.sources import interpreter_feedback

    tasks = pd.DataFrame(
        {"task_id": [1], "tests": [["assert add(1, 2) == 3"]], "test_setup_code": [""]}
    )
    programs = pd.DataFrame(
        {
            "task_id": [1, 1, 1, 1, 1],
            "program": [
                "def add(a, b):\n    return a - b\n",
                "def add(a, b):\n    return a / 0\n",
                "def add(a, b):\n    while True:\n        pass\n",
                "def add(a, b) return a\n",
                "def add(a, b):\n    return 'x' * (32 << 20)\n",  # over max_result_bytes
            ],
        }
    )
    verdicts = evaluate_programs(programs, tasks, timeout_s=1, progress=False)
    texts = [
        interpreter_feedback(v.status, v.error_type, v.error_message) for v in verdicts.itertuples()
    ]
    assert "fails the test `assert add(1, 2) == 3`" in texts[0]
    assert "ZeroDivisionError" in texts[1] and "division by zero" in texts[1]
    assert "did not finish in time" in texts[2]
    assert "SyntaxError" in texts[3] and "does not run" in texts[3]
    assert verdicts["status"].iloc[4] == "harness_limit"
    assert "could not judge" in texts[4] and "may be right" in texts[4]
    assert all(text.endswith(".") for text in texts)


def test_templates_name_the_parameter_and_the_allowed_fields():
    from ilf_kedro.parameters import Feedback, section

    def llm(**templates):
        settings = {"base_url": "u", "model": "m", **templates}
        return section(Feedback, {"source": "llm", "llm": settings}, "feedback")

    fine = llm(feedback_template="{task} {program}", refinement_template="{feedback}")
    assert fine.llm.feedback_template == "{task} {program}"
    with pytest.raises(
        ValueError,
        match=r"feedback.llm.refinement_template uses unknown field\(s\) \['code'\]",
    ):
        llm(feedback_template="{task}", refinement_template="{code}")
    with pytest.raises(ValueError, match="feedback_template uses .*allowed: {task}, {prompt}"):
        llm(feedback_template="{feedback}", refinement_template="{feedback}")
    with pytest.raises(ValueError, match="feedback.llm.refinement_template must be a non-empty"):
        llm(feedback_template="{task}", refinement_template=" ")
    with pytest.raises(ValueError, match="feedback.llm.feedback_template is missing"):
        llm(refinement_template="{feedback}")


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("Here:\n```python\ndef f(x):\n    return x\n```\nDone.", "def f(x):\n    return x\n"),
        ("```\ndef f(x):\n    return 1\n", "def f(x):\n    return 1\n"),
        ("    return x + 1", "def f(x):\n    return x + 1"),
    ],
)
def test_the_program_is_taken_from_a_models_answer(answer, expected):
    from ilf_kedro.feedback.sources import extract_program

    assert extract_program(answer, "def f(x):\n", "f") == expected


def test_an_unknown_source_names_the_parameter_and_the_sources():
    from ilf_kedro.parameters import Feedback, section

    with pytest.raises(
        ValueError,
        match="feedback.source is 'humans': Input should be 'human', 'unrelated', 'interpreter'",
    ):
        section(Feedback, {"source": "humans", "llm": {}}, "feedback")

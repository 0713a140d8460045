import pandas as pd
import pytest

from ilf_kedro.feedback import annotation_stats, edit_distance, normalise_annotations


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
    return pd.DataFrame(
        rows,
        columns=[
            "task_id",
            "Feedback",
            "original_model_completion",
            "unedited_annotator_completion",
            "passed",
        ],
    )


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

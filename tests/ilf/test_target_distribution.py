"""ilf_kedro.ilf.target_distribution: the theory's numbers on enumerated candidates."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from ilf_kedro.ilf.target_distribution import (
    METRIC_COLUMNS,
    candidate_pairs,
    distribution_metrics,
)

# Two test tasks and one train task; each has two right programs and one or two slips.
CANDIDATES = pd.DataFrame(
    {
        "candidate": range(10),
        "task_id": [1, 1, 1, 2, 2, 2, 2, 3, 3, 3],
        "split": ["test"] * 7 + ["train"] * 3,
        "correct": [True, True, False, True, True, False, False, True, True, False],
    }
)


def _scores(method: str, probabilities: list[float]) -> pd.DataFrame:
    return CANDIDATES.assign(method=method, log_likelihood=np.log(probabilities))


BASE = [0.2, 0.1, 0.3, 0.05, 0.05, 0.2, 0.1, 0.3, 0.1, 0.2]


def test_the_base_model_is_its_own_reference():
    (row,) = distribution_metrics([_scores("zero-shot", BASE)], "test", "train").to_dict("records")
    masses = [0.3 / 0.6, 0.1 / 0.4]
    assert row["correct_mass"] == pytest.approx(np.mean(masses))
    # KL(base | right, renormalised || base) = -log(base's mass on the right programs).
    assert row["kl_to_target"] == pytest.approx(np.mean([-math.log(m) for m in masses]))
    assert row["kl_from_base"] == pytest.approx(0.0, abs=1e-12)
    assert row["coverage"] == pytest.approx(np.mean([0.6, 0.4]))
    assert (row["test_tasks"], row["train_tasks"]) == (2, 1)


def test_a_model_at_the_target_has_no_kl_to_it_and_moved_from_the_base():
    # The target: the base model's right programs, renormalised; nothing on the slips.
    target = [0.2, 0.1, 1e-12, 0.05, 0.05, 1e-12, 1e-12, 0.3, 0.1, 1e-12]
    uniform = [0.1] * 10
    table = distribution_metrics(
        [_scores("zero-shot", BASE), _scores("ILF", target), _scores("other", uniform)],
        "test",
        "train",
    )
    assert list(table.columns) == METRIC_COLUMNS
    ilf = table.set_index("method").loc["ILF"]
    assert ilf["correct_mass"] == pytest.approx(1.0)
    assert ilf["kl_to_target"] == pytest.approx(0.0, abs=1e-9)
    # On the train task: KL((0.75, 0.25, 0) || (0.5, 1/6, 1/3)).
    expected = 0.75 * math.log(0.75 / 0.5) + 0.25 * math.log(0.25 / (1 / 6))
    assert ilf["kl_from_base"] == pytest.approx(expected, rel=1e-6)
    other = table.set_index("method").loc["other"]
    assert other["kl_to_target"] > 0 and other["correct_mass"] == pytest.approx(
        np.mean([2 / 3, 2 / 4])
    )


def test_scores_must_cover_the_same_candidates():
    short = _scores("ILF", [0.1] * 10).iloc[:-1]
    with pytest.raises(ValueError, match="do not cover"):
        distribution_metrics([_scores("zero-shot", BASE), short], "test", "train")


def test_candidate_pairs_are_the_bodies_after_each_task_prompt():
    tasks = pd.DataFrame(
        {
            "task_id": [1, 2, 3, 4],
            "split": ["test", "train", "train", "refine"],
            "prompt": [f'"""\nTask {t}.\n"""\ndef f(x):\n' for t in range(1, 5)],
        }
    )
    candidates = pd.DataFrame(
        {
            "task_id": [1, 1, 2, 3, 4],
            "correct": [True, False, True, True, True],
            "program": [
                "def f(x):\n    return x\n",
                "def f(x):\n    return -x\n",
                "def f(x):\n    return 2\n",
                "def f(x):\n    return 3\n",
                "def f(x):\n    return 4\n",
            ],
        }
    )
    pairs = candidate_pairs(candidates, tasks, "test", "train", None, 0)
    assert list(pairs["task_id"]) == [1, 1, 2, 3]  # the refine split is not used
    assert list(pairs["completion"]) == ["    return x\n", "    return -x\n"] + [
        "    return 2\n",
        "    return 3\n",
    ]
    assert list(pairs["candidate"]) == [0, 1, 2, 3]
    capped = candidate_pairs(candidates, tasks, "test", "train", 1, 0)
    assert capped["task_id"].tolist()[:2] == [1, 1] and capped["split"].value_counts()["train"] == 1

"""ilf_kedro.reporting.summary: the plain-text run summary."""

from __future__ import annotations

import pandas as pd

from ilf_kedro.reporting import summary


def test_run_summary_counts_each_stage(eval_metrics):
    tasks = pd.DataFrame({"task_id": [1, 2, 3, 4], "split": ["test", "test", "train", "train"]})
    annotations = pd.DataFrame({"task_id": [3, 4], "split": ["train", "train"]})
    refinements = pd.DataFrame({"task_id": [3, 3, 4, 4]})
    passing = pd.DataFrame({"task_id": [3]})
    training = pd.DataFrame({"task_id": [3]})
    text = summary.run_summary(tasks, annotations, refinements, passing, training, eval_metrics)
    assert "tasks:                     4 (test 2, train 2)" in text
    assert "refinements generated:     4 for 2 task(s)" in text
    assert "refinements passing:       1 for 1 task(s)" in text
    assert "ILF training set size:     1" in text
    assert "ILF:" in text and "pass@1 37.5%" in text and "(trained on 5)" in text
    assert "pass@1 minus zero-shot, points: ILF +12.5, MBPP gold -5.0," in text
    assert "RANDOM" in text


def test_run_summary_shows_ilf_minus_gold_and_rft(eval_metrics):
    rft = pd.DataFrame(
        {"method": ["RFT", "ILF + RFT"], "pass@1": [0.3, 0.5], "pass@10": [0.7, 0.8]}
        | {"training_set_size": [40, 45]}
    )
    metrics = pd.concat([eval_metrics, rft], ignore_index=True)
    empty = pd.DataFrame({"task_id": []})
    text = summary.run_summary(empty, empty, empty, empty, empty, metrics)
    lines = text.splitlines()
    assert "    RFT:" in text and "(trained on 40)" in text
    gains = next(line for line in lines if "minus zero-shot" in line)
    assert gains.endswith("RFT +5.0, ILF + RFT +25.0")
    gaps = next(line for line in lines if "ILF minus" in line)
    assert gaps == (
        "    pass@1, ILF minus each baseline, points: MBPP gold +17.5, human refinements +7.5, "
        "my method +27.5, RFT +7.5, ILF + RFT -12.5"
    )


def test_run_summary_without_an_ilf_row_has_no_ilf_gaps(eval_metrics):
    empty = pd.DataFrame({"task_id": []})
    metrics = eval_metrics[eval_metrics["method"] != "ILF"]
    text = summary.run_summary(empty, empty, empty, empty, empty, metrics)
    assert "ILF minus" not in text and "minus zero-shot" in text


def test_run_summary_shows_the_distribution_metrics_where_measured(eval_metrics):
    tasks = pd.DataFrame({"task_id": [1], "split": ["test"]})
    empty = pd.DataFrame({"task_id": pd.Series(dtype="int64")})
    distribution = pd.DataFrame(
        {
            "method": ["zero-shot", "ILF"],
            "test_tasks": [100, 100],
            "correct_mass": [0.512, 0.701],
            "kl_to_target": [0.9, 0.41],
            "coverage": [0.8, 0.9],
            "train_tasks": [100, 100],
            "kl_from_base": [0.0, 0.25],
        }
    )
    args = (tasks, empty, empty, empty, empty, eval_metrics)
    assert "enumerated" not in summary.run_summary(*args)
    text = summary.run_summary(*args, distribution_metrics=distribution)
    assert "on the enumerated candidate programs (100 test, 100 train tasks):" in text
    assert "ILF:" in text.split("enumerated")[1]
    assert "mass on right 0.701  KL(target||model) 0.410  KL(model||base, train) 0.250" in text

"""The paper's theory, measured where a task's candidate programs can be enumerated.

Chen et al. (2023, section 2) argue that ILF approximately minimises the KL divergence
from the *target distribution*, the base model's distribution conditioned on the program
being correct, to the fine-tuned model. Given every candidate program of a task (each
right way to write it, each known slip) and each model's log-likelihood of each candidate
given the task prompt, this module computes, on the candidate set renormalised:

- ``correct_mass``: the probability a model puts on the right programs (test tasks);
- ``kl_to_target``: KL(target || model), the target being the base model's distribution
  on the right candidates, renormalised (test tasks);
- ``kl_from_base``: KL(model || base model) on the train tasks: how far fine-tuning moved
  the model where it learned (RL's Razor, arXiv 2509.04259: forgetting tracks it);
- ``coverage``: the model's total probability on the enumerated set before
  renormalising, so a reader sees how much of its mass the set holds.

Plain pandas and numpy, no Kedro and no model.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ilf_kedro.ilf.prompts import completion_after_prompt

PAIR_COLUMNS = ["candidate", "task_id", "split", "correct", "prompt", "completion"]
SCORE_COLUMNS = ["method", "candidate", "task_id", "split", "correct", "log_likelihood"]
METRIC_COLUMNS = [
    "method",
    "test_tasks",
    "correct_mass",
    "kl_to_target",
    "coverage",
    "train_tasks",
    "kl_from_base",
]


def candidate_pairs(
    candidates: pd.DataFrame,
    tasks: pd.DataFrame,
    test_split: str,
    train_split: str,
    max_tasks_per_split: int | None,
    seed: int,
) -> pd.DataFrame:
    """The candidates (``task_id``, ``correct``, ``program``) of the test and train
    tasks as (task prompt -> completion) pairs, ``PAIR_COLUMNS``; above
    ``max_tasks_per_split`` tasks of a split, a seeded random subset of them."""
    chosen = []
    for split in dict.fromkeys((test_split, train_split)):
        ids = tasks.loc[tasks["split"] == split, "task_id"]
        ids = ids[ids.isin(candidates["task_id"])]
        if max_tasks_per_split is not None and len(ids) > max_tasks_per_split:
            ids = ids.sample(n=max_tasks_per_split, random_state=seed)
        chosen.append(tasks[tasks["task_id"].isin(ids)][["task_id", "split", "prompt"]])
    selected = pd.concat(chosen, ignore_index=True)
    pairs = candidates[["task_id", "correct", "program"]].merge(selected, on="task_id")
    pairs = pairs.sort_values("task_id", kind="stable", ignore_index=True)
    pairs["completion"] = [
        completion_after_prompt(program, prompt)
        for program, prompt in zip(pairs["program"], pairs["prompt"], strict=True)
    ]
    pairs["candidate"] = np.arange(len(pairs), dtype="int64")
    return pairs[PAIR_COLUMNS].astype({"task_id": "int64", "correct": bool})


def _log_softmax(values: np.ndarray) -> np.ndarray:
    top = values.max()
    return values - (top + np.log(np.exp(values - top).sum()))


def _per_task(model: pd.DataFrame, base: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for task_id, own in model.groupby("task_id", sort=True):
        ll = own["log_likelihood"].to_numpy("float64")
        base_ll = base.loc[own.index, "log_likelihood"].to_numpy("float64")
        correct = own["correct"].to_numpy(bool)
        log_p, log_base = _log_softmax(ll), _log_softmax(base_ll)
        p = np.exp(log_p)
        row = {
            "task_id": task_id,
            "split": own["split"].iloc[0],
            "coverage": float(np.exp(ll).sum()),
            "correct_mass": float(p[correct].sum()),
            "kl_from_base": float((p * (log_p - log_base)).sum()),
            "kl_to_target": np.nan,
        }
        if correct.any():
            log_target = _log_softmax(base_ll[correct])
            row["kl_to_target"] = float((np.exp(log_target) * (log_target - log_p[correct])).sum())
        rows.append(row)
    return pd.DataFrame(rows)


def distribution_metrics(
    scores: Sequence[pd.DataFrame], test_split: str, train_split: str
) -> pd.DataFrame:
    """``METRIC_COLUMNS``, one row per method, from each method's ``SCORE_COLUMNS``
    frame (the same candidates in each); the first frame is the base model's."""
    if not scores:
        return pd.DataFrame(columns=METRIC_COLUMNS)
    base = scores[0].set_index("candidate")
    rows = []
    for frame in scores:
        model = frame.set_index("candidate")
        missing = base.index.difference(model.index)
        if len(missing) or len(model) != len(base):
            raise ValueError(
                f"candidate scores of {frame['method'].iloc[0]!r} do not cover the base "
                f"model's candidates ({len(missing)} missing)"
            )
        per_task = _per_task(model, base)
        test = per_task[per_task["split"] == test_split]
        train = per_task[per_task["split"] == train_split]
        rows.append(
            {
                "method": str(frame["method"].iloc[0]),
                "test_tasks": len(test),
                "correct_mass": test["correct_mass"].mean(),
                "kl_to_target": test["kl_to_target"].mean(),
                "coverage": test["coverage"].mean(),
                "train_tasks": len(train),
                "kl_from_base": train["kl_from_base"].mean(),
            }
        )
    return pd.DataFrame(rows, columns=METRIC_COLUMNS)

"""pass@k: the unbiased estimator of Chen et al. (2021), per task and averaged over tasks.

No Kedro import. ``pass@k = 1 - C(n - c, k) / C(n, k)`` for a task with ``n`` samples of
which ``c`` pass; the benchmark score is its mean over tasks.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k estimate for one task: ``1 - C(n-c, k) / C(n, k)``.

    Computed in product form, ``1 - prod_{i=n-c+1}^{n} (1 - k / i)``, which stays accurate
    for n in the thousands (no huge binomials). Special cases: ``c == 0`` gives 0.0;
    ``n - c < k`` (every draw of k samples contains a correct one, including ``c == n``)
    gives 1.0; ``k > n`` is undefined (fewer samples than k) and gives NaN.

    Raises:
        ValueError: if not ``0 <= c <= n`` or ``k < 1``.
    """
    n, c, k = int(n), int(c), int(k)
    if k < 1 or n < 0 or not 0 <= c <= n:
        raise ValueError(f"need 0 <= c <= n and k >= 1, got n={n}, c={c}, k={k}")
    if k > n:
        return math.nan
    if c == 0:
        return 0.0
    if n - c < k:
        return 1.0
    prod = 1.0
    for i in range(n - c + 1, n + 1):
        prod *= 1.0 - k / i
    return 1.0 - prod


def pass_at_k_column(k: int) -> str:
    """Name of the pass@k column, e.g. ``pass@10``."""
    return f"pass@{k}"


def pass_at_k_table(
    results: pd.DataFrame, ks: Sequence[int] = (1, 10), group: str = "task_id"
) -> pd.DataFrame:
    """Per-task pass@k from a results frame (one row per program, bool ``passed``).

    Returns:
        One row per task (sorted by ``group``): ``group``, ``n`` (programs), ``c`` (passing
        programs), ``pass@k`` for each k (NaN where k > n for that task) and
        ``any_correct`` (c >= 1).
    """
    columns = [group, "n", "c", *(pass_at_k_column(k) for k in ks), "any_correct"]
    if len(results) == 0:
        empty = pd.DataFrame({col: pd.Series(dtype="float64") for col in columns})
        return empty.astype({"n": "int64", "c": "int64", "any_correct": bool})
    counts = (
        results.assign(_passed=results["passed"].astype(bool))
        .groupby(group, sort=True)["_passed"]
        .agg(n="size", c="sum")
        .reset_index()
    )
    counts["n"] = counts["n"].astype("int64")
    counts["c"] = counts["c"].astype("int64")
    for k in ks:
        counts[pass_at_k_column(k)] = [
            pass_at_k(n, c, k) for n, c in zip(counts["n"], counts["c"], strict=True)
        ]
    counts["any_correct"] = counts["c"] > 0
    return counts[columns]


def summarise_pass_at_k(
    results: pd.DataFrame, ks: Sequence[int] = (1, 10), group: str = "task_id"
) -> dict:
    """Benchmark-level scores from a results frame (see ``summarise_task_table``)."""
    return summarise_task_table(pass_at_k_table(results, ks, group), ks)


def summarise_task_table(table: pd.DataFrame, ks: Sequence[int] = (1, 10)) -> dict:
    """Benchmark-level scores from a per-task table (``pass_at_k_table``'s columns).

    Returns:
        ``{"pass@k": mean over tasks for each k, "any_correct": share of tasks with at least
        one passing program, "n_tasks": number of tasks, "n_programs": programs run}``.
        Tasks where k > n (NaN) are left out of that k's mean; a mean over no tasks is NaN.
    """
    summary: dict = {}
    for k in ks:
        values = table[pass_at_k_column(k)].dropna()
        summary[pass_at_k_column(k)] = float(values.mean()) if len(values) else math.nan
    any_correct = table["any_correct"].astype(bool)
    summary["any_correct"] = float(any_correct.mean()) if len(table) else math.nan
    summary["n_tasks"] = int(len(table))
    summary["n_programs"] = int(table["n"].sum())
    return summary

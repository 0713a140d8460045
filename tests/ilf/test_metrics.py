"""pass@k against hand-computed values and exact binomials."""

from __future__ import annotations

import math
from fractions import Fraction

import pandas as pd
import pytest

from ilf_kedro.ilf.metrics import pass_at_k, pass_at_k_table, summarise_pass_at_k


def exact(n: int, c: int, k: int) -> float:
    return float(1 - Fraction(math.comb(n - c, k), math.comb(n, k)))


@pytest.mark.parametrize(
    ("n", "c", "k", "expected"),
    [
        (30, 0, 1, 0.0),  # c = 0
        (30, 0, 10, 0.0),
        (30, 30, 1, 1.0),  # c = n
        (30, 30, 10, 1.0),
        (30, 25, 10, 1.0),  # k > n - c: every 10-subset holds a correct one
        (30, 21, 10, 1.0),
        (30, 3, 1, 0.1),  # pass@1 = c / n
        (5, 2, 2, 0.7),  # 1 - C(3,2)/C(5,2) = 1 - 3/10
        (10, 1, 10, 1.0),
        (4, 1, 2, 0.5),  # 1 - C(3,2)/C(4,2) = 1 - 3/6
        (30, 1, 10, 1 / 3),  # 1 - C(29,10)/C(30,10) = 10/30
    ],
)
def test_hand_computed(n, c, k, expected):
    assert pass_at_k(n, c, k) == pytest.approx(expected, rel=1e-12, abs=1e-15)


@pytest.mark.parametrize("n", [1, 2, 30, 200, 1000])
def test_matches_exact_binomials_up_to_n_1000(n):
    for c in sorted({0, 1, n // 7, n // 2, n - 1, n}):
        for k in (1, 2, 10, 100):
            if k > n:
                assert math.isnan(pass_at_k(n, c, k))
                continue
            got = pass_at_k(n, c, k)
            assert 0.0 <= got <= 1.0
            assert got == pytest.approx(exact(n, c, k), rel=1e-9, abs=1e-12)


def test_invalid_arguments():
    for args in [(5, 6, 1), (5, -1, 1), (5, 2, 0)]:
        with pytest.raises(ValueError):
            pass_at_k(*args)


def _results(per_task: dict) -> pd.DataFrame:
    rows = [(t, p) for t, flags in per_task.items() for p in flags]
    return pd.DataFrame(rows, columns=["task_id", "passed"])


def test_table_and_summary():
    results = _results(
        {2: [True] * 3 + [False] * 27, 1: [False] * 30, 3: [True] * 30, 4: [True, False]}
    )
    table = pass_at_k_table(results, ks=(1, 10))
    assert list(table.columns) == ["task_id", "n", "c", "pass@1", "pass@10", "any_correct"]
    assert table["task_id"].tolist() == [1, 2, 3, 4]
    assert table["n"].tolist() == [30, 30, 30, 2] and table["c"].tolist() == [0, 3, 30, 1]
    assert table["pass@1"].tolist() == pytest.approx([0.0, 0.1, 1.0, 0.5])
    assert table["pass@10"].iloc[:3].tolist() == pytest.approx([0.0, exact(30, 3, 10), 1.0])
    assert math.isnan(table["pass@10"].iloc[3])  # k > n
    assert table["any_correct"].tolist() == [False, True, True, True]
    summary = summarise_pass_at_k(results, ks=(1, 10))
    assert summary["pass@1"] == pytest.approx((0 + 0.1 + 1 + 0.5) / 4)
    assert summary["pass@10"] == pytest.approx((0 + exact(30, 3, 10) + 1) / 3)
    assert summary["any_correct"] == 0.75
    assert (summary["n_tasks"], summary["n_programs"]) == (4, 92)


def test_empty_results():
    empty = pd.DataFrame({"task_id": pd.Series(dtype="int64"), "passed": pd.Series(dtype=bool)})
    table = pass_at_k_table(empty)
    assert len(table) == 0 and "pass@10" in table.columns
    summary = summarise_pass_at_k(empty)
    assert math.isnan(summary["pass@1"]) and summary["n_tasks"] == 0

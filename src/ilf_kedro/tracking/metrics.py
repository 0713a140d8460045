"""An ILF run's metrics for MLflow, as plain data (no Kedro, no MLflow calls):
``eval_metrics``, ``refinement_stats``, ``annotation_stats`` and ``sample_efficiency``
become the ``{key: {"value": v, "step": 0}}`` dicts (a list of them for a history) that
kedro-mlflow's ``MlflowMetricsHistoryDataset`` logs; the catalog entry adds its prefix
(``refinement``, ``annotations``), so no code here knows a dataset name."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

import pandas as pd

from ilf_kedro.ingest.task_sets import PAPER_SET


def metric_key(*parts: Any) -> str:
    """MLflow metric name from parts: ``("MBPP gold", "pass@1")`` -> ``MBPP_gold.pass_at_1``."""
    cleaned = []
    for part in parts:
        text = str(part).replace("@", "_at_")
        cleaned.append(re.sub(r"[^0-9A-Za-z_\-/.]+", "_", text).strip("_"))
    return ".".join(cleaned)


def _finite(value: Any) -> float | None:
    if isinstance(value, bool | str):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) or math.isinf(number) else number


def _metrics(values: Mapping[str, Any]) -> dict[str, dict[str, float | int]]:
    """``{key: number}`` -> kedro-mlflow's metric items; NaN and non-numbers are left out."""
    items = {}
    for key, value in values.items():
        number = _finite(value)
        if number is not None:
            items[key] = {"value": number, "step": 0}
    return items


def eval_metric_values(eval_metrics: pd.DataFrame) -> dict[str, dict[str, float | int]]:
    """``eval_metrics`` (one row per method and test set) -> ``<method>.pass_at_<k>``
    metrics, also ``any_correct``, ``training_set_size`` and ``n_tasks`` per method; NaN
    left out. Rows of a test set other than MBPP's get the set in the key:
    ``<method>.<set>.pass_at_<k>``."""
    wanted = [c for c in eval_metrics.columns if str(c).startswith("pass@")]
    wanted += [c for c in ("any_correct", "training_set_size", "n_tasks") if c in eval_metrics]
    values = {}
    for row in eval_metrics.to_dict("records"):
        task_set = row.get("task_set") or PAPER_SET
        prefix = [row["method"]] if task_set == PAPER_SET else [row["method"], task_set]
        for column in wanted:
            values[metric_key(*prefix, column)] = row.get(column)
    return _metrics(values)


def sample_efficiency_metric_values(
    sample_efficiency: pd.DataFrame,
) -> dict[str, list[dict[str, float | int]]]:
    """``sample_efficiency`` (ilf_sweep) -> ``<method>.pass_at_<k>`` with one value per
    share, its step the number of annotations used, so MLflow draws pass@k against the
    annotations; NaN left out."""
    wanted = [c for c in sample_efficiency.columns if str(c).startswith("pass@")]
    history: dict[str, list[dict[str, float | int]]] = {}
    for row in sample_efficiency.to_dict("records"):
        for column in wanted:
            value = _finite(row.get(column))
            if value is not None:
                point = {"value": value, "step": int(row["annotations"])}
                history.setdefault(metric_key(row["method"], column), []).append(point)
    return history


def refinement_metric_values(refinement_stats: pd.DataFrame) -> dict[str, dict[str, float | int]]:
    """``refinement_stats`` (one row) -> its numeric columns (``pass_at_1``, ``any_correct``,
    ``n_tasks``...) as metrics."""
    values = {}
    for row in refinement_stats.head(1).to_dict("records"):
        values.update({metric_key(column): value for column, value in row.items()})
    return _metrics(values)


def annotation_metric_values(annotation_stats: pd.DataFrame) -> dict[str, dict[str, float | int]]:
    """``annotation_stats`` -> annotations per split (``train``, ``refine``...) as metrics."""
    if not {"split", "annotations"} <= set(annotation_stats.columns):
        return {}
    rows = annotation_stats.to_dict("records")
    return _metrics({metric_key(row["split"]): row["annotations"] for row in rows})

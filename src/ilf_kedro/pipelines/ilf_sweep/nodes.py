"""Nodes of ilf_sweep: a share of the annotations, and test pass@k against that share."""

from __future__ import annotations

import pandas as pd
from matplotlib.figure import Figure

from ilf_kedro import reporting
from ilf_kedro.ilf import training_sets
from ilf_kedro.tracking import metrics


def take_annotation_share(
    annotations_to_refine: pd.DataFrame, ilf_training_set: pd.DataFrame, seed: int, *, share: float
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A seeded ``share`` of the train split's annotated tasks -> those annotations, and
    the ILF training pairs of those tasks."""
    return training_sets.annotation_share(annotations_to_refine, ilf_training_set, share, seed)


def efficiency_point(
    annotations: pd.DataFrame,
    ilf_metrics: pd.DataFrame,
    gold_metrics: pd.DataFrame,
    *,
    share: float,
) -> pd.DataFrame:
    """ILF's and gold fine-tuning's metrics rows at one share of the annotations, with the
    share and the number of annotations (tasks) it used."""
    rows = pd.concat([ilf_metrics, gold_metrics], ignore_index=True)
    rows.insert(0, "share", float(share))
    rows.insert(1, "annotations", int(annotations["task_id"].nunique()))
    return rows


def build_sample_efficiency(zero_shot_metrics: pd.DataFrame, *points: pd.DataFrame) -> pd.DataFrame:
    """Every share's rows, smallest share first, after the base model's (share 0: no
    annotation) -> ``sample_efficiency``."""
    zero_shot = zero_shot_metrics.assign(share=0.0, annotations=0)
    table = pd.concat([zero_shot, *points], ignore_index=True)
    first = ["share", "annotations", "method"]
    table = table[first + [c for c in table.columns if c not in first]]
    return table.sort_values(["share", "method"], kind="stable", ignore_index=True)


def track_sample_efficiency(sample_efficiency: pd.DataFrame) -> dict:
    """``sample_efficiency`` -> MLflow metrics, pass@k against the annotations used."""
    return metrics.sample_efficiency_metric_values(sample_efficiency)


def plot_sample_efficiency(sample_efficiency: pd.DataFrame) -> Figure:
    """``sample_efficiency`` -> test pass@1 against the annotations used, per method."""
    return reporting.sample_efficiency_figure(sample_efficiency)

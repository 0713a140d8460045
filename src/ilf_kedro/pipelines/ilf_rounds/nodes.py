"""Nodes of ilf_rounds: pass@k on the test split per round (round 0 = the base model)."""

from __future__ import annotations

import pandas as pd
from matplotlib.figure import Figure

from ilf_kedro import reporting


def build_rounds_report(*metrics_per_round: pd.DataFrame) -> pd.DataFrame:
    """Each round's metrics row, round 0 (the base model) first -> ``rounds_report``:
    ``round`` plus the metrics columns (pass@k, training-set size, feedback source...)."""
    rows = [frame.assign(round=index) for index, frame in enumerate(metrics_per_round)]
    report = pd.concat(rows, ignore_index=True)
    return report[["round", *[c for c in report.columns if c != "round"]]]


def plot_rounds(rounds_report: pd.DataFrame) -> Figure:
    """``rounds_report`` -> pass@k on the test split against the round."""
    return reporting.rounds_figure(rounds_report)

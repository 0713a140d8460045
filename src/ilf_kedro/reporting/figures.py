"""Figures of a run: pass@k per method, Figure 3 (perplexity histogram), feedback length
and pass@k per ILF round. ``matplotlib.figure.Figure`` objects built without pyplot, so
they need no display and leak no global state."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

from ilf_kedro.feedback.stats import feedback_words
from ilf_kedro.ilf.metrics import pass_at_k_column

from .tables import ZERO_SHOT, by_test_set, ks_of, paper_column, test_set_title


def _empty_note(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, wrap=True)
    ax.set_xticks([])
    ax.set_yticks([])


def pass_at_k_figure(table: pd.DataFrame, title: str = "pass@k on MBPP_Test") -> Figure:
    """Bar chart of pass@k per method with the zero-shot level as a dashed line.

    Args:
        table: A ``comparison_table`` (``method``, ``pass@k`` columns; ``paper_pass@k``
            columns, when present, are drawn as black outlined markers).
        title: Figure title (a random-weights note is appended when relevant).

    Returns:
        The figure (one group of bars per method, one bar per k, in percent); with
        several test sets (``task_set``), one panel per set side by side, each with its
        own zero-shot line.
    """
    sets = by_test_set(table)
    fig = Figure(figsize=(8 * len(sets), 4.5), layout="constrained")
    axes = fig.subplots(1, len(sets), squeeze=False)[0]
    random = "random_weights" in table and table["random_weights"].any()
    suffix = " (RANDOM weights: not meaningful)" if random else ""
    if len(sets) == 1:
        _pass_at_k_panel(axes[0], sets[0][1], title + suffix)
        return fig
    for ax, (task_set, rows) in zip(axes, sets, strict=True):
        _pass_at_k_panel(ax, rows, f"pass@k on {test_set_title(task_set)}")
    fig.suptitle(title.replace("on MBPP_Test", "per test set") + suffix)
    return fig


def _pass_at_k_panel(ax, table: pd.DataFrame, title: str) -> None:
    """One test set's bars (see :func:`pass_at_k_figure`) on ``ax``."""
    ks = ks_of(table)
    if table.empty or not ks:
        _empty_note(ax, "no evaluation results in this run")
        ax.set_title(title)
        return
    x = np.arange(len(table))
    width = 0.8 / len(ks)
    colours = ["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple"]
    zero_shot = table[table["method"] == ZERO_SHOT]
    for j, k in enumerate(ks):
        colour = colours[j % len(colours)]
        raw = 100 * table[pass_at_k_column(k)].astype(float).to_numpy()
        positions = x - 0.4 + width * (j + 0.5)
        bars = ax.bar(positions, np.nan_to_num(raw), width, label=f"pass@{k}", color=colour)
        ax.bar_label(bars, labels=["n/a" if np.isnan(v) else f"{v:.1f}" for v in raw], fontsize=8)
        if paper_column(k) in table and table[paper_column(k)].notna().any():
            paper = 100 * table[paper_column(k)].astype(float).to_numpy()
            ax.scatter(
                positions,
                paper,
                marker="D",
                facecolors="none",
                edgecolors="black",
                zorder=3,
                label=f"paper pass@{k}",
            )
        if len(zero_shot):
            level = 100 * float(zero_shot[pass_at_k_column(k)].iloc[0])
            if not np.isnan(level):
                ax.axhline(
                    level, color=colour, linestyle="--", linewidth=1, label=f"zero-shot pass@{k}"
                )
    ax.set_xticks(x, table["method"].tolist(), rotation=15)
    ax.set_ylabel("pass@k (%)")
    scores = 100 * table[[pass_at_k_column(k) for k in ks]].astype(float).to_numpy()
    top = max(10.0, float(np.nanmax(scores)) if np.isfinite(scores).any() else 0.0)
    for k in ks:
        if paper_column(k) in table and table[paper_column(k)].notna().any():
            top = max(top, 100 * float(table[paper_column(k)].max()))
    ax.set_ylim(0, min(100.0, top * 1.2 + 2))
    ax.legend(fontsize=8, loc="upper left", ncols=2)
    ax.set_title(title)


def perplexity_figure(
    perplexities: pd.DataFrame,
    title: str = "Figure 3: perplexity of training programs under pi_theta",
    bins: int = 20,
    sources: Sequence[str] | None = None,
) -> Figure:
    """Histogram of per-program perplexity per source (paper Figure 3), log-spaced bins.

    Args:
        perplexities: ``source`` and ``perplexity`` columns (``perplexity_table``).
        title: Figure title.
        bins: Number of log-spaced bins shared by all sources.
        sources: The sources to show, in legend order (default: those in the table); one
            without programs is still named.

    Returns:
        The figure; a source without programs is named in the legend as "(none)".
    """
    fig = Figure(figsize=(7, 4.5), layout="constrained")
    ax = fig.add_subplot()
    finite = perplexities[np.isfinite(perplexities["perplexity"].astype(float))]
    finite = finite[finite["perplexity"] > 0]
    if finite.empty:
        _empty_note(ax, "no programs to score in this run")
        ax.set_title(title)
        return fig
    low, high = float(finite["perplexity"].min()), float(finite["perplexity"].max())
    if high <= low:
        low, high = low / 1.5, high * 1.5
    log_scale = high / low >= 10
    edges = np.geomspace(low, high, bins + 1) if log_scale else np.linspace(low, high, bins + 1)
    handles = []
    for source in sources or dict.fromkeys(perplexities["source"]):
        values = finite.loc[finite["source"] == source, "perplexity"].astype(float)
        if values.empty:
            handles.append(Patch(facecolor="none", edgecolor="grey", label=f"{source} (none)"))
            continue
        *_, patches = ax.hist(values, bins=edges, alpha=0.5, label=f"{source} (n={len(values)})")
        handles.append(patches[0] if len(patches) else patches)
    if log_scale:
        ax.set_xscale("log")
    ax.set_xlabel("perplexity" + (" (log scale)" if log_scale else ""))
    ax.set_ylabel("programs")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend(handles=handles, fontsize=8)
    ax.set_title(title)
    return fig


def feedback_lengths(feedback_annotations: pd.DataFrame) -> pd.DataFrame:
    """``split`` and ``words`` (whitespace-separated words) of each feedback text."""
    words = feedback_words(feedback_annotations["feedback"].fillna("").astype(str))
    split = feedback_annotations.get("split", "all")
    return pd.DataFrame({"split": split, "words": words})


def feedback_length_figure(
    feedback_annotations: pd.DataFrame, title: str = "Feedback length"
) -> Figure:
    """Histogram of feedback length in words, one series per split.

    Args:
        feedback_annotations: Rows with ``feedback`` (and ``split``, optional).
        title: Figure title.

    Returns:
        The figure (a note instead of bars when there is no feedback).
    """
    fig = Figure(figsize=(7, 4), layout="constrained")
    ax = fig.add_subplot()
    if feedback_annotations.empty:
        _empty_note(ax, "no feedback annotations in this run")
        ax.set_title(title)
        return fig
    lengths = feedback_lengths(feedback_annotations)
    edges = np.histogram_bin_edges(lengths["words"], bins=min(20, max(5, len(lengths))))
    for split, part in lengths.groupby("split", sort=True):
        ax.hist(
            part["words"],
            bins=edges,
            alpha=0.6,
            label=f"{split} (n={len(part)}, mean {part['words'].mean():.0f} words)",
        )
    ax.set_xlabel("feedback length (words)")
    ax.set_ylabel("annotations")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend(fontsize=8)
    ax.set_title(title)
    return fig


def rounds_figure(
    rounds_report: pd.DataFrame, title: str = "ILF rounds: pass@k on the test split"
) -> Figure:
    """pass@k (percent) against the round, one line per k; round 0 is the base model."""
    fig = Figure(figsize=(7, 4), layout="constrained")
    ax = fig.add_subplot()
    ks = [int(c.split("@")[1]) for c in rounds_report.columns if c.startswith("pass@")]
    if rounds_report.empty or not ks:
        _empty_note(ax, "no rounds in this run")
    for k in ks:
        values = 100 * rounds_report[pass_at_k_column(k)].astype(float)
        ax.plot(rounds_report["round"], values, marker="o", label=f"pass@{k}")
    ax.set_xticks(rounds_report["round"].tolist())
    ax.set_xlabel("round (0: base model)")
    ax.set_ylabel("%")
    if bool(rounds_report.get("random_weights", pd.Series(dtype=bool)).any()):
        title += " (RANDOM weights)"
    ax.set_title(title)
    if ks:
        ax.legend()
    return fig


def sample_efficiency_figure(
    sample_efficiency: pd.DataFrame, title: str = "Sample efficiency: pass@1 on the test split"
) -> Figure:
    """pass@1 (percent) against the feedback annotations used, one line per fine-tuned
    method; the base model (no annotation) as a dashed line."""
    fig = Figure(figsize=(7, 4), layout="constrained")
    ax = fig.add_subplot()
    column = pass_at_k_column(1)
    base = sample_efficiency[sample_efficiency["share"] == 0]
    trained = sample_efficiency[sample_efficiency["share"] > 0]
    if trained.empty:
        _empty_note(ax, "no fine-tuned method in this sweep")
    for method, rows in trained.groupby("method", sort=False):
        ax.plot(rows["annotations"], 100 * rows[column].astype(float), marker="o", label=method)
    for _, row in base.iterrows():
        ax.axhline(100 * float(row[column]), color="grey", linestyle="--", label=row["method"])
    ax.set_xlabel("feedback annotations used (train split tasks)")
    ax.set_ylabel("pass@1 (%)")
    if bool(sample_efficiency.get("random_weights", pd.Series(dtype=bool)).any()):
        title += " (RANDOM weights)"
    ax.set_title(title)
    if not sample_efficiency.empty:
        ax.legend()
    return fig

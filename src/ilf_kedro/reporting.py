"""Reports of an ILF run: the paper's tables, per-program perplexity, figures, run summary.

Plain Python, no Kedro. Tables are pandas DataFrames; pass@k values stay fractions in
[0, 1] (as in ``eval_metrics``) and are shown as percentages only in the Markdown and the
figures. Figures are ``matplotlib.figure.Figure`` objects built without pyplot, so they
need no display and leak no global state.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

from ilf_kedro.feedback import feedback_words
from ilf_kedro.metrics import pass_at_k_column, summarise_task_table
from ilf_kedro.models.loading import context_length

logger = logging.getLogger(__name__)

# Paper Table 4 (CodeGen-Mono 6.1B on MBPP_Test), percent: method name -> (pass@1, pass@10).
# Keys are the method names of parameters_ilf.yml (evaluation.methods.*.name).
PAPER_TABLE4: dict[str, tuple[float, float]] = {
    "zero-shot": (26.0, 59.0),
    "ILF": (36.0, 68.0),
    "MBPP gold": (22.0, 63.0),
    "human refinements": (33.0, 68.0),
    # The paper's few-shot refiner rows: InstructGPT wrote feedback and refinements.
    "1-shot refiner": (19.0, 55.0),
    "2-shot refiner": (25.0, 59.0),
}
PAPER_KS = (1, 10)
ZERO_SHOT = "zero-shot"
PAPER_SET = "mbpp"  # the paper's test set (MBPP_Test); see ilf_kedro.task_sets
RANDOM_WEIGHTS_NOTE = (
    "The models have RANDOM weights (the offline tiny-random default): these numbers say "
    "nothing about ILF. Set base_model to a pretrained code model for real results."
)


def _paper_col(k: int) -> str:
    return f"paper_pass@{k}"


def _paper_values(paper_reference: bool | Mapping | None) -> dict[str, Sequence[float]]:
    if paper_reference is True:
        return dict(PAPER_TABLE4)
    if not paper_reference:
        return {}
    return {str(name): tuple(values) for name, values in dict(paper_reference).items()}


# ---------------------------------------------------------------------------- Table 4


def comparison_table(
    eval_metrics: pd.DataFrame,
    ks: Iterable[int] = (1, 10),
    paper_reference: bool | Mapping[str, Sequence[float]] | None = False,
) -> pd.DataFrame:
    """The paper's Table 4 from this run's ``eval_metrics``.

    Args:
        eval_metrics: One row per method with ``method``, ``feedback_source``, ``pass@k``
            for each k and (when present) ``training_set_size``, ``n_tasks``,
            ``random_weights``.
        ks: The k of the ``pass@k`` columns to show.
        paper_reference: ``True`` adds the paper's numbers (``PAPER_TABLE4``) as
            ``paper_pass@1`` / ``paper_pass@10`` columns (fractions; NaN for a method the
            paper does not report); a mapping ``{method name: [pass@1 %, pass@10 %]}``
            uses other reference numbers; false adds nothing.

    Returns:
        One row per test set and method, in ``eval_metrics`` order: ``task_set``
        (``mbpp`` when ``eval_metrics`` has no such column), ``method``, ``feedback_source``,
        ``pass@k`` columns (same values as ``eval_metrics``), ``training_set_size``
        (int; 0 for a method without training), ``n_tasks``, ``random_weights``, ``note``
        (why a method's model was not fine-tuned, from ``untrained_reason``; else empty)
        and, with ``paper_reference``, the paper columns (MBPP_Test numbers: NaN on the
        rows of other test sets).
    """
    ks = list(ks)
    frame = eval_metrics.reset_index(drop=True)
    sets = frame["task_set"].astype(str) if "task_set" in frame else PAPER_SET
    table = pd.DataFrame({"task_set": sets, "method": frame["method"].astype(str)})
    table["feedback_source"] = (
        frame["feedback_source"].fillna("none").astype(str)
        if "feedback_source" in frame
        else "none"
    )
    for column in map(pass_at_k_column, ks):
        table[column] = frame[column].astype(float) if column in frame else math.nan
    size = frame.get("training_set_size", 0)
    table["training_set_size"] = pd.Series(size, index=table.index).fillna(0).astype("int64")
    if "n_tasks" in frame:
        table["n_tasks"] = frame["n_tasks"].fillna(0).astype("int64")
    randoms = frame.get("random_weights", False)
    table["random_weights"] = pd.Series(randoms, index=table.index).fillna(False).astype(bool)
    notes = frame.get("untrained_reason", "")
    table["note"] = pd.Series(notes, index=table.index).fillna("").astype(str)
    reference = _paper_values(paper_reference)
    if reference:
        for k in ks:
            if k not in PAPER_KS:
                continue
            position = PAPER_KS.index(k)
            table[_paper_col(k)] = [
                reference[name][position] / 100.0
                if name in reference and task_set == PAPER_SET
                else math.nan
                for task_set, name in zip(table["task_set"], table["method"], strict=True)
            ]
    return table


def test_set_title(task_set: str) -> str:
    """How reports name a test set: the paper's MBPP_Test, else the set's name."""
    return "MBPP_Test" if task_set == PAPER_SET else task_set


def by_test_set(table: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """``(task_set, rows)`` per test set in order of first appearance; a table without a
    ``task_set`` column is MBPP's alone."""
    if "task_set" not in table or table.empty:
        return [(PAPER_SET, table)]
    return [
        (str(name), rows.reset_index(drop=True))
        for name, rows in table.groupby("task_set", sort=False)
    ]


def _percent(value: Any) -> str:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return "-"
    return "-" if math.isnan(value) else f"{100 * value:.1f}"


def comparison_markdown(table: pd.DataFrame, title: str = "Table 4: pass@k on MBPP_Test") -> str:
    """Render a ``comparison_table`` as Markdown (pass@k in percent, paper columns beside).

    Args:
        table: The output of ``comparison_table``.
        title: Heading of the document.

    Returns:
        A Markdown document: a heading, a warning when any model has random weights, and
        a pipe table with one row per method; with several test sets, the heading says
        "pass@k per test set" and each set gets a section with its own table.
    """
    sets = by_test_set(table)
    if len(sets) > 1:
        title = title.replace("on MBPP_Test", "per test set")
    lines = [f"# {title}", ""]
    if "random_weights" in table and table["random_weights"].any():
        lines += [f"> **Warning:** {RANDOM_WEIGHTS_NOTE}", ""]
    for index, (task_set, rows) in enumerate(sets):
        if len(sets) > 1:
            lines += ([""] if index else []) + [f"## {test_set_title(task_set)}", ""]
        lines += _markdown_rows(rows)
    if any(_paper_col(k) in table for k in _ks_of(table)):
        lines += ["", "Paper: Chen et al. 2023, Table 4 (CodeGen-Mono 6.1B)."]
    return "\n".join(lines) + "\n"


def _ks_of(table: pd.DataFrame) -> list[int]:
    return [int(c.split("@")[1]) for c in table.columns if c.startswith("pass@")]


def _markdown_rows(table: pd.DataFrame) -> list[str]:
    """One test set's pipe table and its not-fine-tuned notes."""
    ks = _ks_of(table)
    header = ["method", "feedback source", "training set size"]
    for k in ks:
        header.append(f"pass@{k} (%)")
        if _paper_col(k) in table:
            header.append(f"paper pass@{k} (%)")
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] * len(header)) + "|"]
    for row in table.to_dict("records"):
        cells = [str(row["method"]), str(row["feedback_source"]), str(row["training_set_size"])]
        for k in ks:
            cells.append(_percent(row[pass_at_k_column(k)]))
            if _paper_col(k) in row:
                cells.append(_percent(row[_paper_col(k)]))
        lines.append("| " + " | ".join(cells) + " |")
    notes = [
        f"- {row['method']}: not fine-tuned: {row['note']}"
        for row in table.to_dict("records")
        if row.get("note")
    ]
    if notes:
        lines += ["", *notes]
    return lines


# ---------------------------------------------------------------------- Tables 3 and 1

REPORT_COLUMNS = ["table", "model", "split", "n_tasks", "n_programs", "any_correct"]


def _stats_row(stats: pd.DataFrame | Mapping | None) -> dict:
    if stats is None:
        return {}
    if isinstance(stats, pd.DataFrame):
        return stats.iloc[0].to_dict() if len(stats) else {}
    return dict(stats)


def _number(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def refinement_report(
    refinement_stats: pd.DataFrame | Mapping | None,
    task_pass_stats: pd.DataFrame | None = None,
    tasks: pd.DataFrame | None = None,
    ks: Iterable[int] = (1, 10),
    refinement_split: str = "train",
) -> pd.DataFrame:
    """Table 3 (pi_Refine on the refinement split) and Table 1 (zero-shot pi_theta per split).

    Args:
        refinement_stats: One row (or a dict) with ``pass@k``, ``any_correct`` (share of
            tasks with 1+ correct refinement), ``n_tasks`` and ``n_programs``; missing
            values become NaN.
        task_pass_stats: Per-task zero-shot pass rates (``task_id``, ``n``, ``c``,
            ``pass@k``, ``any_correct``), e.g. ``initial_sampling``'s ``task_pass_stats``
            or ``metrics.pass_at_k_table`` of the zero-shot test results; None or empty
            gives no Table 1 rows.
        tasks: Gives each task its ``split`` when ``task_pass_stats`` has none.
        ks: The k of the ``pass@k`` columns.
        refinement_split: The split pi_Refine refined (label of the Table 3 row).

    Returns:
        ``table`` ("Table 3" / "Table 1"), ``model``, ``split``, ``n_tasks``,
        ``n_programs``, ``pass@k`` for each k (mean over tasks) and ``any_correct``
        (share of tasks with at least one correct program). Table 1 has one row per
        split plus ``all`` when there are several splits.
    """
    ks = list(ks)
    columns = [*REPORT_COLUMNS[:5], *(pass_at_k_column(k) for k in ks), "any_correct"]
    stats = _stats_row(refinement_stats)
    rows = [
        {
            "table": "Table 3",
            "model": "pi_Refine",
            "split": refinement_split,
            "n_tasks": _number(stats.get("n_tasks")),
            "n_programs": _number(stats.get("n_programs")),
            **{pass_at_k_column(k): _number(stats.get(pass_at_k_column(k))) for k in ks},
            "any_correct": _number(stats.get("any_correct")),
        }
    ]
    if task_pass_stats is not None and len(task_pass_stats):
        per_task = task_pass_stats
        if "split" not in per_task and tasks is not None:
            per_task = per_task.merge(tasks[["task_id", "split"]], on="task_id", how="left")
        if "split" not in per_task:
            per_task = per_task.assign(split="all")
        groups = list(per_task.groupby("split", sort=True))
        if len(groups) > 1:
            groups.append(("all", per_task))
        for split, part in groups:
            rows.append(
                {
                    "table": "Table 1",
                    "model": "zero-shot pi_theta",
                    "split": split,
                    **summarise_task_table(part, ks),
                }
            )
    report = pd.DataFrame(rows, columns=columns)
    return report.astype({"n_tasks": "float64", "n_programs": "float64"})


# -------------------------------------------------------------------------- Perplexity


def program_perplexities(
    bundle, programs: Sequence[str], batch_size: int = 8, max_length: int | None = 1024
) -> list[float]:
    """Per-program perplexity under a causal LM: ``exp(mean token NLL)`` of each text.

    Each program is tokenized on its own (no special tokens added), cut to its first
    ``max_length`` tokens (and the model's context), and scored in right-padded batches
    under ``torch.no_grad``; the first token has no prediction, so a program of under two
    tokens gets NaN.

    Args:
        bundle: An ``ilf_kedro.models.ModelBundle`` (model, tokenizer, info).
        programs: Program texts.
        batch_size: Programs per forward pass.
        max_length: Token cap per program (None: the model's context only).

    Returns:
        One float per program, in order.
    """
    import torch
    import torch.nn.functional as F

    model, tokenizer = bundle.model, bundle.tokenizer
    limits = [n for n in (max_length, context_length(model)) if n]
    limit = min(limits) if limits else None
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    device = next(model.parameters()).device
    encoded = [
        tokenizer(str(text), add_special_tokens=False)["input_ids"][:limit] for text in programs
    ]
    # Longest first keeps padding low; results go back to the input order.
    order = sorted(range(len(encoded)), key=lambda i: -len(encoded[i]))
    result = [math.nan] * len(encoded)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for start in range(0, len(order), max(1, int(batch_size))):
                batch = [i for i in order[start : start + max(1, int(batch_size))]]
                scorable = [i for i in batch if len(encoded[i]) >= 2]
                if not scorable:
                    continue
                width = max(len(encoded[i]) for i in scorable)
                ids = torch.full((len(scorable), width), pad_id, dtype=torch.long)
                mask = torch.zeros((len(scorable), width), dtype=torch.long)
                for row, i in enumerate(scorable):
                    ids[row, : len(encoded[i])] = torch.tensor(encoded[i])
                    mask[row, : len(encoded[i])] = 1
                ids, mask = ids.to(device), mask.to(device)
                logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1].float()
                targets = ids[:, 1:]
                target_mask = mask[:, 1:].float()
                nll = F.cross_entropy(
                    logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), reduction="none"
                ).view(targets.shape)
                mean_nll = (nll * target_mask).sum(1) / target_mask.sum(1)
                for row, i in enumerate(scorable):
                    result[i] = float(torch.exp(mean_nll[row]).item())
    finally:
        model.train(was_training)
    return result


def perplexity_table(
    bundle,
    sources: Mapping[str, pd.DataFrame],
    batch_size: int = 8,
    max_length: int | None = 1024,
) -> pd.DataFrame:
    """Perplexity of every program of several sources under one model (paper Figure 3).

    Args:
        bundle: The ``ModelBundle`` that scores (the paper: the base model pi_theta).
        sources: Source label -> a frame with ``task_id`` and ``program`` columns.
        batch_size, max_length: As in ``program_perplexities``.

    Returns:
        ``source``, ``task_id``, ``n_tokens`` (tokens scored, after the cap),
        ``perplexity``; one row per program, sources in the given order.
    """
    frames = []
    for label, frame in sources.items():
        programs = [str(p) for p in frame["program"]]
        ppl = program_perplexities(bundle, programs, batch_size=batch_size, max_length=max_length)
        n_tokens = [
            len(bundle.tokenizer(p, add_special_tokens=False)["input_ids"]) for p in programs
        ]
        if max_length:
            n_tokens = [min(n, int(max_length)) for n in n_tokens]
        frames.append(
            pd.DataFrame(
                {
                    "source": label,
                    "task_id": frame["task_id"].astype("int64").to_numpy(),
                    "n_tokens": np.asarray(n_tokens, dtype="int64"),
                    "perplexity": np.asarray(ppl, dtype="float64"),
                }
            )
        )
    if not frames:
        return pd.DataFrame(
            {
                "source": pd.Series(dtype=str),
                "task_id": pd.Series(dtype="int64"),
                "n_tokens": pd.Series(dtype="int64"),
                "perplexity": pd.Series(dtype="float64"),
            }
        )
    return pd.concat(frames, ignore_index=True)


# ----------------------------------------------------------------------------- Figures


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
    ks = _ks_of(table)
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
        if _paper_col(k) in table and table[_paper_col(k)].notna().any():
            paper = 100 * table[_paper_col(k)].astype(float).to_numpy()
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
        if _paper_col(k) in table and table[_paper_col(k)].notna().any():
            top = max(top, 100 * float(table[_paper_col(k)].max()))
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


# ------------------------------------------------------------------------- Run summary


def _tasks_by_split(frame: pd.DataFrame) -> str:
    if frame is None or frame.empty or "task_id" not in frame:
        return "0"
    unique = frame.drop_duplicates("task_id")
    total = len(unique)
    if "split" not in unique:
        return str(total)
    parts = ", ".join(f"{s} {n}" for s, n in unique["split"].value_counts().sort_index().items())
    return f"{total} ({parts})"


def run_summary_counts(
    tasks: pd.DataFrame,
    feedback_annotations: pd.DataFrame,
    refinements: pd.DataFrame,
    passing_refinements: pd.DataFrame,
    ilf_training_set: pd.DataFrame,
    failing_tasks: pd.DataFrame | None = None,
) -> dict[str, int]:
    """Counts at each ILF stage.

    Args:
        tasks: All tasks with prompts.
        feedback_annotations: Feedback on failing programs (after the paper's filters).
        refinements: pi_Refine's generated refinements (one row per sample).
        passing_refinements: The refinements that pass every test.
        ilf_training_set: pi_theta*'s training pairs.
        failing_tasks: Tasks where zero-shot pi_theta never passed, when the run has them;
            otherwise the tasks with feedback count as the failing tasks.

    Returns:
        ``tasks``, ``failing_tasks``, ``annotations``, ``refinements``,
        ``refinement_tasks``, ``passing_refinements``, ``passing_tasks``,
        ``training_set_size``.
    """
    failing = failing_tasks if failing_tasks is not None else feedback_annotations
    return {
        "tasks": int(tasks["task_id"].nunique()),
        "failing_tasks": int(failing["task_id"].nunique()) if len(failing) else 0,
        "annotations": int(len(feedback_annotations)),
        "refinements": int(len(refinements)),
        "refinement_tasks": int(refinements["task_id"].nunique()) if len(refinements) else 0,
        "passing_refinements": int(len(passing_refinements)),
        "passing_tasks": int(passing_refinements["task_id"].nunique())
        if len(passing_refinements)
        else 0,
        "training_set_size": int(len(ilf_training_set)),
    }


def run_summary(
    tasks: pd.DataFrame,
    feedback_annotations: pd.DataFrame,
    refinements: pd.DataFrame,
    passing_refinements: pd.DataFrame,
    ilf_training_set: pd.DataFrame,
    eval_metrics: pd.DataFrame,
    ks: Iterable[int] = (1, 10),
    failing_tasks: pd.DataFrame | None = None,
) -> str:
    """A short plain-text summary of a run: counts at each stage, then pass@k per method.

    Args:
        tasks, feedback_annotations, refinements, passing_refinements, ilf_training_set,
            failing_tasks: As in ``run_summary_counts``.
        eval_metrics: One row per method with ``method`` and ``pass@k`` columns.
        ks: The k to show.

    Returns:
        A few lines of text (no trailing newline), for the log and ``run_summary.txt``.
    """
    ks = list(ks)
    counts = run_summary_counts(
        tasks, feedback_annotations, refinements, passing_refinements, ilf_training_set,
        failing_tasks,
    )  # fmt: skip
    failing_source = failing_tasks if failing_tasks is not None else feedback_annotations
    failing_label = "failing tasks" if failing_tasks is not None else "failing tasks w/ feedback"
    lines = [
        "ILF run summary",
        f"  tasks:                     {_tasks_by_split(tasks)}",
        f"  {failing_label + ':':<27}{_tasks_by_split(failing_source)}",
        f"  feedback annotations:      {counts['annotations']}",
        f"  refinements generated:     {counts['refinements']} "
        f"for {counts['refinement_tasks']} task(s)",
        f"  refinements passing:       {counts['passing_refinements']} "
        f"for {counts['passing_tasks']} task(s)",
        f"  ILF training set size:     {counts['training_set_size']}",
    ]
    if eval_metrics is None or eval_metrics.empty:
        lines += ["  pass@k on the test split:", "    (no evaluation results)"]
    else:
        width = max(len(str(m)) for m in eval_metrics["method"]) + 2
        sets = by_test_set(eval_metrics)
        for task_set, rows in sets:
            heading = "the test split" if len(sets) == 1 else test_set_title(task_set)
            lines.append(f"  pass@k on {heading}:")
            for row in rows.to_dict("records"):
                scores = "  ".join(
                    f"pass@{k} {_percent(row.get(pass_at_k_column(k)))}%" for k in ks
                )
                lines.append(f"    {str(row['method']) + ':':<{width}}{scores}")
        if "random_weights" in eval_metrics and eval_metrics["random_weights"].any():
            lines.append(f"  NOTE: {RANDOM_WEIGHTS_NOTE}")
    return "\n".join(lines)


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

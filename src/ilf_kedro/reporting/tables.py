"""The paper's tables from a run: Table 4 (``comparison_table`` and its Markdown) and
Tables 3 and 1 (``refinement_report``). pass@k values stay fractions in [0, 1] (as in
``eval_metrics``) and are shown as percentages only in the Markdown."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pandas as pd

from ilf_kedro.ilf.metrics import pass_at_k_column, summarise_task_table
from ilf_kedro.parameters import Reporting

_DEFAULTS = Reporting()  # the ``reporting`` parameters' defaults (one source)

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
ILF = "ILF"
PAPER_SET = "mbpp"  # the paper's test set (MBPP_Test); see ilf_kedro.ingest.task_sets
RANDOM_WEIGHTS_NOTE = (
    "The models have RANDOM weights (the offline tiny-random default): these numbers say "
    "nothing about ILF. Set base_model to a pretrained code model for real results."
)


def paper_column(k: int) -> str:
    """The column of the paper's pass@k beside this run's: ``paper_pass@<k>``."""
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
    paper_reference: bool | Mapping[str, Sequence[float]] | None = _DEFAULTS.paper_reference,
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
            table[paper_column(k)] = [
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


def percent(value: Any) -> str:
    """A fraction as a percentage with one decimal; ``-`` for NaN or a non-number."""
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
    if any(paper_column(k) in table for k in ks_of(table)):
        lines += ["", "Paper: Chen et al. 2023, Table 4 (CodeGen-Mono 6.1B)."]
    return "\n".join(lines) + "\n"


def ks_of(table: pd.DataFrame) -> list[int]:
    """The k of a table's ``pass@k`` columns."""
    return [int(c.split("@")[1]) for c in table.columns if c.startswith("pass@")]


def _markdown_rows(table: pd.DataFrame) -> list[str]:
    """One test set's pipe table and its not-fine-tuned notes."""
    ks = ks_of(table)
    header = ["method", "feedback source", "training set size"]
    for k in ks:
        header.append(f"pass@{k} (%)")
        if paper_column(k) in table:
            header.append(f"paper pass@{k} (%)")
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] * len(header)) + "|"]
    for row in table.to_dict("records"):
        cells = [str(row["method"]), str(row["feedback_source"]), str(row["training_set_size"])]
        for k in ks:
            cells.append(percent(row[pass_at_k_column(k)]))
            if paper_column(k) in row:
                cells.append(percent(row[paper_column(k)]))
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

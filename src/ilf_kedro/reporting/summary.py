"""The run summary: counts at each ILF stage and pass@k per method, as plain text."""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

from ilf_kedro.ilf.metrics import pass_at_k_column

from .tables import ILF, RANDOM_WEIGHTS_NOTE, ZERO_SHOT, by_test_set, percent, test_set_title


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
    distribution_metrics: pd.DataFrame | None = None,
) -> str:
    """A short plain-text summary of a run: counts at each stage, then pass@k per method.

    Args:
        tasks, feedback_annotations, refinements, passing_refinements, ilf_training_set,
            failing_tasks: As in ``run_summary_counts``.
        eval_metrics: One row per method with ``method`` and ``pass@k`` columns.
        ks: The k to show.
        distribution_metrics: ``ilf.target_distribution.distribution_metrics`` rows, or
            None where the run did not measure them.

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
        f"  feedback annotations:      {counts['annotations']}{_written_by(feedback_annotations)}",
        f"  refinements generated:     {counts['refinements']} "
        f"for {counts['refinement_tasks']} task(s){_values(refinements, 'refiner', ' by ')}",
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
                scores = "  ".join(f"pass@{k} {percent(row.get(pass_at_k_column(k)))}%" for k in ks)
                trained = int(row.get("training_set_size") or 0)
                scores += f"  (trained on {trained})" if trained else ""
                lines.append(f"    {str(row['method']) + ':':<{width}}{scores}")
            lines += _gaps(rows)
        if "random_weights" in eval_metrics and eval_metrics["random_weights"].any():
            lines.append(f"  NOTE: {RANDOM_WEIGHTS_NOTE}")
    if distribution_metrics is not None and not distribution_metrics.empty:
        lines += _distribution_lines(distribution_metrics)
    return "\n".join(lines)


def _distribution_lines(metrics: pd.DataFrame) -> list[str]:
    """The theory's numbers per method (``ilf.target_distribution``)."""
    first = metrics.iloc[0]
    lines = [
        f"  on the enumerated candidate programs ({int(first['test_tasks'])} test, "
        f"{int(first['train_tasks'])} train tasks):"
    ]
    width = max(len(str(m)) for m in metrics["method"]) + 2
    for row in metrics.to_dict("records"):
        lines.append(
            f"    {str(row['method']) + ':':<{width}}mass on right {row['correct_mass']:.3f}  "
            f"KL(target||model) {row['kl_to_target']:.3f}  "
            f"KL(model||base, train) {row['kl_from_base']:.3f}"
        )
    return lines


def _gaps(rows: pd.DataFrame) -> list[str]:
    """In points of pass@1: each method minus zero-shot, and ILF minus each other trained
    method (gold, refinements, RFT...); a line only where its methods ran."""
    column = pass_at_k_column(1)
    if column not in rows:
        return []
    score = dict(zip(rows["method"].astype(str), rows[column].astype(float), strict=True))
    lines = []
    if ZERO_SHOT in score:
        base = score[ZERO_SHOT]
        gains = [f"{m} {100 * (v - base):+.1f}" for m, v in score.items() if m != ZERO_SHOT]
        if gains:
            lines.append(f"    pass@1 minus zero-shot, points: {', '.join(gains)}")
    if ILF in score:
        gaps = [
            f"{m} {100 * (score[ILF] - v):+.1f}"
            for m, v in score.items()
            if m not in (ILF, ZERO_SHOT)
        ]
        if gaps:
            lines.append(f"    pass@1, ILF minus each baseline, points: {', '.join(gaps)}")
    return lines


def _values(frame: pd.DataFrame, column: str, prefix: str) -> str:
    """`` by a, b`` from the distinct values of ``column`` (nothing when absent or empty)."""
    if column not in frame or frame.empty:
        return ""
    return prefix + ", ".join(sorted(map(str, frame[column].dropna().unique())))


def _written_by(annotations: pd.DataFrame) -> str:
    """Where the feedback and the refinements came from, as the data says."""
    feedback = _values(annotations, "feedback_source", " (feedback: ")
    if not feedback:
        return ""
    return feedback + _values(annotations, "refinement_source", "; refinements: ") + ")"

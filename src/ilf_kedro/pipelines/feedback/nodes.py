"""Nodes of feedback: feedback on failing programs from the configured source."""

from __future__ import annotations

import pandas as pd

from ilf_kedro.feedback import sources, stats
from ilf_kedro.parameters import Compute, Execution, Feedback
from ilf_kedro.pipelines.stage_nodes import run_tests


def write_feedback(
    human_feedback_annotations: pd.DataFrame,
    failing_programs: pd.DataFrame,
    tasks: pd.DataFrame,
    params: Feedback,
    seed: int,
    credentials: dict,
) -> pd.DataFrame:
    """Feedback (and a refinement) per failing program from ``params.source``:

    - ``human``: the filtered human annotations as they are;
    - ``unrelated``: the same, each feedback text moved to another task (seeded);
    - ``interpreter``: sentences from each failing program's verdict, gold as refinement;
    - ``llm``: ``params.llm``'s model writes feedback, then a refinement.

    Returns ``written_feedback`` in the annotation schema (``feedback.sources.ANNOTATION_COLUMNS``).
    """
    source = params.source
    if source == "human":
        return human_feedback_annotations
    if source == "unrelated":
        return sources.unrelated_feedback(human_feedback_annotations, seed)
    if source == "interpreter":
        return sources.interpreter_annotations(failing_programs, tasks)
    return sources.llm_annotations(
        failing_programs, tasks, params.llm, credentials=credentials, seed=seed
    )


def test_written_refinements(
    written_feedback: pd.DataFrame,
    tasks: pd.DataFrame,
    task_time_limits: pd.DataFrame,
    execution: Execution,
    compute: Compute,
) -> pd.DataFrame:
    """Unit-test verdicts of every annotation's refinement -> ``written_refinement_results``."""
    programs = written_feedback.assign(program=written_feedback["refinement"])
    return run_tests(programs, tasks, task_time_limits, execution, compute)


def keep_verdicts(written_feedback: pd.DataFrame, results: pd.DataFrame) -> pd.DataFrame:
    """``written_feedback`` plus ``refinement_passed`` (its refinement passes every test)
    -> ``feedback_annotations``, the one table every later stage reads."""
    passed = dict(zip(results["task_id"], results["passed"].astype(bool), strict=True))
    annotations = written_feedback.reset_index(drop=True)
    return annotations.assign(
        refinement_passed=annotations["task_id"].map(passed).fillna(False).astype(bool)
    )


def summarise_annotations(feedback_annotations: pd.DataFrame) -> pd.DataFrame:
    """``annotation_stats``: annotations per split and feedback length in words."""
    return stats.annotation_stats(feedback_annotations)

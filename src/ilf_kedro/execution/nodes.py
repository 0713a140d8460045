"""Kedro-facing helpers (plain functions, no Kedro import) around the execution harness.

Pipelines wire these as nodes, with the ``execution`` parameters section
(conf/base/parameters_execution.yml, validated as :class:`ilf_kedro.parameters.Execution`)
as the last input, e.g.::

    node(time_limits_node, ["tasks", "params:execution"], "task_time_limits")
    node(evaluate_node, ["samples", "tasks", "task_time_limits", "params:execution"],
         "sample_results")
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import pandas as pd

from ilf_kedro.execution.harness import evaluate_programs
from ilf_kedro.execution.time_limits import calibrate_time_limits, with_time_limits
from ilf_kedro.parameters import Execution

logger = logging.getLogger(__name__)


def time_limits_node(tasks: pd.DataFrame, execution: Execution) -> pd.DataFrame:
    """``task_time_limits``: one row per task of ``tasks`` (``task_id``, ``gold_code``).

    ``time_limit_s = max(time_limit_floor_s, time_limit_factor * gold_duration_s)``, EvalPlus
    style, where ``gold_duration_s`` is the gold program's run time in the harness itself
    (``calibration_timeout_s`` at most). Returns ``task_id``, ``time_limit_s``,
    ``gold_duration_s``.
    """
    return calibrate_time_limits(tasks, execution)


def evaluate_node(
    programs: pd.DataFrame,
    tasks: pd.DataFrame,
    time_limits: pd.DataFrame | None,
    execution: Execution,
    evaluate: Callable[[pd.DataFrame, pd.DataFrame, Execution], pd.DataFrame] = evaluate_programs,
) -> pd.DataFrame:
    """Turn a programs dataset into a results dataset (one row per program, same order).

    Args:
        programs: at least ``task_id`` and ``program``; other columns are kept.
        tasks: the tasks dataset (``task_id``, ``tests``, ``test_setup_code``).
        time_limits: the ``task_time_limits`` dataset (``task_id``, ``time_limit_s``), or
            None; programs of tasks without a limit get ``timeout_s`` (logged).
        execution: the validated ``execution`` parameters section, as
            :func:`~ilf_kedro.execution.harness.evaluate_programs` reads it (``timeout_s``,
            ``workers``, ``memory_mb``...).
        evaluate: What judges the programs: :func:`evaluate_programs` here, or another
            function with its contract (the Kedro nodes give
            ``ilf_kedro.compute.ray_verdicts.evaluate_programs_on_ray`` of the ``compute``
            section with ``compute.backend: ray``), with the same result.

    Returns:
        ``programs`` plus passed, status, error_type, error_message, duration_s, trusted.
        An empty ``programs`` frame gives an empty frame with those columns.
    """
    if time_limits is not None:
        tasks = with_time_limits(tasks, time_limits)
        used = tasks[tasks["task_id"].isin(set(programs["task_id"]))]
        unlimited = used.loc[used["time_limit_s"].isna(), "task_id"].tolist()
        if unlimited:
            logger.warning(
                "task_time_limits has no limit for %d task(s) (e.g. %s); they get timeout_s",
                len(unlimited),
                unlimited[:5],
            )
    return evaluate(programs, tasks, execution)

"""Kedro-facing helpers (plain functions, no Kedro import) around the execution harness.

Pipelines wire these as nodes, with the ``execution`` parameters section
(conf/base/parameters_execution.yml) as the last input, e.g.::

    node(evaluate_node, ["samples", "tasks", "params:execution"], "sample_results")
"""

from __future__ import annotations

import logging

import pandas as pd

from ilf_kedro.execution.harness import calibrate_time_limits, evaluate_programs

logger = logging.getLogger(__name__)

# Parameters passed to evaluate_programs under the same name.
_EVALUATE_KEYS = {
    "timeout_s",
    "workers",
    "progress",
    "memory_mb",
    "max_processes",
    "max_file_mb",
    "max_message_chars",
    "keep_output",
    "max_output_chars",
    "namespaces",
}
_CALIBRATION_KEYS = {
    "time_limit_floor_s",
    "time_limit_factor",
    "calibrate",
    "calibration_timeout_s",
}

# (gold_code, floor, factor) -> limit: calibration runs once per process per gold program.
_calibration_cache: dict[tuple, float] = {}


def _evaluate_kwargs(execution_params: dict | None) -> dict:
    params = dict(execution_params or {})
    unknown = set(params) - _EVALUATE_KEYS - _CALIBRATION_KEYS
    if unknown:
        logger.warning("ignoring unknown execution parameters: %s", sorted(unknown))
    return {k: v for k, v in params.items() if k in _EVALUATE_KEYS}


def with_time_limits(tasks: pd.DataFrame, execution_params: dict | None = None) -> pd.DataFrame:
    """Return ``tasks`` plus a ``time_limit_s`` column, EvalPlus style.

    ``time_limit_s = max(time_limit_floor_s, time_limit_factor * gold run time)``, the gold
    program (``gold_code``) being timed with the harness itself. Results are cached per
    process, so several nodes of one run calibrate each gold program once.
    """
    params = dict(execution_params or {})
    floor = float(params.get("time_limit_floor_s", 3.0))
    factor = float(params.get("time_limit_factor", 4.0))
    out = tasks.copy()
    if len(out) == 0:
        out["time_limit_s"] = pd.Series(dtype="float64", index=out.index)
        return out
    keys = [(code, floor, factor) for code in out["gold_code"]]
    todo = out.loc[[k not in _calibration_cache for k in keys]]
    if len(todo):
        kwargs = _evaluate_kwargs(params)
        kwargs.pop("timeout_s", None)
        kwargs["progress"] = False
        limits = calibrate_time_limits(
            todo,
            floor_s=floor,
            factor=factor,
            timeout_s=float(params.get("calibration_timeout_s", 60.0)),
            **kwargs,
        )
        for tid, code in zip(todo["task_id"], todo["gold_code"], strict=True):
            _calibration_cache[(code, floor, factor)] = float(limits.loc[tid])
    out["time_limit_s"] = [_calibration_cache[k] for k in keys]
    return out


def evaluate_node(
    programs: pd.DataFrame, tasks: pd.DataFrame, execution_params: dict | None = None
) -> pd.DataFrame:
    """Turn a programs dataset into a results dataset (one row per program, same order).

    Args:
        programs: at least ``task_id`` and ``program``; other columns are kept.
        tasks: the tasks dataset (``task_id``, ``tests``, ``test_setup_code``, and
            ``gold_code`` or ``time_limit_s``).
        execution_params: the ``execution`` parameters section: ``timeout_s``, ``workers``
            (null = one per CPU), ``memory_mb``, ``progress``, ``time_limit_floor_s``,
            ``time_limit_factor``, ``calibrate`` (default true: when ``tasks`` has no
            ``time_limit_s`` but has ``gold_code``, calibrate per-task limits first) and the
            other keywords of :func:`evaluate_programs`.

    Returns:
        ``programs`` plus passed, status, error_type, error_message, duration_s. An empty
        ``programs`` frame gives an empty frame with those columns.
    """
    params = dict(execution_params or {})
    kwargs = _evaluate_kwargs(params)
    if (
        len(programs)
        and params.get("calibrate", True)
        and "time_limit_s" not in tasks.columns
        and "gold_code" in tasks.columns
    ):
        used = tasks[tasks["task_id"].isin(set(programs["task_id"]))]
        tasks = with_time_limits(used, params)
    return evaluate_programs(programs, tasks, **kwargs)

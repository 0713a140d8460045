"""Per-task wall-clock limits, EvalPlus style: each task's gold program timed in the
sandbox itself, its limit a multiple of that time (``task_time_limits``), and the tasks
frame with those limits beside it, as :func:`~.harness.evaluate_programs` reads them.

No Kedro import: plain library code.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import pandas as pd

from ilf_kedro.execution.harness import evaluate_programs
from ilf_kedro.parameters import Execution, section

logger = logging.getLogger(__name__)

TIME_LIMIT_COLUMNS = ("task_id", "time_limit_s", "gold_duration_s")


def calibrate_time_limits(
    tasks: pd.DataFrame,
    execution: Execution | Mapping[str, Any] | None = None,
    *,
    repeats: int = 1,
    progress: bool = False,
    **overrides: Any,
) -> pd.DataFrame:
    """Per-task wall-clock limits, EvalPlus style:
    ``max(time_limit_floor_s, time_limit_factor * gold run time)``.

    The gold program (``tasks["gold_code"]``) of each task is run through
    :func:`evaluate_programs` itself (same isolation and load: ``execution``, with
    ``overrides`` applied, as there; ``workers`` in parallel) ``repeats`` times with a
    generous limit, ``calibration_timeout_s``; the slowest run counts. A gold program that
    times out gets ``max(time_limit_floor_s, calibration_timeout_s)``; one that fails is
    still timed, and logged, since a limit is needed either way. ``progress``: a progress
    bar (whatever ``execution.progress`` says).

    Returns:
        One row per task: ``task_id``, ``time_limit_s`` and ``gold_duration_s`` (the
        slowest gold run, seconds), in the order of ``tasks``.
    """
    settings = section(Execution, execution, "execution", **overrides)
    floor_s, timeout_s = settings.time_limit_floor_s, settings.calibration_timeout_s
    if "gold_code" not in tasks.columns:
        raise ValueError("tasks needs a 'gold_code' column to calibrate time limits")
    base = tasks.drop_duplicates("task_id").drop(columns=["time_limit_s"], errors="ignore")
    if len(base) == 0:
        return pd.DataFrame(
            {
                "task_id": base["task_id"],
                "time_limit_s": pd.Series(dtype="float64"),
                "gold_duration_s": pd.Series(dtype="float64"),
            }
        )
    programs = pd.DataFrame(
        {
            "task_id": list(base["task_id"]) * repeats,
            "program": list(base["gold_code"]) * repeats,
        }
    )
    res = evaluate_programs(programs, base, settings, timeout_s=timeout_s, progress=progress)
    bad = res.loc[~res["passed"], "task_id"].unique().tolist()
    if bad:
        logger.warning("gold programs that do not pass during calibration: %s", bad[:50])
    slowest = res.groupby("task_id", sort=False)["duration_s"].max()
    timed_out = res.loc[res["status"] == "timeout", "task_id"].unique()
    limits = (slowest * settings.time_limit_factor).clip(lower=floor_s)
    limits.loc[limits.index.isin(timed_out)] = max(floor_s, timeout_s)
    order = base["task_id"]
    return pd.DataFrame(
        {
            "task_id": order.to_numpy(),
            "time_limit_s": limits.reindex(order).to_numpy(dtype="float64"),
            "gold_duration_s": slowest.reindex(order).to_numpy(dtype="float64"),
        }
    )


def with_time_limits(tasks: pd.DataFrame, time_limits: pd.DataFrame) -> pd.DataFrame:
    """``tasks`` plus the ``time_limit_s`` column of ``time_limits`` (NaN for tasks it
    lacks: those get the ``timeout_s`` parameter)."""
    missing = [c for c in TIME_LIMIT_COLUMNS[:2] if c not in time_limits.columns]
    if missing:
        raise ValueError(
            f"task_time_limits needs columns {list(TIME_LIMIT_COLUMNS)}; missing {missing}"
        )
    limits = time_limits.drop_duplicates("task_id").set_index("task_id")["time_limit_s"]
    return tasks.drop(columns=["time_limit_s"], errors="ignore").assign(
        time_limit_s=tasks["task_id"].map(limits).astype("float64")
    )

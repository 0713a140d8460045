"""Verdicts on a Ray cluster: the programs split into shards, one Ray task per shard.

Each task runs :func:`ilf_kedro.execution.evaluate_programs`, the project's own harness,
on its node: the same fork-server sandbox, rlimits and namespaces, and the same judging
in the harness process, outside the programs' reach (the programs never see the asserts'
expected values, as on one machine). The driver keeps the row order: shard ``i`` holds
rows ``[i * size, (i + 1) * size)`` and the shards' results are concatenated in that
order, so the result equals a local run's row for row (``duration_s`` aside, a clock).

A node that dies takes only its unfinished shards with it: Ray re-runs them on the nodes
that are left (``compute.verdicts.max_retries`` times each).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

import pandas as pd

from ilf_kedro.parameters import Execution, section

logger = logging.getLogger(__name__)


def _judge_shard(programs: pd.DataFrame, tasks: pd.DataFrame, execution: Execution) -> tuple:
    """One shard's verdicts, and the Ray node that computed them (for the logs)."""
    import ray

    from ilf_kedro.execution.harness import evaluate_programs

    result = evaluate_programs(programs, tasks, execution)
    return result, ray.get_runtime_context().get_node_id()


def evaluate_programs_on_ray(
    programs: pd.DataFrame,
    tasks: pd.DataFrame,
    execution: Execution | Mapping[str, Any] | None = None,
    **overrides: Any,
) -> pd.DataFrame:
    """:func:`~ilf_kedro.execution.evaluate_programs` spread over the Ray cluster of
    ``execution.compute`` (the ``compute`` section); ``execution`` and ``overrides``
    (``compute={...}``, ``timeout_s=1``) as that function takes them. ``workers`` becomes
    ``compute.verdicts.num_cpus`` per task (the CPUs Ray reserves for it). Same columns,
    rows and order as a local run."""
    import ray

    from ilf_kedro.compute.cluster import connect

    settings = section(Execution, execution, "execution", **overrides)
    verdicts = settings.compute.verdicts
    for col in ("task_id", "program"):
        if col not in programs.columns:
            raise ValueError(f"programs needs a {col!r} column")
    if len(programs) == 0:
        from ilf_kedro.execution.harness import evaluate_programs

        return evaluate_programs(programs, tasks, settings)
    connect(settings.compute.address)
    shard_settings = settings.model_copy(update={"workers": verdicts.num_cpus, "progress": False})
    used = tasks[tasks["task_id"].isin(set(programs["task_id"]))]
    tasks_ref = ray.put(used)  # one copy in the object store, read by every shard
    judge = ray.remote(_judge_shard).options(
        num_cpus=verdicts.num_cpus,
        max_retries=verdicts.max_retries,
        retry_exceptions=False,
        scheduling_strategy=verdicts.placement,
    )
    size = verdicts.programs_per_task
    starts = range(0, len(programs), size)
    started = time.monotonic()
    pending = {
        judge.remote(programs.iloc[start : start + size], tasks_ref, shard_settings): i
        for i, start in enumerate(starts)
    }
    shards: list[pd.DataFrame | None] = [None] * len(pending)
    nodes: dict[str, int] = {}
    while pending:
        done, _ = ray.wait(list(pending), num_returns=1)
        for ref in done:
            result, node = ray.get(ref)
            shards[pending.pop(ref)] = result
            nodes[node] = nodes.get(node, 0) + len(result)
    logger.info(
        "Judged %d programs in %d shard(s) on %d Ray node(s) in %.1f s: %s",
        len(programs),
        len(shards),
        len(nodes),
        time.monotonic() - started,
        {node[:8]: n for node, n in nodes.items()},
    )
    return pd.concat(shards)

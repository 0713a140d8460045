"""Verdicts on a Ray cluster: the sandbox runs on the nodes, the judging stays here.

The driver prepares the evaluation as a local run does
(:func:`ilf_kedro.execution.harness.prepare_evaluation`): the tasks' plans, which hold the
asserts' expected values, stay in this process, and only the
:class:`~ilf_kedro.execution.sandbox_client.SandboxWork` (the programs, the setup code, the calls
each assert makes, the limits: what a local sandbox server is given) is split into shards
of consecutive rows, one Ray task each. A task runs the project's own sandbox on its node
(:func:`~ilf_kedro.execution.sandbox_client.run_sandbox`: the same fork server, rlimits,
namespaces and re-runs of programs the sandbox could not run) and returns what the
sandbox saw of each program: the text its process wrote, the calls' values encoded by
their contents (:mod:`ilf_kedro.execution.sandbox.wire`, decoded here into the driver's
own types, never unpickled), and how it ended. The driver judges every program with the
same code and the same Python ``==`` as a local run, so the result equals a local run's
row for row (``duration_s`` aside, a clock), in input order; neither the nodes nor the
programs ever hold an expected value of an assert judged in the harness. (Asserts that
cannot be judged there run in the program's process, on one machine as on the cluster;
their verdicts are marked untrusted.)

A node that dies takes only its unfinished shards with it: Ray re-runs them on the nodes
that are left (``compute.verdicts.max_retries`` times each).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

import pandas as pd

from ilf_kedro.compute.cluster import connect, log_spread
from ilf_kedro.execution.harness import Evaluation, prepare_evaluation
from ilf_kedro.execution.sandbox.records import ProgramRun
from ilf_kedro.execution.sandbox_client import SandboxWork, run_sandbox
from ilf_kedro.parameters import Compute, Execution, section

logger = logging.getLogger(__name__)


def _run_shard(work: SandboxWork) -> tuple[list[tuple], dict, str]:
    """One shard in this node's sandbox: each program's run as a plain tuple of strings
    and numbers, the sandbox's isolation report, and the Ray node (for the logs)."""
    import ray

    runs: list[tuple] = []
    report = run_sandbox(work, lambda run: runs.append(tuple(run)))
    return runs, report, ray.get_runtime_context().get_node_id()


def _program_run(fields: tuple) -> ProgramRun:
    """A node's record of one run, checked field by field before it is judged here."""
    row, reports, ended, code, duration_s, time_limit_s = fields
    if not (type(row) is int and type(reports) is str and type(ended) is str):
        raise ValueError("a Ray verdict shard returned a malformed run")
    return ProgramRun(row, reports, ended, int(code), float(duration_s), float(time_limit_s))


def verdict_shards(
    programs: pd.DataFrame,
    tasks: pd.DataFrame,
    execution: Execution | Mapping[str, Any] | None = None,
    *,
    compute: Compute | Mapping[str, Any] | None = None,
    **overrides: Any,
) -> tuple[Evaluation, list[SandboxWork]]:
    """The evaluation of ``programs`` (kept by the driver) and the shards of its sandbox
    work that :func:`evaluate_programs_on_ray` sends to the cluster, one per Ray task
    (``compute.verdicts.programs_per_task`` programs each, run
    ``compute.verdicts.num_cpus`` at once)."""
    settings = section(Execution, execution, "execution", **overrides)
    verdicts = section(Compute, compute, "compute").verdicts
    evaluation = prepare_evaluation(programs, tasks, settings, workers=verdicts.num_cpus)
    return evaluation, evaluation.work.shards(verdicts.programs_per_task)


def evaluate_programs_on_ray(
    programs: pd.DataFrame,
    tasks: pd.DataFrame,
    execution: Execution | Mapping[str, Any] | None = None,
    *,
    compute: Compute | Mapping[str, Any] | None = None,
    **overrides: Any,
) -> pd.DataFrame:
    """:func:`~ilf_kedro.execution.evaluate_programs` with its sandbox work spread over
    the Ray cluster of ``compute`` (the ``compute`` section) and its judging here;
    ``execution`` and ``overrides`` (``timeout_s=1``) as that function takes them.
    ``workers`` becomes ``compute.verdicts.num_cpus`` per task (the CPUs Ray reserves for
    it). Same columns, rows and order as a local run."""
    import ray

    settings = section(Execution, execution, "execution", **overrides)
    cluster = section(Compute, compute, "compute")
    evaluation, shards = verdict_shards(programs, tasks, settings, compute=cluster)
    if not shards:
        return evaluation.results()
    connect(cluster.address)
    verdicts = cluster.verdicts
    run = ray.remote(_run_shard).options(
        num_cpus=verdicts.num_cpus,
        max_retries=verdicts.max_retries,
        retry_exceptions=False,
        scheduling_strategy=verdicts.placement,
    )
    bar = None
    if settings.progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(programs), desc="Running tests (ray)", unit="prog", mininterval=0.5)
    started = time.monotonic()
    pending = {run.remote(shard): len(shard.jobs) for shard in shards}
    nodes: dict[str, int] = {}
    try:
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                n = pending.pop(ref)
                runs, report, node = ray.get(ref)
                for fields in runs:
                    evaluation.record(_program_run(fields))
                evaluation.note_isolation(report)
                nodes[node] = nodes.get(node, 0) + n
                if bar is not None:
                    bar.update(n)
    finally:
        if bar is not None:
            bar.close()
        for ref in pending:
            ray.cancel(ref, force=True)
    log_spread(f"Judged {len(programs)} programs in {len(shards)} shard(s) run", nodes, started)
    return evaluation.results()

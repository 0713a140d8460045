"""Execution harness: isolated, parallel unit-test verdicts for generated programs.

Plain library code (no Kedro import). :func:`evaluate_programs` runs programs against their
tasks' asserts in a sandboxed fork server (:mod:`.sandbox`, driven by
:mod:`.sandbox_client`) and judges the results outside the programs' reach
(:mod:`.verdicts`); :func:`calibrate_time_limits` (:mod:`.time_limits`) derives per-task
time limits from the gold programs; :func:`time_limits_node`,
:func:`evaluate_node` and :func:`with_time_limits` are the node-level helpers that take
the ``execution`` parameters section.
"""

from ilf_kedro.execution.harness import (
    RESULT_COLUMNS,
    STATUSES,
    available_workers,
    evaluate_programs,
)
from ilf_kedro.execution.nodes import evaluate_node, time_limits_node
from ilf_kedro.execution.sandbox_client import SandboxError
from ilf_kedro.execution.time_limits import (
    TIME_LIMIT_COLUMNS,
    calibrate_time_limits,
    with_time_limits,
)
from ilf_kedro.execution.verdicts import Verdict

__all__ = [
    "RESULT_COLUMNS",
    "STATUSES",
    "TIME_LIMIT_COLUMNS",
    "SandboxError",
    "Verdict",
    "available_workers",
    "calibrate_time_limits",
    "evaluate_node",
    "evaluate_programs",
    "time_limits_node",
    "with_time_limits",
]

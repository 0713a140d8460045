"""Execution harness: isolated, parallel unit-test verdicts for generated programs."""

from ilf_kedro.execution.harness import (
    RESULT_COLUMNS,
    STATUSES,
    available_workers,
    calibrate_time_limits,
    evaluate_programs,
)

__all__ = [
    "RESULT_COLUMNS",
    "STATUSES",
    "available_workers",
    "calibrate_time_limits",
    "evaluate_programs",
]

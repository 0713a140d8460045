"""Out: ``annotation_queue`` rows and their verdicts -> a Label Studio JSON import, and
the checks of the labeling configuration the tasks are shown with."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import asdict
from typing import Any

import pandas as pd

from .schema import (
    CONTROLS,
    FAILS,
    FEEDBACK,
    PASSES,
    PREFILL_MODEL_VERSION,
    PROGRAM,
    REFINEMENT,
    VERDICT,
    TaskData,
)

logger = logging.getLogger(__name__)
_FIELD_REFERENCE = re.compile(r"""=\s*["']\$(\w+)["']""")
_CONTROL_NAME = re.compile(r"""<(\w+)\b[^>]*\bname\s*=\s*["'](\w+)["']""")


def describe_test_results(verdict: dict, tests: Iterable[str]) -> str:
    """What a person needs to see of a program's test run: the verdict, the error it
    raised (for a failed assert: which one and how) and the task's asserts."""
    status = verdict.get("status") or ("passed" if verdict.get("passed") else "unknown")
    lines = [f"Verdict: {status}"]
    error = ": ".join(
        str(part) for part in (verdict.get("error_type"), verdict.get("error_message")) if part
    )
    if error:
        lines.append(f"Error: {error}")
    lines.append("")
    lines.append("Tests:")
    lines.extend(str(test) for test in tests)
    return "\n".join(lines)


def build_import_tasks(
    queue: pd.DataFrame, results: pd.DataFrame, tasks: pd.DataFrame
) -> list[dict[str, Any]]:
    """Label Studio import tasks, one per ``queue`` row (``annotation_queue``): the task
    prompt, the failing program, its verdict from ``results`` (``failing_programs`` or any
    verdict table; matched on task id and program text) and the task's asserts from
    ``tasks``. The refinement area starts out
    holding the failing program (an import-time prediction) so annotators edit it."""
    verdicts = results.drop_duplicates(["task_id", "program"]).set_index(["task_id", "program"])
    task_rows = tasks.set_index("task_id")
    missing = sorted(set(queue["task_id"]) - set(task_rows.index))
    if missing:
        raise ValueError(f"annotation_queue: task_id {missing[:10]} are not in tasks")
    import_tasks = []
    for row in queue.itertuples(index=False):
        key = (row.task_id, row.original_model_completion)
        if key not in verdicts.index:
            raise ValueError(
                f"annotation_queue: the program queued for task_id {row.task_id} has no "
                "verdict in the test results"
            )
        task = task_rows.loc[row.task_id]
        data = TaskData(
            task_id=int(row.task_id),
            split=str(task["split"]),
            prompt=row.prompt,
            program=row.original_model_completion,
            test_results=describe_test_results(verdicts.loc[key].to_dict(), task["tests"]),
        )
        import_tasks.append({"data": asdict(data), "predictions": [_prefill(data.program)]})
    return import_tasks


def _prefill(program: str) -> dict[str, Any]:
    return {
        "model_version": PREFILL_MODEL_VERSION,
        "result": [_text_result(REFINEMENT, program)],
    }


def _text_result(control: str, text: str) -> dict[str, Any]:
    return {"from_name": control, "to_name": PROGRAM, "type": "textarea", "value": {"text": [text]}}


def check_labeling_config(config: str, source: str = "labeling_config") -> None:
    """Raise ``ValueError`` unless ``config`` has the controls the parser reads and shows
    only task fields that :class:`TaskData` provides."""
    names = {name for _, name in _CONTROL_NAME.findall(config)}
    missing = [c for c in CONTROLS if c not in names]
    if missing:
        raise ValueError(f"{source}: no control named {', '.join(map(repr, missing))}")
    fields = set(_FIELD_REFERENCE.findall(config))
    unknown = sorted(fields - set(TaskData.__dataclass_fields__))
    if unknown:
        raise ValueError(
            f"{source}: refers to task field(s) {unknown}; tasks have "
            f"{sorted(TaskData.__dataclass_fields__)}"
        )


def submission(feedback: str, refinement: str, passes: bool) -> list[dict[str, Any]]:
    """The ``result`` of an annotation as the labeling configuration's controls write it."""
    verdict = {
        "from_name": VERDICT,
        "to_name": PROGRAM,
        "type": "choices",
        "value": {"choices": [PASSES if passes else FAILS]},
    }
    return [_text_result(FEEDBACK, feedback), _text_result(REFINEMENT, refinement), verdict]

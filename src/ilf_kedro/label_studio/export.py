"""Back: a Label Studio JSON export -> the released ILF annotation schema (see the
package's docstring for what an export may hold and what happens to it)."""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from dataclasses import asdict
from typing import Any

import pandas as pd

from .schema import (
    CONTROLS,
    EXPORT_COLUMNS,
    FAILS,
    FEEDBACK,
    PASSES,
    PROGRAM,
    REFINEMENT,
    VERDICT,
    ExportedAnnotation,
    LabelStudioExportError,
)

logger = logging.getLogger(__name__)


def parse_export(export: list[dict[str, Any]], source: str = "Label Studio export") -> pd.DataFrame:
    """Submitted annotations of a Label Studio JSON export (a list of tasks) in the released
    ILF schema plus ``TRACE_COLUMNS``; see the module docstring for what is kept, warned
    about and refused."""
    if not isinstance(export, list):
        raise LabelStudioExportError(
            f"{source}: expected a JSON list of tasks (Label Studio's JSON export), got "
            f"{type(export).__name__}"
        )
    problems: list[str] = []
    notes: dict[str, list[str]] = defaultdict(list)
    rows: list[ExportedAnnotation] = []
    for task in export:
        rows.extend(_task_annotations(task, problems, notes))
    if problems:
        raise LabelStudioExportError(f"{source}: " + "; ".join(problems))
    _note_duplicates(rows, notes)
    for what, tasks in notes.items():
        logger.warning("%s: %s: %s", source, what, ", ".join(tasks))
    frame = pd.DataFrame([asdict(r) for r in rows], columns=EXPORT_COLUMNS)
    return frame.astype({"task_id": "int64", "passed": bool})


def _task_annotations(task, problems: list[str], notes) -> list[ExportedAnnotation]:
    ls_id = task.get("id") if isinstance(task, dict) else None
    data = task.get("data") if isinstance(task, dict) else None
    where = f"Label Studio task {ls_id}"
    if not isinstance(data, dict) or not all(
        isinstance(data.get(f), str) for f in ("prompt", PROGRAM)
    ):
        problems.append(
            f"{where}: no 'prompt' and 'program' text in its data (not a task written by "
            "build_annotation_tasks, or an export in JSON_MIN/CSV instead of JSON)"
        )
        return []
    task_id = data.get("task_id")
    if isinstance(task_id, str) and task_id.strip().isdigit():
        task_id = int(task_id)
    if not isinstance(task_id, int) or isinstance(task_id, bool):
        problems.append(f"{where}: data 'task_id' {task_id!r} is not an integer")
        return []
    where = f"task_id {task_id} ({where})"
    submitted = []
    for annotation in task.get("annotations") or []:
        if annotation.get("was_cancelled"):
            notes["skipped by the annotator, not used"].append(
                f"{where} annotation {annotation.get('id')}"
            )
        else:
            submitted.append(annotation)
    if not submitted and not task.get("annotations"):
        drafts = " (draft not submitted)" if task.get("drafts") else ""
        notes["no annotation yet"].append(where + drafts)
    rows = []
    for annotation in submitted:
        label = f"{where} annotation {annotation.get('id')}"
        row = _read_annotation(annotation, task_id, ls_id, data, label, problems)
        if row is not None:
            rows.append(row)
    return rows


def _read_annotation(annotation, task_id, ls_id, data, where, problems):
    values: dict[str, list] = {}
    for result in annotation.get("result") or []:
        control = result.get("from_name")
        if control not in CONTROLS:
            problems.append(
                f"{where}: result from control {control!r}, expected {list(CONTROLS)} (the "
                "project's labeling configuration is not conf/base/label_studio's)"
            )
            return None
        value = result.get("value") or {}
        values[control] = list(value.get("choices" if control == VERDICT else "text") or [])
    feedback = "\n".join(map(str, values.get(FEEDBACK, []))).strip()
    refinement = "\n".join(map(str, values.get(REFINEMENT, [])))
    verdict = values.get(VERDICT, [])
    missing = [
        what
        for what, absent in (
            ("feedback is empty", not feedback),
            ("refinement is empty", not refinement.strip()),
            ("no pass/fail answer", len(verdict) != 1 or verdict[0] not in (PASSES, FAILS)),
            (
                "refinement is the failing program unchanged",
                bool(refinement.strip()) and refinement.strip() == data[PROGRAM].strip(),
            ),
        )
        if absent
    ]
    if missing:
        problems.append(f"{where} is half-filled: {', '.join(missing)}")
        return None
    worker = annotation.get("completed_by")
    return ExportedAnnotation(
        task_id=task_id,
        prompt=data["prompt"],
        Feedback=feedback,
        original_model_completion=data[PROGRAM],
        unedited_annotator_completion=refinement,
        passed=verdict[0] == PASSES,
        worker_id=worker if isinstance(worker, int) else None,
        label_studio_task=ls_id,
        label_studio_annotation=annotation.get("id"),
    )


def _note_duplicates(rows: list[ExportedAnnotation], notes) -> None:
    by_task: dict[int, list[ExportedAnnotation]] = defaultdict(list)
    for row in rows:
        by_task[row.task_id].append(row)
    for task_id, same in sorted(by_task.items()):
        if len(same) > 1:
            where = ", ".join(
                f"Label Studio task {r.label_studio_task} annotation {r.label_studio_annotation}"
                for r in same
            )
            notes[
                "several annotations for one task, all kept (data_processing keeps one per "
                "task, chosen with annotations.seed)"
            ].append(f"task_id {task_id} ({where})")


def load_export_text(text: str | bytes, source: str) -> list[dict[str, Any]]:
    """Decode a Label Studio JSON export file, naming ``source`` when it is not JSON."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise LabelStudioExportError(
            f"{source}: not valid JSON ({err.msg} at line {err.lineno}, column {err.colno}); "
            "export the project as JSON (not JSON_MIN or CSV)"
        ) from err

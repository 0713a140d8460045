"""New human feedback through Label Studio: import tasks out, released-schema annotations back.

Plain Python (no Kedro import). :func:`build_import_tasks` turns ``annotation_queue`` rows and
their test verdicts into a Label Studio JSON import; :func:`parse_export` turns a Label Studio
JSON export back into the released ILF annotation schema that ``data_processing`` validates;
:class:`LabelStudioClient` talks to a running server's REST API.

The labeling configuration (conf/base/label_studio/labeling_config.xml) shows each task's
``prompt``, ``program`` and ``test_results`` and has three controls, whose names the parser
reads: ``feedback`` and ``refinement`` text areas and the ``refinement_passes`` choice.

What an export may hold, and what the parser does with it:

- a submitted annotation with feedback, a refinement and the pass/fail answer: one row;
- a task nobody has annotated yet (or only left a draft): a warning naming the tasks;
- a skipped annotation (the annotator pressed Skip): a warning naming the task, no row;
- more than one submitted annotation for an MBPP task (two annotators, or the task
  imported twice): every one becomes a row, with a warning naming the task;
  ``data_processing`` keeps one per task, chosen with ``annotations.seed`` (as the paper);
- a half-filled annotation (feedback or refinement empty, no pass/fail answer, or the
  failing program submitted unchanged as its own refinement): an error naming every such
  task, since keeping it would be wrong and dropping it would lose a person's work; fix or
  skip it in Label Studio and export again;
- a task that ``build_import_tasks`` did not write (no ``task_id``, ``prompt`` or
  ``program``) or a result from another labeling configuration: an error naming the task.

``passed`` is the annotator's answer to "does your refinement pass every test shown"
(Label Studio cannot run code; ``data_processing`` keeps only annotations answered
"passes", as it keeps only ``passed`` rows of the paper's release). The ``feedback``
pipeline then runs every refinement against the task's tests (``refinement_passed``).
"""

from __future__ import annotations

import json
import logging
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from functools import cached_property
from typing import Any

import pandas as pd

from ilf_kedro.training_sets import QUEUE_COLUMNS

logger = logging.getLogger(__name__)

FEEDBACK = "feedback"
REFINEMENT = "refinement"
VERDICT = "refinement_passes"
PASSES, FAILS = "passes", "fails"
CONTROLS = (FEEDBACK, REFINEMENT, VERDICT)
PROGRAM = "program"
PREFILL_MODEL_VERSION = "failing_program"
# Kept beside the released schema so a row can be traced back to Label Studio.
TRACE_COLUMNS = ["worker_id", "label_studio_task", "label_studio_annotation"]
EXPORT_COLUMNS = QUEUE_COLUMNS + TRACE_COLUMNS
_FIELD_REFERENCE = re.compile(r"""=\s*["']\$(\w+)["']""")
_CONTROL_NAME = re.compile(r"""<(\w+)\b[^>]*\bname\s*=\s*["'](\w+)["']""")


class LabelStudioExportError(ValueError):
    """An export that cannot become annotations; the message names every task at fault."""


@dataclass(frozen=True)
class TaskData:
    """What an annotator sees for one failing program (a Label Studio task's ``data``)."""

    task_id: int
    split: str
    prompt: str
    program: str
    test_results: str


@dataclass(frozen=True)
class ExportedAnnotation:
    """One submitted Label Studio annotation, read back in the released ILF schema."""

    task_id: int
    prompt: str
    Feedback: str
    original_model_completion: str
    unedited_annotator_completion: str
    passed: bool
    worker_id: int | None
    label_studio_task: int
    label_studio_annotation: int


# ---- out: annotation_queue -> import tasks


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


# ---- back: Label Studio export -> released annotation schema


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


# ---- a running Label Studio server


@dataclass(frozen=True)
class LabelStudioClient:
    """The few REST calls of the round trip. ``token`` is a legacy token (sent as
    ``Token``) or a personal access token (a JWT refresh token, exchanged for an access
    token and sent as ``Bearer``)."""

    url: str
    token: str
    timeout_s: float = 60.0

    @cached_property
    def _session(self):
        """One HTTP session for the client's calls; a personal access token is exchanged
        for an access token once (it lasts minutes, longer than any round trip's calls)."""
        import requests

        session = requests.Session()
        if self.token.count(".") != 2:  # legacy tokens are hex; PATs are JWTs
            session.headers["Authorization"] = f"Token {self.token}"
            return session
        response = session.post(
            f"{self.url.rstrip('/')}/api/token/refresh/",
            json={"refresh": self.token},
            timeout=self.timeout_s,
        )
        self._check(response, "exchanging the personal access token")
        session.headers["Authorization"] = f"Bearer {response.json()['access']}"
        return session

    def _call(self, method: str, path: str, what: str, **kwargs):
        url = f"{self.url.rstrip('/')}{path}"
        response = self._session.request(method, url, timeout=self.timeout_s, **kwargs)
        if response.status_code == 401 and self.token.count(".") == 2:
            self.__dict__.pop("_session")  # the access token expired: exchange the PAT again
            response = self._session.request(method, url, timeout=self.timeout_s, **kwargs)
        self._check(response, what)
        return response.json()

    def _check(self, response, what: str) -> None:
        if response.status_code >= 400:
            raise ConnectionError(
                f"Label Studio at {self.url}: {what} failed with HTTP "
                f"{response.status_code}: {response.text[:300]}"
            )

    def create_project(self, title: str, labeling_config: str) -> int:
        """A new project with ``labeling_config``; returns its id."""
        body = {"title": title, "label_config": labeling_config}
        return self._call("POST", "/api/projects/", "creating a project", json=body)["id"]

    def import_tasks(self, project: int, tasks: list[dict[str, Any]]) -> int:
        """Adds ``tasks`` (the JSON import) to ``project``; returns how many it took."""
        answer = self._call(
            "POST", f"/api/projects/{project}/import", "importing tasks", json=tasks
        )
        return int(answer.get("task_count", len(tasks)))

    def export(self, project: int) -> list[dict[str, Any]]:
        """The project's JSON export, every task included (annotated or not)."""
        return self._call(
            "GET",
            f"/api/projects/{project}/export",
            f"exporting project {project}",
            params={"exportType": "JSON", "download_all_tasks": "true"},
        )


def load_export_text(text: str | bytes, source: str) -> list[dict[str, Any]]:
    """Decode a Label Studio JSON export file, naming ``source`` when it is not JSON."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise LabelStudioExportError(
            f"{source}: not valid JSON ({err.msg} at line {err.lineno}, column {err.colno}); "
            "export the project as JSON (not JSON_MIN or CSV)"
        ) from err

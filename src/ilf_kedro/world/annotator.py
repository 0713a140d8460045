"""The miniature world's annotator: written feedback on the base model's failing programs.

Like the paper's annotators, it sees the task, the failing program and its test verdict,
and knows how the task can be written right. When the failing program is one of the
task's known slips, in whatever style, it writes the sentence that names that slip
(``candidate_programs``: what is wrong, never the corrected line); otherwise it describes
the failing test in words. Its refinement edits the failing program as little as it can,
as the paper's annotators did: of the right programs it knows (every style), the one
nearest the failing program by edit distance, so a slip is fixed in the model's own
style. Rows follow the released annotations' schema, so ``feedback.source: human``,
``unrelated`` and the Label Studio import read them unchanged.

Plain Python, no Kedro.
"""

from __future__ import annotations

import pandas as pd

from ilf_kedro.feedback.sources import interpreter_feedback
from ilf_kedro.feedback.stats import edit_distance
from ilf_kedro.ilf.prompts import completion_after_prompt

RELEASED_COLUMNS = [
    "task_id",
    "prompt",
    "test",
    "Feedback",
    "completion",
    "result",
    "passed",
    "unedited_annotator_completion",
    "original_model_completion",
    "refinement_edit_distance",
    "worker_id",
]
WORKER_ID = "world-annotator"


def check_source(tests: list[str], entry_point: str) -> str:
    """The release's ``test`` column: the asserts as a ``check(candidate)`` function."""
    lines = [t.strip().replace(f"{entry_point}(", "candidate(") for t in tests]
    return "def check(candidate):\n" + "\n".join(f"\t{line}" for line in lines)


def _body(program: str) -> str:
    """What follows the signature line of a candidate program (``signature + body``)."""
    return program.split("\n", 1)[1] if "\n" in program else ""


def _same_code(left: str, right: str) -> bool:
    """Equal up to trailing whitespace on lines and at the end."""

    def clean(text: str) -> str:
        return "\n".join(line.rstrip() for line in text.strip("\n").splitlines())

    return clean(left) == clean(right)


def write_feedback(
    completion: str, status: str, error_type: str, error_message: str, known: pd.DataFrame
) -> tuple[str, str]:
    """The annotator's sentence on one failing completion, and which mistake it named.

    ``known``: the task's rows of ``candidate_programs`` (``mistake``, ``correct``,
    ``program`` as ``signature + body``, ``feedback``). A completion equal to a known
    slip's body (in any style) gets that slip's sentence; any other failure gets the
    failing test described in words (mistake ``other``)."""
    for row in known[~known["correct"]].itertuples(index=False):
        if _same_code(completion, _body(row.program)):
            return row.feedback, row.mistake
    described = interpreter_feedback(status, error_type, error_message)
    return f"The function does not do what the task asks. {described}", "other"


def minimal_edit(completion: str, known: pd.DataFrame) -> str:
    """Of the task's right programs (``known``: its ``candidate_programs`` rows), the body
    nearest ``completion`` by edit distance (the first of equals, in ``known``'s order)."""
    bodies = [_body(p) for p in known.loc[known["correct"], "program"]]
    if not bodies:
        raise ValueError("candidate_programs has no right program for a failing task")
    return min(bodies, key=lambda body: edit_distance(body, completion))


def annotate(
    failing_programs: pd.DataFrame,
    tasks: pd.DataFrame,
    candidates: pd.DataFrame,
) -> pd.DataFrame:
    """Released-schema annotations (``RELEASED_COLUMNS`` plus ``mistake``) for
    ``failing_programs`` (one failing program per task, with its verdict: ``task_id``,
    ``prompt``, ``program``, ``status``, ``error_type``, ``error_message``), from each
    task's ``candidate_programs``."""
    by_task = tasks.set_index("task_id")
    rows = []
    for row in failing_programs.itertuples(index=False):
        task = by_task.loc[row.task_id]
        known = candidates[candidates["task_id"] == row.task_id]
        completion = completion_after_prompt(row.program, row.prompt)
        feedback, kind = write_feedback(
            completion, row.status, row.error_type or "", row.error_message or "", known
        )
        refinement = row.prompt + minimal_edit(completion, known)
        rows.append(
            {
                "task_id": int(row.task_id),
                "prompt": row.prompt,
                "test": check_source(list(task["tests"]), task["entry_point"]),
                "Feedback": feedback,
                "completion": refinement[len(row.prompt) :],
                "result": "passed",
                "passed": True,
                "unedited_annotator_completion": refinement,
                "original_model_completion": row.program,
                "refinement_edit_distance": edit_distance(refinement, row.program),
                "worker_id": WORKER_ID,
                "mistake": kind,
            }
        )
    return pd.DataFrame(rows, columns=[*RELEASED_COLUMNS, "mistake"]).astype(
        {"task_id": "int64", "passed": bool}
    )

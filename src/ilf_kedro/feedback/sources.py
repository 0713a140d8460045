"""Feedback on failing programs, from every source, in one schema.

Sources (``feedback.source``): ``human`` (the released or an imported annotation file,
with the paper's filters), ``unrelated`` (the same texts, each moved to another task: the
paper's Table 2 control), ``interpreter`` (plain sentences from the harness verdict of the
failing program) and ``llm`` (a served model writes the feedback and a refinement). Every
source gives ``ANNOTATION_COLUMNS``; their statistics are in :mod:`ilf_kedro.feedback.stats`.

Input of the human source is the released ILF schema (``Feedback``,
``original_model_completion``, ``unedited_annotator_completion``, ``passed``).
"""

from __future__ import annotations

import logging
import re

import numpy as np
import pandas as pd

from ilf_kedro.feedback.stats import with_edit_distance
from ilf_kedro.ilf.prompts import normalise_newlines, strip_refinement_marker
from ilf_kedro.parameters import LLMFeedback

logger = logging.getLogger(__name__)

ANNOTATION_COLUMNS = [
    "task_id",
    "split",
    "incorrect_program",
    "feedback",
    "refinement",
    "feedback_source",
    "refinement_source",  # who wrote ``refinement``: human, gold (a stand-in) or llm
    "edit_distance",
]


def _text(value) -> str:
    return "" if value is None or (isinstance(value, float) and np.isnan(value)) else str(value)


def normalise_annotations(
    raw: pd.DataFrame,
    tasks: pd.DataFrame,
    *,
    max_edit_distance: float | None,
    seed: int,
    feedback_source: str = "human",
) -> pd.DataFrame:
    """Apply the paper's annotation filters and return ``ANNOTATION_COLUMNS``.

    Kept: non-empty feedback and refinement (after stripping a ``Refinement:`` label),
    recorded as passing, edit distance below ``max_edit_distance`` (None: no limit), for a
    task in ``tasks``; one annotation per task, chosen at random with ``seed``.
    """
    split_of = dict(zip(tasks["task_id"], tasks["split"], strict=True))
    frame = pd.DataFrame(
        {
            "task_id": raw["task_id"].astype("int64"),
            "incorrect_program": raw["original_model_completion"].map(_text),
            "feedback": raw["Feedback"].map(_text),
            "refinement": raw["unedited_annotator_completion"].map(_text),
            "passed": raw["passed"].astype(bool),
        }
    )
    for column in ("incorrect_program", "feedback", "refinement"):
        frame[column] = frame[column].map(normalise_newlines)
    frame["refinement"] = frame["refinement"].map(strip_refinement_marker)
    frame = with_edit_distance(frame)  # NaN for an empty refinement, dropped below anyway
    keep = {
        "non-empty feedback": frame["feedback"].str.strip() != "",
        "non-empty refinement": frame["refinement"].str.strip() != "",
        "recorded as passing": frame["passed"],
        "task has a prompt": frame["task_id"].isin(split_of),
    }
    if max_edit_distance is not None:
        keep[f"edit distance < {max_edit_distance}"] = frame["edit_distance"] < max_edit_distance
    mask = pd.Series(True, index=frame.index)
    for reason, passes in keep.items():
        dropped = mask & ~passes
        if dropped.any():
            logger.info(
                "dropped %d annotation(s) failing '%s': task_id %s",
                dropped.sum(),
                reason,
                frame.loc[dropped, "task_id"].tolist(),
            )
        mask &= passes
    frame = frame[mask]
    # One per task: shuffle with the seed, then keep each task's first row.
    frame = frame.sample(frac=1.0, random_state=seed).drop_duplicates("task_id")
    frame = frame.sort_values("task_id", ignore_index=True)
    frame["split"] = frame["task_id"].map(split_of)
    frame["feedback_source"] = feedback_source
    frame["refinement_source"] = "human"
    return frame[ANNOTATION_COLUMNS]


def empty_annotations() -> pd.DataFrame:
    """No annotations, with the schema's columns and types."""
    frame = pd.DataFrame({column: pd.Series(dtype="object") for column in ANNOTATION_COLUMNS})
    return frame.astype({"task_id": "int64", "edit_distance": "float64"})


def derangement(n: int, seed: int) -> np.ndarray:
    """A seeded permutation of ``range(n)`` that moves every index (Sattolo's algorithm:
    one cycle through all n), so no row keeps its own value."""
    if n < 2:
        raise ValueError(f"unrelated feedback needs at least 2 annotations to swap, got {n}")
    rng = np.random.default_rng(seed)
    order = np.arange(n)
    for i in range(n - 1, 0, -1):
        j = int(rng.integers(0, i))
        order[i], order[j] = order[j], order[i]
    return order


def unrelated_feedback(annotations: pd.DataFrame, seed: int) -> pd.DataFrame:
    """The paper's control (Table 2): every task gets the feedback written for another
    task (a seeded derangement over all rows); programs and refinements stay in place."""
    moved = annotations.reset_index(drop=True).copy()
    if moved.empty:
        return moved
    moved["feedback"] = moved["feedback"].to_numpy()[derangement(len(moved), seed)]
    moved["feedback_source"] = "unrelated"
    return moved


def interpreter_feedback(status: str, error_type: str, error_message: str) -> str:
    """Plain sentences from a failing program's test verdict (as LeTI feeds back the
    interpreter's output): the failing assert, the exception and its message, a timeout,
    a result beyond what the harness judges."""
    message = (error_message or "").strip()
    if status == "failed":
        test = message.split(": ", 1)[-1] if message.startswith("test ") else message
        test, _, detail = test.partition(" -- ")  # the harness: "ASSERT -- the call returned X"
        what = f"{detail[0].upper()}{detail[1:]}" if detail else "The value it returns is wrong"
        return (
            f"The program runs, but it fails the test `{test}`. {what}. Fix the logic so "
            "that this test passes."
        )
    if status == "timeout":
        return (
            f"The program did not finish in time ({message}). It probably loops forever "
            "or is far too slow; make it terminate quickly."
        )
    if status == "crashed":
        return f"The program crashed the interpreter ({message or error_type}). Avoid that."
    if status == "harness_limit":  # not known to be wrong: said so, with what to change
        return (
            f"The tests could not judge the program's result ({message}). It may be right; "
            "return a value the tests can check: smaller, or less deeply nested."
        )
    if error_type == "SyntaxError" or message.startswith("in program"):
        return (
            f"The program does not run: it raises {error_type} before any test "
            f"({message}). Fix it so that it runs."
        )
    return (
        f"The program raises {error_type} ({message}). Fix the code so that it does not "
        "raise and returns the expected value."
    )


def extract_program(text: str, task_prompt: str, entry_point: str) -> str:
    """The program in a model's answer: the first fenced code block if there is one,
    else the text; an answer that is only a body is put after the task prompt."""
    match = re.search(r"```[a-zA-Z0-9_+-]*\n(.*?)(?:```|\Z)", text, flags=re.DOTALL)
    program = (match.group(1) if match else text).strip("\n")
    if f"def {entry_point}" not in program:
        return task_prompt + program
    return program + "\n"


def _automatic_rows(failing: pd.DataFrame, tasks: pd.DataFrame) -> pd.DataFrame:
    """Failing programs joined with their task's text, gold program and entry point."""
    task_info = tasks[["task_id", "text", "gold_code", "entry_point"]]
    rows = failing.merge(task_info, on="task_id", how="left", validate="one_to_one")
    rows["verdict"] = [
        interpreter_feedback(s, t, m)
        for s, t, m in zip(rows["status"], rows["error_type"], rows["error_message"], strict=True)
    ]
    return rows


def _annotations(rows: pd.DataFrame, feedback, refinement, source: str, refinement_source: str):
    frame = pd.DataFrame(
        {
            "task_id": rows["task_id"].astype("int64"),
            "split": rows["split"],
            "incorrect_program": rows["program"],
            "feedback": list(feedback),
            "refinement": list(refinement),
            "feedback_source": source,
            "refinement_source": refinement_source,
        }
    )
    return with_edit_distance(frame)[ANNOTATION_COLUMNS]


def interpreter_annotations(failing: pd.DataFrame, tasks: pd.DataFrame) -> pd.DataFrame:
    """Feedback written from each failing program's verdict; the task's gold program
    stands in for the refinement (``refinement_source`` = ``gold``)."""
    if failing.empty:
        return empty_annotations()
    rows = _automatic_rows(failing, tasks)
    return _annotations(rows, rows["verdict"], rows["gold_code"], "interpreter", "gold")


def llm_annotations(
    failing: pd.DataFrame,
    tasks: pd.DataFrame,
    settings: LLMFeedback,
    *,
    credentials: dict | None = None,
    seed: int,
) -> pd.DataFrame:
    """A served model writes feedback on each failing program, then a refinement that
    follows its own feedback (as the paper's InstructGPT ablation). ``settings`` is
    ``feedback.llm``: the endpoint, the two templates, temperature and max_tokens.
    Rows whose feedback comes back empty are dropped, and the log names their tasks."""
    from ilf_kedro.serving.client import Endpoint, Request, generate

    if failing.empty:
        return empty_annotations()
    endpoint = Endpoint.from_settings(settings)
    request = Request(temperature=settings.temperature, max_tokens=settings.max_tokens, seed=seed)
    rows = _automatic_rows(failing, tasks)
    fields = [
        {
            "task": r.text,
            "prompt": r.prompt,
            "program": r.program,
            "verdict": r.verdict,
            "entry_point": r.entry_point,
        }
        for r in rows.itertuples(index=False)
    ]
    asked = [settings.feedback_template.format(**f) for f in fields]
    feedback = [
        s[0].text.strip()
        for s in generate(
            endpoint, asked, request, credentials=credentials, description="LLM feedback"
        )
    ]
    asked = [
        settings.refinement_template.format(**f, feedback=text)
        for f, text in zip(fields, feedback, strict=True)
    ]
    answers = generate(
        endpoint, asked, request, credentials=credentials, description="LLM refinements"
    )
    refinement = [
        extract_program(s[0].text, r.prompt, r.entry_point)
        for s, r in zip(answers, rows.itertuples(index=False), strict=True)
    ]
    frame = _annotations(rows, feedback, refinement, "llm", "llm")
    empty = frame["feedback"].str.strip() == ""
    if empty.any():
        logger.warning(
            "the LLM wrote empty feedback for task_id %s: dropped",
            frame.loc[empty, "task_id"].tolist(),
        )
    return frame[~empty].reset_index(drop=True)

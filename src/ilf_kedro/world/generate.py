"""The miniature world's data: its tasks (MBPP's schema), their known mistakes, and the
imperfect pretraining corpus of its base model.

Plain Python, no Kedro. Every function takes an explicit seed.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Mapping, Sequence

import pandas as pd

from ilf_kedro.ilf.prompts import build_code_prompt

from .tasks import OPENINGS, asserts, check_families, draw_task

MISTAKE_COLUMNS = ["task_id", "kind", "program", "feedback"]
CORPUS_COLUMNS = ["family", "text", "prompt", "completion", "mistake"]


def _split_sizes(splits: Mapping[str, Sequence[int]]) -> list[tuple[str, int, int]]:
    return sorted(
        ((name, int(lo), int(hi)) for name, (lo, hi) in splits.items()), key=lambda s: s[1]
    )


def held_out(text: str) -> bool:
    """Whether a task text belongs to the test split's half of the text space: a stable
    hash of the words after the opening ("Write a [python] function to"), so two texts
    that differ only in their opening always fall on the same side. Every meaning of
    every family has wordings on both sides (tests/world), so the test split holds out
    descriptions, never a kind of task the fine-tunes do not see."""
    words = next((text[len(o) :] for o in OPENINGS if text.startswith(o)), text)
    return int(hashlib.sha256(words.encode()).hexdigest(), 16) % 2 == 0


def generate_tasks(
    splits: Mapping[str, Sequence[int]],
    num_tasks: int,
    families: list[str],
    seed: int,
    max_draws: int = 100_000,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Tasks with ids 1..``num_tasks`` in MBPP's schema, and their known mistakes.

    The test split draws its texts from one half of the text space (``held_out``), each
    at most once; the other splits draw from the other half and may repeat a text (with
    other asserts), since the families' parameter spaces are small. So no model is ever
    fine-tuned on a test task's own description.

    Returns ``(tasks, mistakes)``: ``tasks`` has MBPP's columns (``task_id``, ``text``,
    ``code``, ``test_list``, ``test_setup_code``, ``challenge_test_list``) plus ``family``;
    ``mistakes`` has one row per (task, known mistake): ``MISTAKE_COLUMNS``, the wrong
    program and what an annotator says about it.
    """
    families = check_families(families)
    if num_tasks < 1:
        raise ValueError(f"world.num_tasks is {num_tasks}; it must be at least 1")
    rng = random.Random(seed)
    test_range = next(((lo, hi) for name, lo, hi in _split_sizes(splits) if name == "test"), None)
    test_texts: set[str] = set()
    rows, mistakes = [], []
    for task_id in range(1, num_tasks + 1):
        is_test = test_range is not None and test_range[0] <= task_id <= test_range[1]
        for _ in range(max_draws):
            task = draw_task(rng, families)
            if task.mistakes and held_out(task.text) == is_test and task.text not in test_texts:
                break
        else:
            raise ValueError(
                f"world: cannot draw {num_tasks} tasks with unique test texts from families "
                f"{families}; lower world.num_tasks or add families"
            )
        if is_test:
            test_texts.add(task.text)
        rows.append(
            {
                "task_id": task_id,
                "text": task.text,
                "code": task.code,
                "test_list": asserts(task),
                "test_setup_code": "",
                "challenge_test_list": [],
                "family": task.family,
            }
        )
        mistakes += [
            {
                "task_id": task_id,
                "kind": m.kind,
                "program": task.program_with(m.body),
                "feedback": m.feedback,
            }
            for m in task.mistakes
        ]
    return pd.DataFrame(rows), pd.DataFrame(mistakes, columns=MISTAKE_COLUMNS)


def generate_corpus(
    size: int,
    families: list[str],
    mistake_rates: Mapping[str, float],
    seed: int,
) -> pd.DataFrame:
    """The base model's pretraining corpus: (paper prompt -> program) pairs like web code.

    Each example is a freshly drawn task (any parameters, so test tasks' descriptions may
    occur, as MBPP's did on the web) and its program, which carries one of the task's
    known mistakes with that mistake kind's rate in ``mistake_rates`` (kinds in random
    order, at most one mistake per program): the systematic misconceptions the base
    model learns, and that feedback can later correct. The prompt is the project's own
    (``build_code_prompt``), so the format matches sampling exactly.
    """
    families = check_families(families)
    bad = {k: v for k, v in mistake_rates.items() if not 0.0 <= float(v) <= 1.0}
    if bad:
        raise ValueError(f"world.corpus.mistake_rates must be in [0, 1]; got {bad}")
    rng = random.Random(seed)
    rows = []
    while len(rows) < size:
        task = draw_task(rng, families)
        tests = asserts(task)
        prompt, _ = build_code_prompt(task.text, task.code, tests[0])
        body, kind = task.body, ""
        for mistake in rng.sample(task.mistakes, len(task.mistakes)):
            if rng.random() < float(mistake_rates.get(mistake.kind, 0.0)):
                body, kind = mistake.body, mistake.kind
                break
        rows.append(
            {
                "family": task.family,
                "text": task.text,
                "prompt": prompt,
                "completion": body,
                "mistake": kind,
            }
        )
    return pd.DataFrame(rows, columns=CORPUS_COLUMNS)

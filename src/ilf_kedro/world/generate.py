"""The miniature world's data: its tasks (MBPP's schema, gold programs by the gold author),
every candidate program of each task (each style, right or with each known slip), and the
imperfect pretraining corpus of its base model.

Plain Python, no Kedro. Every function takes an explicit seed.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Mapping, Sequence

import pandas as pd

from ilf_kedro.ilf.prompts import build_code_prompt

from .tasks import OPENINGS, STYLES, asserts, candidates, check_families, draw_task

CANDIDATE_COLUMNS = ["task_id", "style", "mistake", "correct", "feedback", "program"]
CORPUS_COLUMNS = ["family", "text", "prompt", "style", "completion", "mistake", "repeat"]


def _mix(weights: Mapping[str, float], key: str) -> dict[str, float]:
    bad = {s: w for s, w in weights.items() if s not in STYLES or not float(w) >= 0}
    total = sum(float(w) for w in weights.values())
    if bad or total <= 0:
        raise ValueError(
            f"{key} {dict(weights)}: weights must be >= 0 with a positive sum, keys from "
            f"{list(STYLES)}"
        )
    return {s: float(weights.get(s, 0.0)) / total for s in STYLES}


def gold_author_mix(corpus_styles: Mapping[str, float], distance: float) -> dict[str, float]:
    """The gold author's mix of styles: ``distance`` 0 writes like the corpus, 1 only in
    the styles the corpus never uses (evenly), and in between the blend of the two."""
    corpus = _mix(corpus_styles, "world.corpus.styles")
    unused = [s for s, w in corpus.items() if w == 0.0]
    if not 0.0 <= distance <= 1.0 or (distance > 0 and not unused):
        raise ValueError(
            f"world.gold_author.distance is {distance}; allowed: 0 to 1, and above 0 only "
            "when world.corpus.styles leaves some style at 0 (the style the corpus never uses)"
        )
    return {
        s: (1 - distance) * w + (distance / len(unused) if s in unused else 0.0)
        for s, w in corpus.items()
    }


def _pick(mix: Mapping[str, float], u: float) -> str:
    """The style at ``u`` in [0, 1) on the cumulative ``mix`` (styles in ``STYLES`` order,
    so a growing distance moves tasks to the unused styles, from the top of u down)."""
    total = 0.0
    for style in STYLES:
        total += mix[style]
        if u < total:
            return style
    return max(mix, key=lambda s: (mix[s] > 0, STYLES.index(s)))


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
    gold_styles: Mapping[str, float] | None = None,
    max_draws: int = 100_000,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Tasks with ids 1..``num_tasks`` in MBPP's schema, and their candidate programs.

    Each gold program (``code``) is written in a style drawn from ``gold_styles`` (the
    gold author's mix, ``gold_author_mix``; None: the first style), by its own random
    stream: the tasks, texts and asserts are the same for every gold author.

    The test split draws its texts from one half of the text space (``held_out``), each
    at most once; the other splits draw from the other half and may repeat a text (with
    other asserts), since the families' parameter spaces are small. So no model is ever
    fine-tuned on a test task's own description.

    Returns ``(tasks, candidates)``: ``tasks`` has MBPP's columns (``task_id``, ``text``,
    ``code``, ``test_list``, ``test_setup_code``, ``challenge_test_list``) plus ``family``
    and ``gold_style``; ``candidates`` has ``CANDIDATE_COLUMNS``, one row per (task,
    style, right or known slip): the program and, for a slip, what an annotator says.
    """
    families = check_families(families)
    gold_mix = _mix(gold_styles or {STYLES[0]: 1.0}, "world.gold_author styles")
    gold_rng = random.Random(f"gold author {seed}")
    if num_tasks < 1:
        raise ValueError(f"world.num_tasks is {num_tasks}; it must be at least 1")
    rng = random.Random(seed)
    test_range = next(((lo, hi) for name, lo, hi in _split_sizes(splits) if name == "test"), None)
    test_texts: set[str] = set()
    rows, known = [], []
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
        gold_style = _pick(gold_mix, gold_rng.random())
        rows.append(
            {
                "task_id": task_id,
                "text": task.text,
                "code": task.program_with(task.bodies[gold_style]),
                "test_list": asserts(task),
                "test_setup_code": "",
                "challenge_test_list": [],
                "family": task.family,
                "gold_style": gold_style,
            }
        )
        known += [{"task_id": task_id, **row} for row in candidates(task)]
    return pd.DataFrame(rows), pd.DataFrame(known, columns=CANDIDATE_COLUMNS)


def generate_corpus(
    size: int,
    families: list[str],
    mistake_rates: Mapping[str, float],
    seed: int,
    styles: Mapping[str, float] | None = None,
    repeat_rate: float = 0.0,
) -> pd.DataFrame:
    """The base model's pretraining corpus: (paper prompt -> program) pairs like web code.

    Each example is a freshly drawn task (any parameters, so test tasks' descriptions may
    occur, as MBPP's did on the web) and its program, which carries one of the task's
    known mistakes with that mistake kind's rate in ``mistake_rates`` (kinds in random
    order, at most one mistake per program), written in a style drawn from ``styles``
    (the corpus's mix; None: the first style only), slip or not: the systematic
    misconceptions the base model learns, and that feedback can later correct. The
    prompt is the project's own (``build_code_prompt``), so the format matches sampling
    exactly.

    Web code repeats itself (a function pasted again further down a file, a file before
    and after a commit that left it alone), and a language model trained on it can copy
    from its context; a corpus of single programs never shows it one. So a share
    ``repeat_rate`` of the examples is a *repeat*: the program, another task's
    description as a comment, then the same prompt again, and the same program as the
    target (``repeat`` true). Nothing in it says how to change a program: the repeated
    program is always identical, slip included.
    """
    families = check_families(families)
    bad = {k: v for k, v in mistake_rates.items() if not 0.0 <= float(v) <= 1.0}
    if bad:
        raise ValueError(f"world.corpus.mistake_rates must be in [0, 1]; got {bad}")
    if not 0.0 <= float(repeat_rate) <= 1.0:
        raise ValueError(f"world.corpus.repeat_rate is {repeat_rate}; allowed: 0 to 1")
    mix = _mix(styles or {STYLES[0]: 1.0}, "world.corpus.styles")
    rng = random.Random(seed)
    rows = []
    while len(rows) < size:
        task = draw_task(rng, families)
        tests = asserts(task)
        prompt, _ = build_code_prompt(task.text, task.code, tests[0])
        style = _pick(mix, rng.random())
        body, kind = task.bodies[style], ""
        for mistake in rng.sample(task.mistakes, len(task.mistakes)):
            if rng.random() < float(mistake_rates.get(mistake.kind, 0.0)):
                body, kind = mistake.bodies[style], mistake.kind
                break
        repeat = float(repeat_rate) > 0 and rng.random() < float(repeat_rate)
        if repeat:
            between = draw_task(rng, families).text
            prompt = f"{prompt}{body}\n# {between}\n\n{prompt}"
        rows.append(
            {
                "family": task.family,
                "text": task.text,
                "prompt": prompt,
                "style": style,
                "completion": body,
                "mistake": kind,
                "repeat": repeat,
            }
        )
    return pd.DataFrame(rows, columns=CORPUS_COLUMNS)

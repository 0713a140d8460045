"""The miniature world's generator, corpus and annotator (plain library code)."""

from __future__ import annotations

import random
import re
from collections import defaultdict

import pandas as pd
import pytest

from ilf_kedro.ingest.tasks import build_tasks
from ilf_kedro.ingest.validation import validate_annotations, validate_mbpp
from ilf_kedro.world.annotator import annotate
from ilf_kedro.world.generate import generate_corpus, generate_tasks, held_out
from ilf_kedro.world.tasks import FAMILIES, OPENINGS, run_function

SPLITS = {"prompt": [1, 2], "test": [3, 22], "refine": [23, 42], "train": [43, 60]}


@pytest.fixture(scope="module")
def world():
    return generate_tasks(SPLITS, 60, list(FAMILIES), seed=3)


def _check(program: str, tests: list[str]) -> bool:
    namespace: dict = {}
    try:
        exec(program, namespace)  # noqa: S102 - generated programs, in the test only
        for test in tests:
            exec(test, namespace)  # noqa: S102
    except AssertionError:
        return False
    return True


def test_tasks_follow_mbpp_schema_and_are_seeded(world):
    raw, mistakes = world
    validate_mbpp(raw)
    tasks, errors = build_tasks(raw, SPLITS)
    assert errors.empty and len(tasks) == 60
    assert (tasks["split"] != "unassigned").all()
    again, _ = generate_tasks(SPLITS, 60, list(FAMILIES), seed=3)
    pd.testing.assert_frame_equal(raw, again)
    other, _ = generate_tasks(SPLITS, 60, list(FAMILIES), seed=4)
    assert not raw["text"].equals(other["text"])


def test_gold_passes_and_every_known_mistake_fails(world):
    raw, mistakes = world
    tests = dict(zip(raw["task_id"], raw["test_list"], strict=True))
    for row in raw.itertuples():
        assert len(row.test_list) == 3 and _check(row.code, row.test_list), row.text
    assert not mistakes.empty and set(mistakes["task_id"]) <= set(raw["task_id"])
    for row in mistakes.itertuples():
        assert not _check(row.program, tests[row.task_id]), (row.kind, row.program)


def test_test_texts_are_unique_and_never_in_other_splits(world):
    raw, _ = world
    test = raw[raw["task_id"].between(*SPLITS["test"])]
    others = raw[~raw["task_id"].between(*SPLITS["test"])]
    assert test["text"].is_unique
    assert not set(test["text"]) & set(others["text"])


def test_test_split_holds_out_wordings_never_meanings():
    # A family's meaning is its gold program up to the numbers in it. If every wording of
    # a meaning fell in the test half, fine-tunes would see only the family's other
    # meanings and learn a wrong rule (the first world's "absolute value -> min").
    rng, sides = random.Random(0), defaultdict(set)
    for family in FAMILIES.values():
        for _ in range(2000):
            task = family(rng)
            sides[(task.family, re.sub(r"\d+", "N", task.body))].add(held_out(task.text))
    assert {meaning for meaning, seen in sides.items() if seen != {True, False}} == set()
    assert len({family for family, _ in sides}) == len(FAMILIES)
    # The opening is wording that never decides the side (no near-duplicate across splits).
    rest = "sort a list of numbers in ascending order."
    assert len({held_out(opening + rest) for opening in OPENINGS}) == 1


def test_corpus_carries_mistakes_at_their_rates():
    corpus = generate_corpus(600, ["select_elements"], {"strictness": 0.5}, seed=0)
    strict = corpus["text"].str.contains("greater than|less than")  # the kind's tasks
    share = (corpus.loc[strict, "mistake"] == "strictness").mean()
    assert 0.4 < share < 0.6
    assert (corpus.loc[~strict, "mistake"] == "").all()  # "inclusion" has no rate here
    assert set(corpus["mistake"]) == {"", "strictness"}  # no other kind has a rate
    clean = generate_corpus(50, ["select_elements"], {}, seed=0)
    assert (clean["mistake"] == "").all()
    with pytest.raises(ValueError, match="mistake_rates"):
        generate_corpus(5, ["select_elements"], {"strictness": 1.5}, seed=0)
    with pytest.raises(ValueError, match="allowed"):
        generate_corpus(5, ["no_such_family"], {}, seed=0)


def test_annotator_names_the_mistake_without_the_corrected_line(world):
    raw, mistakes = world
    tasks, _ = build_tasks(raw, SPLITS)
    by_id = tasks.set_index("task_id")
    known = mistakes.drop_duplicates("task_id").head(8)
    failing = pd.DataFrame(
        {
            "task_id": known["task_id"],
            "prompt": [by_id.loc[t, "prompt"] for t in known["task_id"]],
            "program": [
                by_id.loc[t, "prompt"] + p.split("\n", 1)[1]
                for t, p in zip(known["task_id"], known["program"], strict=True)
            ],
            "status": "failed",
            "error_type": "AssertionError",
            "error_message": "",
        }
    )
    # One program the annotator knows no slip for: it describes the failing test.
    odd = failing.iloc[[0]].assign(
        program=lambda f: f["prompt"] + "    return None\n",
        error_message="test 1: assert f(1) == 2 -- the call returned None",
    )
    annotations = annotate(pd.concat([failing, odd], ignore_index=True), tasks, mistakes)
    validate_annotations(annotations, raw["task_id"])
    assert list(annotations["mistake"][:-1]) == list(known["kind"])
    assert list(annotations["Feedback"][:-1]) == list(known["feedback"])
    assert annotations["mistake"].iloc[-1] == "other"
    assert "returned None" in annotations["Feedback"].iloc[-1]
    for row in annotations.itertuples():
        gold_body = by_id.loc[row.task_id, "gold_code"].split("\n", 1)[1].strip()
        assert gold_body not in row.Feedback  # names the slip, never pastes the fix
        assert row.unedited_annotator_completion.startswith(row.prompt)
        assert _check(row.unedited_annotator_completion, by_id.loc[row.task_id, "tests"])


def test_every_family_runs_its_gold_program():
    import random

    for name, family in FAMILIES.items():
        task = family(random.Random(1))
        assert run_function(task.code, task.entry_point, task.inputs[0]) is not None, name

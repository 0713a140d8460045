"""The miniature world's generator, corpus and annotator (plain library code)."""

from __future__ import annotations

import random
import re
from collections import defaultdict

import pandas as pd
import pytest

from ilf_kedro.feedback.stats import edit_distance
from ilf_kedro.ingest.tasks import build_tasks
from ilf_kedro.ingest.validation import validate_annotations, validate_mbpp
from ilf_kedro.world.annotator import annotate
from ilf_kedro.world.generate import (
    generate_corpus,
    generate_tasks,
    gold_author_mix,
    held_out,
)
from ilf_kedro.world.tasks import FAMILIES, OPENINGS, STYLES, run_function

CORPUS_STYLES = {"expression": 0.5, "loop": 0.25, "helper": 0.25}

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


def test_gold_and_every_right_style_pass_and_every_known_mistake_fails(world):
    raw, candidates = world
    tests = dict(zip(raw["task_id"], raw["test_list"], strict=True))
    for row in raw.itertuples():
        assert len(row.test_list) == 3 and _check(row.code, row.test_list), row.text
    assert set(candidates["task_id"]) == set(raw["task_id"])
    assert set(candidates["style"]) == set(STYLES)
    for row in candidates.itertuples():
        assert _check(row.program, tests[row.task_id]) == row.correct, (row.mistake, row.program)
    right = candidates[candidates["correct"]]
    assert (right.groupby("task_id")["style"].nunique() == len(STYLES)).all()
    assert (right["mistake"] == "").all() and (right["feedback"] == "").all()


def test_the_styles_of_a_meaning_compute_the_same_function():
    # Right or slipped, every style of a meaning returns the same on the asserts' inputs
    # and on other inputs of the same kind: a slip is a misreading, never a style.
    rng = random.Random(7)
    for family in FAMILIES.values():
        for _ in range(150):
            task = family(rng)
            other = family(random.Random(rng.random()))
            inputs = list(task.inputs) + list(other.inputs)
            for bodies in [task.bodies] + [m.bodies for m in task.mistakes]:
                assert set(bodies) == set(STYLES)
                programs = {s: task.program_with(b) for s, b in bodies.items()}
                results = {
                    s: [run_function(p, task.entry_point, args) for args in inputs]
                    for s, p in programs.items()
                }
                first = results[STYLES[0]]
                assert all(r == first for r in results.values()), (task.text, programs)
            assert len(set(task.bodies.values())) == len(STYLES)  # really different code


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
            meaning = re.sub(r"\d+", "N", task.bodies[STYLES[0]])
            sides[(task.family, meaning)].add(held_out(task.text))
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


def test_corpus_mixes_styles_and_never_uses_the_unused_one():
    corpus = generate_corpus(800, list(FAMILIES), {"strictness": 0.5}, 0, styles=CORPUS_STYLES)
    shares = corpus["style"].value_counts(normalize=True)
    assert set(shares.index) == set(CORPUS_STYLES)
    for style, weight in CORPUS_STYLES.items():
        assert abs(shares[style] - weight) < 0.06, (style, shares[style])
    # Slips occur in every style, at the same rate.
    slipped = corpus[corpus["mistake"] == "strictness"]
    assert set(slipped["style"]) == set(CORPUS_STYLES)
    indexed = corpus["completion"].str.contains("range(len(", regex=False)
    assert not indexed.any()  # the style the corpus never uses


def test_corpus_repeats_are_verbatim_copies_at_their_rate():
    corpus = generate_corpus(400, list(FAMILIES), {"strictness": 0.5}, 0, repeat_rate=0.25)
    assert 0.18 < corpus["repeat"].mean() < 0.32
    repeats = corpus[corpus["repeat"]]
    for row in repeats.itertuples():
        # The program, slip included, then another task's text, then the same prompt again.
        first, _, again = row.prompt.partition("\n# ")
        assert first.endswith(row.completion)
        assert again.split("\n\n", 1)[1] == first[: -len(row.completion)]
    singles = corpus[~corpus["repeat"]]
    assert not singles["prompt"].str.contains("\n# ").any()
    assert not generate_corpus(50, list(FAMILIES), {}, 0)["repeat"].any()
    with pytest.raises(ValueError, match="repeat_rate"):
        generate_corpus(5, ["select_elements"], {}, 0, repeat_rate=1.5)


def test_gold_author_distance_moves_only_the_gold_programs():
    assert gold_author_mix(CORPUS_STYLES, 0.0) == {**CORPUS_STYLES, "indexed": 0.0}
    assert gold_author_mix(CORPUS_STYLES, 1.0) == {
        "expression": 0.0,
        "loop": 0.0,
        "helper": 0.0,
        "indexed": 1.0,
    }
    with pytest.raises(ValueError, match="gold_author.distance"):
        gold_author_mix({s: 1.0 for s in STYLES}, 0.5)
    splits = {"prompt": [1, 2], "test": [3, 102], "refine": [103, 202], "train": [203, 400]}
    worlds = {
        d: generate_tasks(splits, 400, list(FAMILIES), 5, gold_author_mix(CORPUS_STYLES, d))
        for d in (0.0, 0.5, 1.0)
    }
    (near, candidates), (_, same_candidates), (far, _) = worlds.values()
    pd.testing.assert_frame_equal(candidates, same_candidates)
    other_columns = [c for c in near.columns if c not in ("code", "gold_style")]
    pd.testing.assert_frame_equal(near[other_columns], far[other_columns])
    for d, (raw, _) in worlds.items():
        shares = raw["gold_style"].value_counts(normalize=True)
        expected = gold_author_mix(CORPUS_STYLES, d)
        for style in STYLES:
            assert abs(shares.get(style, 0.0) - expected[style]) < 0.07, (d, style)
    assert (far["gold_style"] == "indexed").all()
    # Each gold program is the task's right program in its author's style.
    right = candidates[candidates["correct"]].set_index(["task_id", "style"])["program"]
    for row in far.itertuples():
        assert right[(row.task_id, row.gold_style)] == row.code


def test_annotator_names_the_mistake_without_the_corrected_line(world):
    raw, candidates = world
    tasks, _ = build_tasks(raw, SPLITS)
    by_id = tasks.set_index("task_id")
    slips = candidates[~candidates["correct"]]
    known = slips.sample(frac=1.0, random_state=0).drop_duplicates("task_id").head(12)
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
    annotations = annotate(pd.concat([failing, odd], ignore_index=True), tasks, candidates)
    validate_annotations(annotations, raw["task_id"])
    assert list(annotations["mistake"][:-1]) == list(known["mistake"])
    assert list(annotations["Feedback"][:-1]) == list(known["feedback"])
    assert annotations["mistake"].iloc[-1] == "other"
    assert "returned None" in annotations["Feedback"].iloc[-1]
    right = candidates[candidates["correct"]]
    for row in annotations.itertuples():
        for program in right.loc[right["task_id"] == row.task_id, "program"]:
            fix = program.split("\n", 1)[1]
            # Names the slip, never pastes a corrected line.
            assert not any(line.strip() in row.Feedback for line in fix.splitlines())
        assert row.unedited_annotator_completion.startswith(row.prompt)
        assert _check(row.unedited_annotator_completion, by_id.loc[row.task_id, "tests"])
    # A slip is fixed in place: the refinement is the right program in the slip's own
    # style, nearer the failing program than any other right program.
    for slip, row in zip(known.itertuples(), annotations.iloc[:-1].itertuples(), strict=True):
        style_fix = right.loc[
            (right["task_id"] == slip.task_id) & (right["style"] == slip.style), "program"
        ].iloc[0]
        assert row.completion == style_fix.split("\n", 1)[1], (slip.style, row.completion)
        others = right.loc[right["task_id"] == slip.task_id, "program"]
        assert row.refinement_edit_distance == min(
            edit_distance(row.prompt + p.split("\n", 1)[1], row.original_model_completion)
            for p in others
        )


def test_every_family_runs_its_gold_program():
    import random

    for name, family in FAMILIES.items():
        task = family(random.Random(1))
        assert run_function(task.code, task.entry_point, task.inputs[0]) is not None, name

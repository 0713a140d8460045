"""The world's parameters: the schema knows the generator's families, so a typo stops the
run before any node, naming the allowed families."""

from __future__ import annotations

from typing import get_args

import pytest
from pydantic import ValidationError

from ilf_kedro.infra.project_parameters import load_parameters
from ilf_kedro.parameters import World, WorldFamily
from ilf_kedro.world.tasks import FAMILIES


def test_schema_families_are_the_generators():
    assert set(get_args(WorldFamily)) == set(FAMILIES)


def test_an_unknown_family_is_refused_with_the_allowed_ones():
    world = load_parameters()["world"]
    with pytest.raises(ValidationError) as error:
        World(**{**world, "families": ["select_elements", "shift_element"]})
    message = str(error.value)
    assert "families.1" in message and "shift_elements" in message


def test_schema_mistake_kinds_are_the_ones_the_families_make():
    import random

    from ilf_kedro.parameters import MistakeKind
    from ilf_kedro.world.tasks import MISTAKE_KINDS

    rng = random.Random(0)
    made = {
        m.kind for family in FAMILIES.values() for _ in range(300) for m in family(rng).mistakes
    }
    assert made == set(MISTAKE_KINDS) == set(get_args(MistakeKind))


def test_an_unknown_mistake_kind_is_refused_with_the_allowed_ones():
    world = load_parameters()["world"]
    corpus = {**world["corpus"], "mistake_rates": {"strictnes": 0.5}}
    with pytest.raises(ValidationError) as error:
        World(**{**world, "corpus": corpus})
    message = str(error.value)
    assert "strictnes" in message and "'strictness'" in message


def test_schema_styles_are_the_worlds():
    from ilf_kedro.parameters import WorldStyle
    from ilf_kedro.world.tasks import STYLES

    assert get_args(WorldStyle) == STYLES


@pytest.mark.parametrize(
    ("styles", "distance", "expected"),
    [
        ({"expression": 1.0}, 1.5, "gold_author.distance"),
        ({"expression": 1.0}, -0.1, "gold_author.distance"),
        # Every style in the corpus: no style is left for a distant gold author.
        (
            {"expression": 1, "loop": 1, "helper": 1, "indexed": 1},
            0.5,
            "leave some style out of the corpus",
        ),
        ({"expression": 0.0}, 0.0, "positive sum"),
        ({"expresion": 1.0}, 0.0, "'expression'"),
    ],
)
def test_bad_styles_or_gold_distance_are_refused_naming_the_parameter(styles, distance, expected):
    world = load_parameters()["world"]
    corpus = {**world["corpus"], "styles": styles}
    with pytest.raises(ValidationError) as error:
        World(**{**world, "corpus": corpus, "gold_author": {"distance": distance}})
    assert expected in str(error.value)

"""Fixtures for the model library tests: tiny random CodeGen models, offline."""

from __future__ import annotations

import os

import pandas as pd
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

# Three MBPP-style (prompt, program body) pairs the round-trip tests learn by heart.
ROUND_TRIP = pd.DataFrame(
    {
        "task_id": [1, 2, 3],
        "prompt": [
            '"""\nWrite a function to add two numbers.\n>>> Example: add(1, 2) = 3\n"""\n\n'
            "def add(a, b):\n",
            '"""\nWrite a function to reverse a string.\n>>> Example: rev("ab") = "ba"\n"""\n\n'
            "def rev(s):\n",
            '"""\nWrite a function to find the maximum of a list.\n'
            ">>> Example: biggest([1, 3, 2]) = 3\n"
            '"""\n\ndef biggest(xs):\n',
        ],
        "completion": [
            "    return a + b\n",
            "    return s[::-1]\n",
            "    best = xs[0]\n    for x in xs:\n        if x > best:\n            best = x\n"
            "    return best\n",
        ],
        "tests": [
            ["assert add(1, 2) == 3", "assert add(-1, 1) == 0"],
            ['assert rev("ab") == "ba"', 'assert rev("") == ""'],
            ["assert biggest([1, 3, 2]) == 3", "assert biggest([-5]) == -5"],
        ],
    }
)


@pytest.fixture(scope="session")
def tiny_bundle():
    """A shared tiny random model; tests must not train or modify it."""
    from ilf_kedro.models import load_model

    return load_model("tiny-random", device="cpu", seed=0)


@pytest.fixture
def prompts() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "task_id": [11, 12, 13],
            "prompt": [
                '"""\nWrite a function to add two numbers.\n"""\n\ndef add(a, b):\n',
                "def f(x):\n",
                '"""\nA much longer docstring so that the prompts differ in length and the '
                'batch needs left padding.\n>>> Example: g([1, 2]) = 3\n"""\n\ndef g(xs):\n',
            ],
            "split": ["test", "test", "train"],
        }
    )


@pytest.fixture
def round_trip_pairs() -> pd.DataFrame:
    return ROUND_TRIP.copy()

"""ilf_kedro.models.perplexity: per-program perplexity under a causal LM (Figure 3's data)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from ilf_kedro.models import perplexity


@pytest.fixture(scope="module")
def tiny_bundle():
    from ilf_kedro.models import load_model

    return load_model("tiny-random", device="cpu", tiny_config={"n_layer": 1})


def test_perplexity_is_exp_of_the_mean_token_nll(tiny_bundle):
    programs = ["def add(a, b):\n    return a + b\n", "x = 1", "print('hello world')\n" * 3]
    got = perplexity.program_perplexities(tiny_bundle, programs, batch_size=2)
    assert all(math.isfinite(p) and p > 1 for p in got)
    for program, ppl in zip(programs, got, strict=True):
        ids = tiny_bundle.tokenizer(program, return_tensors="pt", add_special_tokens=False)
        with torch.no_grad():
            loss = tiny_bundle.model(input_ids=ids["input_ids"], labels=ids["input_ids"]).loss
        assert ppl == pytest.approx(math.exp(loss.item()), rel=1e-4)
    # Batching and padding do not change the value.
    alone = [perplexity.program_perplexities(tiny_bundle, [p])[0] for p in programs]
    assert got == pytest.approx(alone, rel=1e-4)
    assert math.isnan(perplexity.program_perplexities(tiny_bundle, [""])[0])


def test_perplexity_table_one_row_per_program(tiny_bundle):
    sources = {
        "MBPP gold programs": pd.DataFrame({"task_id": [1, 2], "program": ["a = 1\n", "b = 2\n"]}),
        "pi_Refine refinements": pd.DataFrame({"task_id": [], "program": []}),
        "human refinements": pd.DataFrame({"task_id": [1], "program": ["a = 3\n"]}),
    }
    table = perplexity.perplexity_table(tiny_bundle, sources, batch_size=4)
    assert list(table.columns) == ["source", "task_id", "n_tokens", "perplexity"]
    assert len(table) == 3 and np.isfinite(table["perplexity"]).all()
    assert list(table["source"]) == ["MBPP gold programs"] * 2 + ["human refinements"]
    assert list(table["task_id"]) == [1, 2, 1]

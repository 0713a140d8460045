"""ilf_kedro.models.perplexity: how likely a causal LM finds a program given its task
prompt (Figure 3's perplexities, the theory's log-likelihoods)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from ilf_kedro.models import encode_example, perplexity
from ilf_kedro.parameters import Perplexity

PROMPTS = ['"""\nAdd two numbers.\n"""\ndef add(a, b):\n', "x = ", "# say hello\n"]
COMPLETIONS = ["    return a + b\n", "1", "print('hello world')\n" * 3]


@pytest.fixture(scope="module")
def tiny_bundle():
    from ilf_kedro.models import load_model

    return load_model("tiny-random", device="cpu", tiny_config={"n_layer": 1})


def test_perplexity_is_the_fine_tune_loss_on_the_completion(tiny_bundle):
    got = perplexity.completion_perplexities(tiny_bundle, PROMPTS, COMPLETIONS, batch_size=2)
    assert all(math.isfinite(p) and p > 1 for p in got)
    for prompt, completion, ppl in zip(PROMPTS, COMPLETIONS, got, strict=True):
        # The fine-tune's own encoding: loss on the completion and its EOS, given the prompt.
        example = encode_example(tiny_bundle.tokenizer, prompt, completion, 1024)
        with torch.no_grad():
            loss = tiny_bundle.model(
                input_ids=torch.tensor([example["input_ids"]]),
                labels=torch.tensor([example["labels"]]),
            ).loss
        assert ppl == pytest.approx(math.exp(loss.item()), rel=1e-4)
    # Batching and padding do not change the value.
    alone = [
        perplexity.completion_perplexities(tiny_bundle, [p], [c])[0]
        for p, c in zip(PROMPTS, COMPLETIONS, strict=True)
    ]
    assert got == pytest.approx(alone, rel=1e-4)
    # The prompt conditions: the same completion after another prompt scores otherwise.
    other = perplexity.completion_perplexities(tiny_bundle, ["zzz"], [COMPLETIONS[0]])[0]
    assert other != pytest.approx(got[0], rel=1e-6)


def test_log_likelihood_covers_the_completion_and_its_eos(tiny_bundle):
    ll, n = perplexity.completion_log_likelihoods(tiny_bundle, PROMPTS, COMPLETIONS)
    tokens = [
        len(tiny_bundle.tokenizer(c, add_special_tokens=False)["input_ids"]) + 1
        for c in COMPLETIONS
    ]
    assert list(n) == tokens and (ll < 0).all()
    ppl = perplexity.completion_perplexities(tiny_bundle, PROMPTS, COMPLETIONS)
    assert ppl == pytest.approx(list(np.exp(-ll / n)), rel=1e-9)


def test_perplexity_table_one_row_per_program(tiny_bundle):
    def pairs(task_ids, completions):
        return pd.DataFrame(
            {
                "task_id": task_ids,
                "prompt": ["def f():\n"] * len(task_ids),
                "completion": completions,
            }
        )

    sources = {
        "MBPP gold programs": pairs([1, 2], ["    return 1\n", "    return 2\n"]),
        "pi_Refine refinements": pairs([], []),
        "human refinements": pairs([1], ["    return 3\n"]),
    }
    table = perplexity.perplexity_table(tiny_bundle, sources, batch_size=4)
    assert list(table.columns) == ["source", "task_id", "n_tokens", "perplexity"]
    assert len(table) == 3 and np.isfinite(table["perplexity"]).all()
    assert list(table["source"]) == ["MBPP gold programs"] * 2 + ["human refinements"]
    assert list(table["task_id"]) == [1, 2, 1]


def test_the_same_program_gets_the_same_perplexity_from_every_source(tiny_bundle):
    # Figure 3: gold programs are stored bare (signature + body), refinements as task
    # prompt + body; each is scored on its body given the task prompt, so one program
    # has one perplexity whichever source it comes from.
    from ilf_kedro.pipelines.evaluation.nodes import (
        GOLD,
        PI_REFINE,
        compute_program_perplexities,
    )

    header = "def add(a, b):"
    prompts = [
        f'"""\nAdd two numbers, task {t}.\n>>> Example: add(1, 2) = 3\n"""\n\n{header}\n'
        for t in (1, 2)
    ]
    bodies = ["    return a + b\n", "    total = a + b\n    return total\n"]
    tasks = pd.DataFrame(
        {"task_id": [1, 2], "prompt": prompts, "gold_code": [header + "\n" + b for b in bodies]}
    )
    full = [p + b for p, b in zip(prompts, bodies, strict=True)]
    annotations = pd.DataFrame(
        {"task_id": [1, 2], "refinement": full, "refinement_source": "human"}
    )
    refinements = pd.DataFrame({"task_id": [1, 2], "program": full, "passed": True})
    table = compute_program_perplexities(tiny_bundle, tasks, annotations, refinements, Perplexity())
    wide = table.pivot(index="task_id", columns="source", values="perplexity")
    assert list(wide.columns) == sorted([GOLD, PI_REFINE, "human refinements"])
    for task_id, row in wide.iterrows():
        assert row.nunique() == 1, (task_id, row.to_dict())
    assert wide.loc[1, GOLD] != wide.loc[2, GOLD]  # two programs, two perplexities
    spans = table.groupby("task_id")["n_tokens"].nunique()
    assert (spans == 1).all()

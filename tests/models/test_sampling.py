import logging

import pandas as pd
import pytest

from ilf_kedro.models import OUTPUT_COLUMNS, load_model, sample_programs
from ilf_kedro.models.sampling import cut_completion

FAST = {"max_new_tokens": 24, "batch_size": 4, "progress": False}


def test_output_rows_and_columns(tiny_bundle, prompts):
    out = sample_programs(tiny_bundle, prompts, num_samples=3, seed=0, **FAST)
    assert list(out.columns) == OUTPUT_COLUMNS + ["split"]
    assert len(out) == 9
    # Input order, then sample index; the input's other columns are carried along.
    assert out["task_id"].tolist() == [11] * 3 + [12] * 3 + [13] * 3
    assert out["sample_idx"].tolist() == [0, 1, 2] * 3
    assert out["split"].tolist() == ["test"] * 6 + ["train"] * 3
    assert (out["program"] == out["prompt"] + out["completion"]).all()
    assert set(out["finish_reason"]) <= {"stop", "eos", "length"}
    assert (out["num_new_tokens"] <= FAST["max_new_tokens"]).all()


def test_same_seed_same_samples_other_seed_other_samples(tiny_bundle, prompts):
    a = sample_programs(tiny_bundle, prompts, num_samples=2, seed=7, **FAST)
    b = sample_programs(tiny_bundle, prompts, num_samples=2, seed=7, **FAST)
    c = sample_programs(tiny_bundle, prompts, num_samples=2, seed=8, **FAST)
    pd.testing.assert_frame_equal(a, b)
    assert a["completion"].tolist() != c["completion"].tolist()
    # Samples of one prompt differ from each other (temperature 0.8).
    assert a["completion"][0] != a["completion"][1]


def test_sampler_leaves_the_global_rng_alone(tiny_bundle, prompts):
    import torch

    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    sample_programs(tiny_bundle, prompts, num_samples=1, seed=0, **FAST)
    assert torch.equal(torch.rand(3), expected)


def test_greedy_is_identical_across_samples_and_unaffected_by_left_padding(tiny_bundle, prompts):
    batched = sample_programs(tiny_bundle, prompts, num_samples=2, temperature=0, **FAST)
    assert (batched.groupby("task_id")["completion"].nunique() == 1).all()
    for i in range(len(prompts)):
        alone = sample_programs(
            tiny_bundle, prompts.iloc[[i]], num_samples=1, temperature=0, **FAST
        )
        assert alone["completion"][0] == batched["completion"][2 * i]


def test_samples_of_one_prompt_equal_those_of_the_same_prompt_repeated_in_rows(
    tiny_bundle, prompts
):
    # The samples of one prompt share its forward pass (computed once, copied to each);
    # rows that hold the same text are not shared. Two prompts of different lengths (one
    # left-padded) in one batch, same seed: the same samples either way.
    # Weights scaled up, so that what the model emits depends on every token's position
    # (tiny-random's near-uniform outputs hardly do).
    bundle = _scaled_bundle(tiny_bundle, 8.0)
    two = prompts.head(2)
    assert two["prompt"].str.len().nunique() == 2
    shared = sample_programs(bundle, two, num_samples=2, seed=3, **FAST)
    rows = two.loc[two.index.repeat(2)].reset_index(drop=True)
    apart = sample_programs(bundle, rows, num_samples=1, seed=3, **FAST)
    assert shared["completion"].nunique() > 2
    assert shared["completion"].tolist() == apart["completion"].tolist()


def _scaled_bundle(bundle, factor: float):
    """A copy of ``bundle`` with every weight matrix times ``factor``."""
    import copy

    import torch

    from ilf_kedro.models.loading import ModelBundle

    model = copy.deepcopy(bundle.model)
    with torch.no_grad():
        for weight in model.parameters():
            if weight.dim() == 2:
                weight.mul_(factor)
    return ModelBundle(model, bundle.tokenizer, dict(bundle.info))


def _cycling_bundle(bundle, cycle: str):
    """A copy of ``bundle`` whose greedy output is ``cycle`` repeated, whatever the prompt.

    The decoder blocks are zeroed, so the last hidden state is the current token's
    embedding alone; each character of ``cycle`` gets a one-hot embedding that the output
    layer maps to the next character, and every other token (zero embedding) to the first.
    The output never depends on random weights or on the library's numerics.
    """
    import copy

    import torch

    from ilf_kedro.models.loading import ModelBundle

    model = copy.deepcopy(bundle.model)
    ids = [bundle.tokenizer.convert_tokens_to_ids(ch) for ch in cycle]
    assert len(set(ids)) == len(cycle) and bundle.tokenizer.unk_token_id not in ids
    with torch.no_grad():
        for p in model.transformer.h.parameters():
            p.zero_()
        wte, head = model.get_input_embeddings().weight, model.get_output_embeddings()
        wte.zero_()
        head.weight.zero_()
        head.bias.zero_()
        head.bias[ids[0]] = 1.0
        for k, token in enumerate(ids):
            wte[token, k] = 1.0
            head.weight[ids[(k + 1) % len(ids)], k] = 100.0
    return ModelBundle(model, bundle.tokenizer, dict(bundle.info))


def test_stop_sequence_cuts_completion_and_ends_generation_early(tiny_bundle, prompts):
    bundle = _cycling_bundle(tiny_bundle, "abcdefgh")
    one = prompts.iloc[[1]]
    free = sample_programs(bundle, one, num_samples=1, temperature=0, stop_sequences=None, **FAST)
    assert free["completion"][0] == ("abcdefgh" * 4)[: FAST["max_new_tokens"]]
    assert free["finish_reason"][0] == "length"
    calls = []
    hook = bundle.model.register_forward_hook(lambda *args: calls.append(1))
    try:
        cut = sample_programs(
            bundle, one, num_samples=1, temperature=0, stop_sequences=["efg"], **FAST
        )
    finally:
        hook.remove()
    # Generation ends right after the stop sequence; the completion is what came before it.
    assert cut["completion"][0] == "abcd"
    assert cut["finish_reason"][0] == "stop"
    assert cut["num_new_tokens"][0] == len("abcdefg")
    assert len(calls) == cut["num_new_tokens"][0]  # one forward pass per generated token


def test_batch_runs_until_every_sequence_has_stopped(tiny_bundle, prompts):
    free = sample_programs(
        tiny_bundle, prompts, num_samples=1, temperature=0, stop_sequences=None, **FAST
    )
    stops = [free["completion"][0][8:12]]  # only the first prompt's sequence stops early
    cut = sample_programs(
        tiny_bundle, prompts, num_samples=1, temperature=0, stop_sequences=stops, **FAST
    )
    assert cut["finish_reason"][0] == "stop"
    others_free = free["completion"][1:].tolist()
    others_cut = cut["completion"][1:].tolist()
    assert [cut_completion(t, stops)[0] for t in others_free] == others_cut


def testcut_completion_uses_the_earliest_stop():
    text = "    return 1\n# note\ndef g():\n"
    assert cut_completion(text, ["\ndef ", "\n#"]) == ("    return 1", True)
    assert cut_completion(text, ["\nclass "]) == (text, False)


def test_empty_input_gives_empty_frame_with_columns(tiny_bundle, prompts):
    out = sample_programs(tiny_bundle, prompts.iloc[:0], num_samples=4, **FAST)
    assert out.empty
    assert list(out.columns) == OUTPUT_COLUMNS + ["split"]
    assert out["task_id"].dtype == prompts["task_id"].dtype


def test_bad_inputs_are_rejected(tiny_bundle, prompts):
    with pytest.raises(ValueError, match="missing"):
        sample_programs(tiny_bundle, prompts.drop(columns="prompt"), num_samples=1, **FAST)
    with pytest.raises(ValueError, match="already has"):
        sample_programs(tiny_bundle, prompts.assign(completion="x"), num_samples=1, **FAST)
    with pytest.raises(ValueError, match="sampling.num_samples is 0: .*greater than or equal to 1"):
        sample_programs(tiny_bundle, prompts, num_samples=0, **FAST)


def test_prompt_longer_than_context_is_cut_from_the_start(prompts, caplog):
    small = load_model("tiny-random", tiny_config={"n_positions": 48})
    long = prompts.iloc[[2]].assign(prompt=lambda f: f["prompt"] * 4)
    with caplog.at_level(logging.WARNING, logger="ilf_kedro.models"):
        out = sample_programs(small, long, num_samples=1, **FAST)
    assert "start is cut" in caplog.text
    assert out["prompt"][0] == long["prompt"].iloc[0]  # the full prompt is reported

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


def test_stop_sequence_cuts_completion_and_ends_generation_early(tiny_bundle, prompts):
    one = prompts.iloc[[1]]
    free = sample_programs(
        tiny_bundle, one, num_samples=1, temperature=0, stop_sequences=None, **FAST
    )
    text = free["completion"][0]
    assert free["finish_reason"][0] == "length" and len(text) > 12
    # Use a piece of the greedy continuation as the stop sequence: generation must end
    # right after it and the completion must be everything before its first occurrence.
    stop = text[8:12]
    calls = []
    hook = tiny_bundle.model.register_forward_hook(lambda *args: calls.append(1))
    try:
        cut = sample_programs(
            tiny_bundle, one, num_samples=1, temperature=0, stop_sequences=[stop], **FAST
        )
    finally:
        hook.remove()
    assert cut["completion"][0] == text[: text.find(stop)]
    assert cut["finish_reason"][0] == "stop"
    assert cut["num_new_tokens"][0] < free["num_new_tokens"][0]
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

"""Fine-tuning in 2 processes (``accelerate launch``, DDP over gloo on CPU)."""

import logging

import numpy as np
import pandas as pd
import pytest
import torch

from ilf_kedro.models import finetune, load_model
from tests.models.conftest import ROUND_TRIP

pytestmark = pytest.mark.slow  # two ranks launched per test (accelerate, gloo)

# Same data, same effective batch (8 = 1 process x 8 accumulation = 2 processes x 4): every
# optimizer step sees all 8 pairs, so the loss of each step must agree up to the order of
# floating-point reductions.
LOSS_RTOL = 1e-5
RUN = {
    "learning_rate": 1e-2,
    "per_device_batch_size": 1,
    "gradient_accumulation_steps": 8,
    "num_epochs": 3,
    "progress": False,
}


@pytest.fixture(scope="module")
def pairs():
    rows = pd.concat([ROUND_TRIP, ROUND_TRIP, ROUND_TRIP.iloc[:2]], ignore_index=True)
    return rows[["prompt", "completion"]]


def test_two_processes_give_the_loss_curve_of_one(pairs, caplog, temp_folder):
    base = load_model("tiny-random", device="cpu", seed=0)
    one = finetune(base, pairs, **RUN)
    with caplog.at_level(logging.INFO, logger="ilf_kedro.models.distributed"):
        two = finetune(base, pairs, num_processes=2, **RUN)
    assert not list(temp_folder.iterdir())  # the launch left nothing behind
    assert len(one.info["loss_curve"]) == 3
    np.testing.assert_allclose(two.info["loss_curve"], one.info["loss_curve"], rtol=LOSS_RTOL)
    assert two.info["loss_curve"][-1] < two.info["loss_curve"][0]  # it did learn
    for name, weight in one.model.state_dict().items():
        torch.testing.assert_close(two.model.state_dict()[name], weight, rtol=1e-4, atol=1e-5)
    assert two.info["training_examples"] == 8
    assert two.info["finetune"]["num_processes"] == 2
    assert two.info["finetune"]["distributed"] == "ddp"
    # Both ranks' logs came through the caller's logger.
    assert "[rank 0]" in caplog.text and "[rank 1]" in caplog.text


def test_a_failing_rank_fails_the_fine_tune_with_its_error(pairs, tmp_path):
    base = load_model("tiny-random", device="cpu", seed=0)
    missing = tmp_path / "deleted_model"
    base.info.update(source=str(missing), loaded_from=str(missing))  # ranks reload from here
    # Both ranks fail; whichever reports first, the launcher stops the other (maybe before
    # it writes its own error), so either rank may be the one named.
    with pytest.raises(RuntimeError, match=r"rank [01] of 2: OSError: Could not load model"):
        finetune(base, pairs, num_processes=2, **RUN)


def test_accumulation_that_does_not_split_is_rejected_before_launch(tiny_bundle, pairs):
    with pytest.raises(ValueError, match="gradient_accumulation_steps=7 must be a multiple"):
        finetune(tiny_bundle, pairs, num_processes=2, **{**RUN, "gradient_accumulation_steps": 7})


LORA_ADAPTER = {"strategy": "lora", "lora": {"r": 4, "alpha": 8, "dropout": 0.0, "save": "adapter"}}


def test_an_adapter_on_a_base_only_in_memory_is_refused_before_launch(tiny_bundle, pairs):
    in_memory = finetune(tiny_bundle, pairs.iloc[:1], **{**RUN, "num_epochs": 1})
    with pytest.raises(ValueError, match="exist only in memory"):
        finetune(in_memory, pairs, **LORA_ADAPTER, **RUN)
    with pytest.raises(ValueError, match="exist only in memory"):
        finetune(in_memory, pairs, num_processes=2, **LORA_ADAPTER, **RUN)


def test_two_processes_return_the_adapter_one_process_returns(pairs, tmp_path):
    from ilf_kedro.models import load_bundle, save_bundle

    base = load_model("tiny-random", device="cpu", seed=0)
    one = finetune(base, pairs, **LORA_ADAPTER, **RUN)
    two = finetune(base, pairs, num_processes=2, **LORA_ADAPTER, **RUN)
    assert type(two.model) is type(one.model)  # a PEFT model, not merged weights
    assert two.info["adapter_base"] == one.info["adapter_base"]
    assert two.info["adapter_base"]["spec"] == "tiny-random"
    save_bundle(two, tmp_path / "adapter")  # loads again once the launch directory is gone
    again = load_bundle(tmp_path / "adapter", device="cpu")
    prompt = torch.tensor([[1, 2, 3]])
    torch.testing.assert_close(again.model(prompt).logits, two.model(prompt).logits)

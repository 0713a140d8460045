"""The world's base model trained from scratch: its schedule and final loss, and how a
model that exists only in memory is handed on."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from ilf_kedro.models.io import base_reference
from ilf_kedro.models.server_sampling import servable_directory
from ilf_kedro.world.pretrain import pretrain

ONE = pd.DataFrame({"prompt": ["# add two numbers\n"], "completion": ["def add(a, b):\n    ..."]})
# No dropout, so the loss a step reports is the loss of the weights it starts from.
TINY = {"n_layer": 1, "resid_pdrop": 0.0, "embd_pdrop": 0.0, "attn_pdrop": 0.0}
RUN = {"learning_rate": 1e-2, "batch_size": 1, "seed": 0, "threads": 1}


def _loss(bundle, corpus: pd.DataFrame) -> float:
    """The pretraining loss of ``bundle`` on the one example of ``corpus`` (program only)."""
    tokenizer = bundle.tokenizer
    head = tokenizer(corpus["prompt"][0])["input_ids"]
    ids = head + tokenizer(corpus["completion"][0])["input_ids"] + [tokenizer.eos_token_id]
    labels = [-100] * len(head) + ids[len(head) :]
    with torch.no_grad():
        return bundle.model(
            input_ids=torch.tensor([ids]), labels=torch.tensor([labels])
        ).loss.item()


def test_the_final_loss_is_the_last_epochs_and_one_step_trains():
    """One example, one step per epoch. A one-step run is all warm-up (its schedule must
    not divide by the steps left after it), and its one update is the first update of a
    two-epoch run (the same full learning rate): so the two-epoch run's final loss, its
    second epoch's, is the loss of the one-step run's weights, not a mean over epochs."""
    one = pretrain(ONE, TINY, epochs=1, **RUN)
    two = pretrain(ONE, TINY, epochs=2, **RUN)
    assert one.info["pretrain_final_loss"] != pytest.approx(two.info["pretrain_final_loss"])
    assert two.info["pretrain_final_loss"] == pytest.approx(_loss(one, ONE), rel=1e-5)


def test_a_world_model_in_memory_names_no_model_id(tmp_path):
    """Its weights load from nowhere: an adapter or ranks cannot refer to it, a server
    gets a saved copy."""
    world = pretrain(ONE, TINY, epochs=1, **RUN)
    with pytest.raises(ValueError, match="exist only in memory"):
        base_reference(world)
    served = servable_directory(world, tmp_path)
    assert (tmp_path / "model").is_dir() and served == str(tmp_path / "model")

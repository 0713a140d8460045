"""The fine-tune as a Ray Train ``TorchTrainer``: 2 workers on the 2-node loopback cluster
(gloo) reproduce the one-process loss curve, within the accelerate path's tolerance."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ilf_kedro.compute.ray_train import RayTrain
from ilf_kedro.models import finetune, load_model
from tests.models.test_distributed import LOSS_RTOL, RUN


@pytest.fixture(scope="module")
def pairs():
    import pandas as pd

    from tests.models.conftest import ROUND_TRIP

    rows = pd.concat([ROUND_TRIP, ROUND_TRIP, ROUND_TRIP.iloc[:2]], ignore_index=True)
    return rows[["prompt", "completion"]]


@pytest.mark.parametrize("strategy", ["full", "lora"])
def test_two_ray_workers_give_the_loss_curve_of_one_process(ray_cluster, pairs, strategy):
    base = load_model("tiny-random", device="cpu", seed=0)
    run = {**RUN, "strategy": strategy}
    if strategy == "lora":
        # Dropout draws differ between one process and two (each rank has its own
        # stream), as on the accelerate path: off, so only the reduction order differs.
        run["lora"] = {"r": 4, "dropout": 0.0, "save": "merged"}
    one = finetune(base, pairs, **run)
    compute = {"backend": "ray", "address": ray_cluster.address}
    two = finetune(base, pairs, launcher=RayTrain(compute), **run)
    np.testing.assert_allclose(two.info["loss_curve"], one.info["loss_curve"], rtol=LOSS_RTOL)
    assert two.info["loss_curve"][-1] < two.info["loss_curve"][0]  # it did learn
    for name, weight in one.model.state_dict().items():
        torch.testing.assert_close(two.model.state_dict()[name], weight, rtol=1e-4, atol=1e-5)
    assert two.info["finetune"]["ray_workers"] == 2
    assert two.info["training_examples"] == 8
    assert ray_cluster.node_ids() <= ray_cluster.actor_nodes("RayTrainWorker")


def test_accumulation_that_does_not_split_over_workers_is_rejected(pairs):
    base = load_model("tiny-random", device="cpu", seed=0)
    compute = {"backend": "ray", "address": "ray://nowhere:1"}
    with pytest.raises(ValueError, match="must be a multiple of compute.finetune.num_workers=2"):
        finetune(
            base, pairs, launcher=RayTrain(compute), **{**RUN, "gradient_accumulation_steps": 7}
        )


def test_ray_workers_return_the_adapter_one_process_returns(ray_cluster, pairs, tmp_path):
    """An adapter names the caller's base (here a directory, which the workers get packed
    into the job) and comes back a PEFT model, as from one process."""
    from ilf_kedro.models import load_bundle, save_bundle
    from tests.models.test_distributed import LORA_ADAPTER

    save_bundle(load_model("tiny-random", device="cpu", seed=0), tmp_path / "base")
    base = load_bundle(tmp_path / "base", device="cpu")
    one = finetune(base, pairs, **LORA_ADAPTER, **RUN)
    compute = {"backend": "ray", "address": ray_cluster.address}
    two = finetune(base, pairs, launcher=RayTrain(compute), **LORA_ADAPTER, **RUN)
    assert type(two.model) is type(one.model)  # a PEFT model, not merged weights
    assert two.info["adapter_base"] == one.info["adapter_base"] == {"spec": str(tmp_path / "base")}
    prompt = torch.tensor([[1, 2, 3]])
    torch.testing.assert_close(
        two.model(prompt).logits, one.model(prompt).logits, atol=1e-4, rtol=1e-4
    )

"""The fine-tune described once (``FinetuneJob``) and its launchers' shared decisions:
how ``finetune.distributed: auto`` is decided, what a trained model records, and that a
base model's configuration is left as it was."""

from __future__ import annotations

import pandas as pd
import pytest

from ilf_kedro.compute.ray_train import RayTrain
from ilf_kedro.models.distributed import Accelerate
from ilf_kedro.models.finetune_job import FinetuneJob, plan_ranks
from ilf_kedro.models.io import base_reference
from ilf_kedro.models.memory_plan import model_shape, resolve_distributed
from ilf_kedro.parameters import Compute, Finetune, section
from ilf_kedro.pipelines.stage_nodes import train_model
from tests.models.conftest import ROUND_TRIP

# Activations weigh enough against the tiny model's weights that checkpointing decides.
LONG = {"strategy": "full", "max_seq_length": 2048, "per_device_batch_size": 8}


def _threshold(shape, settings: Finetune, dtype) -> float:
    """The smallest device (GiB) on which the memory plan keeps ``settings`` on DDP."""
    low, high = 0.0, 1024.0
    for _ in range(60):
        middle = (low + high) / 2
        if resolve_distributed(shape, settings, middle, on_cuda=True, dtype=dtype) == "ddp":
            high = middle
        else:
            low = middle
    return high


def test_the_job_is_frozen_and_travels_as_json_unchanged(tiny_bundle):
    job = FinetuneJob.build(tiny_bundle, Finetune(strategy="lora"), output_dir=None)
    assert FinetuneJob.model_validate_json(job.model_dump_json()) == job
    with pytest.raises(ValueError, match="frozen"):
        job.dtype = "bfloat16"
    assert job.base == base_reference(tiny_bundle)  # how ranks load the base again


def test_auto_is_decided_on_the_whole_section_as_the_memory_plan_decides(tiny_bundle):
    """Without checkpointing, the plan needs more memory per device: on a device between
    the two needs, ``auto`` is FSDP without checkpointing and DDP with it."""
    shape = model_shape(tiny_bundle.model.config)
    dtype = next(tiny_bundle.model.parameters()).dtype
    without = Finetune(**LONG, gradient_checkpointing=False, num_processes=2)
    with_checkpointing = Finetune(**LONG, gradient_checkpointing=True, num_processes=2)
    low = _threshold(shape, with_checkpointing, dtype)
    high = _threshold(shape, without, dtype)
    assert low < high
    device_gib = (low + high) / 2
    for settings, expected in ((without, "fsdp"), (with_checkpointing, "ddp")):
        job = FinetuneJob.build(tiny_bundle, settings.model_copy(update={"num_processes": 1}))
        ranks = plan_ranks(job, tiny_bundle, 2, "cuda", parameter="p", device_gib=device_gib)
        assert ranks.distributed == expected
        assert expected == resolve_distributed(shape, settings, device_gib, dtype=dtype)


@pytest.mark.parametrize("device_gib", [0.01, 1000.0])
def test_ray_train_decides_auto_as_accelerate_does(tiny_bundle, device_gib):
    """GPU workers: the memory plan decides (FSDP on a device too small for one rank's
    whole training state), as for ``accelerate`` ranks on CUDA."""
    job = FinetuneJob.build(tiny_bundle, Finetune(**LONG, gradient_accumulation_steps=2))
    compute = Compute.model_validate({"finetune": {"num_workers": 2, "gpus_per_worker": 1}})
    on_ray = RayTrain(compute).ranks(job, tiny_bundle, device_gib=device_gib)
    by_plan = plan_ranks(job, tiny_bundle, 2, "cuda", parameter="p", device_gib=device_gib)
    assert on_ray.distributed == by_plan.distributed == ("fsdp" if device_gib < 1 else "ddp")
    assert on_ray.record == {"distributed": on_ray.distributed, "ray_workers": 2}
    # On CPU (no GPU workers, a CPU bundle) both launchers train with DDP.
    cpu = Compute.model_validate({"finetune": {"num_workers": 2}})
    assert RayTrain(cpu).ranks(job, tiny_bundle, device_gib).distributed == "ddp"
    assert Accelerate(2).ranks(job, tiny_bundle, device_gib).distributed == "ddp"


def test_lora_under_fsdp_is_refused_by_every_launcher(tiny_bundle):
    job = FinetuneJob.build(tiny_bundle, Finetune(**{**LONG, "strategy": "lora"}))
    compute = Compute.model_validate({"finetune": {"num_workers": 2, "gpus_per_worker": 1}})
    with pytest.raises(ValueError, match="strategy=lora trains with ddp"):
        RayTrain(compute).ranks(job, tiny_bundle, device_gib=0.01)


def test_the_schedule_and_weight_decay_are_parameters_the_model_records(tiny_bundle):
    settings = Finetune(
        lr_scheduler_type="cosine",
        warmup_steps=1,
        weight_decay=0.1,
        num_epochs=1,
        gradient_accumulation_steps=1,
        max_seq_length=64,
    )
    trained = train_model(tiny_bundle, ROUND_TRIP[["prompt", "completion"]], settings, Compute())
    recorded = trained.info["finetune"]
    assert (recorded["lr_scheduler_type"], recorded["warmup_steps"]) == ("cosine", 1)
    assert recorded["weight_decay"] == 0.1
    with pytest.raises(ValueError, match="parameter finetune.lr_scheduler_type is 'sometimes'"):
        section(Finetune, {"lr_scheduler_type": "sometimes"}, "finetune")


def test_a_base_model_keeps_its_cache_setting(tiny_bundle):
    """LoRA trains on the base model in place; its ``use_cache`` comes back as it was."""
    config = tiny_bundle.model.config
    config.use_cache = False
    try:
        pairs = pd.concat([ROUND_TRIP] * 2)[["prompt", "completion"]]
        trained = train_model(
            tiny_bundle,
            pairs,
            Finetune(strategy="lora", num_epochs=1, gradient_accumulation_steps=1),
            Compute(),
        )
        assert config.use_cache is False
        assert trained.model.config.use_cache is False
    finally:
        config.use_cache = True


def test_grouping_by_length_pads_less_than_random_batches(tiny_bundle):
    """``finetune.train_sampling_strategy: group_by_length`` reaches the Trainer: the
    model sees batches of similar length, so fewer padded positions than in random
    batches of the same examples."""
    pairs = pd.DataFrame(
        {
            "prompt": [f"# {i}\n" for i in range(64)],
            "completion": ["x = 1\n" if i % 2 else "x = 1\n" * 12 for i in range(64)],
        }
    )

    def padded_positions(strategy: str) -> int:
        widths = []
        hook = tiny_bundle.model.register_forward_pre_hook(
            lambda _module, args, kwargs: widths.append(kwargs["attention_mask"].numel()),
            with_kwargs=True,
        )
        settings = Finetune(
            train_sampling_strategy=strategy,
            num_epochs=1,
            per_device_batch_size=4,
            gradient_accumulation_steps=1,
            max_seq_length=256,
            strategy="lora",
        )
        try:
            trained = train_model(tiny_bundle, pairs, settings, Compute())
        finally:
            hook.remove()
        assert trained.info["finetune"]["train_sampling_strategy"] == strategy
        return sum(widths)

    assert padded_positions("group_by_length") < padded_positions("random")

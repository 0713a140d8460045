import pytest
import transformers

from ilf_kedro.models.memory_plan import (
    GIB,
    KNOWN_CONFIGS,
    MemoryPlanError,
    finetune_memory,
    load_config,
    model_shape,
    paper_table,
    plan_run,
    sampling_memory,
)
from tests.kedro_project import catalog_path, copy_project, load, run_pipeline

PAPER_SAMPLING = {"batch_size": 30, "max_new_tokens": 512}
PAPER_FINETUNE = {"per_device_batch_size": 1, "max_seq_length": 1024, "strategy": "full"}


def _codegen(spec):
    known = {k: v for k, v in KNOWN_CONFIGS[spec].items() if k != "model_type"}
    return transformers.CodeGenConfig(**known)


def test_parameter_count_from_the_config_matches_codegen_arithmetic():
    config = _codegen("Salesforce/codegen-6B-mono")
    h, layers, vocab = config.n_embd, config.n_layer, config.vocab_size
    # Per layer: ln_1, qkv (no bias), out_proj (no bias), fc_in, fc_out; then wte, ln_f and
    # an untied lm_head with bias.
    per_layer = 2 * h + 3 * h * h + h * h + (4 * h * h + 4 * h) + (4 * h * h + h)
    expected = layers * per_layer + vocab * h + 2 * h + vocab * h + vocab
    shape = model_shape(config)
    assert shape.n_params == expected
    assert shape.largest_block_params == per_layer


@pytest.mark.parametrize("kernel", ["eager", "sdpa"])
def test_attention_scores_are_planned_for_the_kernel_the_config_selects(kernel):
    known = {k: v for k, v in KNOWN_CONFIGS["Salesforce/codegen-350M-mono"].items()}
    known.pop("model_type")
    config = transformers.CodeGenConfig(**known, attn_implementation=kernel)
    shape = model_shape(config)
    parts = sampling_memory(
        shape, batch_size=2, max_new_tokens=8, max_prompt_tokens=16, dtype="float32"
    )
    # Eager attention materialises one layer's float32 scores; fused kernels do not.
    expected = 2 * shape.n_head * 16 * 16 * 4 if kernel == "eager" else 0
    assert shape.eager_attention is (kernel == "eager")
    assert parts["attention_scores"] == expected


def test_plan_follows_the_kernel_the_loader_gives_the_model(tiny_bundle):
    # Whatever the installed transformers selects by default, the plan and the loaded
    # model agree on it.
    planned = model_shape(load_config("tiny-random")).eager_attention
    assert planned is (tiny_bundle.model.config._attn_implementation == "eager")


def test_lora_parameter_count_matches_peft(tiny_bundle):
    import copy

    from peft import LoraConfig, get_peft_model

    shape = model_shape(load_config("tiny-random"))
    assert shape.n_params == sum(p.numel() for p in tiny_bundle.model.parameters())
    for targets in ("all-linear", ["qkv_proj", "fc_out"]):
        peft_model = get_peft_model(
            copy.deepcopy(tiny_bundle.model), LoraConfig(r=4, target_modules=targets)
        )
        trainable, _ = peft_model.get_nb_trainable_parameters()
        assert shape.lora_params(4, targets) == trainable


def test_full_finetune_state_is_sixteen_bytes_per_parameter_and_fsdp_shards_it():
    shape = model_shape(_codegen("Salesforce/codegen-2B-mono"))
    one = finetune_memory(shape, bf16=False, gradient_checkpointing=True)
    state = one["weights"] + one["gradients"] + one["optimizer"]
    assert state == 16 * shape.n_params
    four = finetune_memory(
        shape, bf16=False, gradient_checkpointing=True, num_processes=4, distributed="fsdp"
    )
    assert four["weights"] + four["gradients"] + four["optimizer"] == state / 4
    lora = finetune_memory(shape, strategy="lora", dtype="bfloat16", lora={"r": 8})
    assert lora["weights"] == 2 * shape.n_params  # frozen, in the inference dtype
    assert lora["optimizer"] == 2 * 4 * shape.lora_params(8)


def test_paper_full_finetune_of_6b_on_80gb_stops_with_numbers_and_fitting_settings():
    with pytest.raises(MemoryPlanError) as caught:
        plan_run(
            "Salesforce/codegen-6B-mono",
            {"device": "cuda"},
            PAPER_SAMPLING,
            PAPER_FINETUNE,
            {"device_memory_gib": 80},
        ).check()
    message = str(caught.value)
    assert "finetune (full, 1 process" in message
    assert "of 80.0 GiB" in message
    assert "finetune.num_processes=2 (fsdp)" in message
    assert "finetune.strategy=lora" in message
    assert "sampling (" not in message  # sampling fits 80 GB


def test_sampling_that_does_not_fit_suggests_a_smaller_batch():
    plan = plan_run(
        "Salesforce/codegen-6B-mono",
        {"device": "cuda"},
        {"batch_size": 120, "max_new_tokens": 512},
        {**PAPER_FINETUNE, "strategy": "lora"},
        {"device_memory_gib": 48},
    )
    sampling = plan.to_frame().set_index("stage").loc["sampling"]
    assert not sampling["fits"]
    assert sampling["need_gib"] > 48
    assert "sampling.batch_size=" in sampling["would_fit"]
    suggested = int(sampling["would_fit"].split("=")[1].split(" ")[0])
    smaller = plan_run(
        "Salesforce/codegen-6B-mono",
        {"device": "cuda"},
        {"batch_size": suggested, "max_new_tokens": 512},
        {**PAPER_FINETUNE, "strategy": "lora"},
        {"device_memory_gib": 48},
    )
    smaller.check()  # the suggestion does fit


def test_unknown_plan_parameter_is_named():
    with pytest.raises(ValueError, match="device_gb"):
        plan_run("tiny-random", {"device": "cpu"}, {}, {}, {"device_gb": 8})


def test_readme_table_covers_the_three_models_and_four_devices():
    table = paper_table()
    assert set(table["model"]) == {"codegen-350M-mono", "codegen-2B-mono", "codegen-6B-mono"}
    assert [c for c in table.columns if c.endswith(" GB")] == ["24 GB", "48 GB", "80 GB", "141 GB"]
    six = table[table["model"] == "codegen-6B-mono"].set_index("setting")
    full = six.loc[six.index.str.startswith("full, 1 process")].iloc[0]
    assert full["GiB per device"] > 16 * 7.06e9 / GIB  # state alone, before activations
    assert (full["80 GB"], full["141 GB"]) == ("no", "yes")


@pytest.mark.slow
def test_kedro_run_stops_at_the_plan_before_the_base_model_loads(tmp_path):
    project = copy_project(tmp_path / "project")
    with pytest.raises(MemoryPlanError, match="settings that would fit"):
        run_pipeline(project, "model_loading", params={"memory_plan": {"device_memory_gib": 0.001}})
    assert not catalog_path(project, "memory_plan").exists()

    outputs = run_pipeline(project, "model_loading")
    plan = load(project, "memory_plan")
    assert list(plan["stage"]) == ["sampling", "finetune"]
    assert plan["fits"].all()
    assert "base_model" in outputs

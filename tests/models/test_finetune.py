import logging

import pandas as pd
import pytest
import torch

from ilf_kedro.datasets.hf_model import HFModelDataset
from ilf_kedro.execution import evaluate_programs
from ilf_kedro.models import IGNORE_INDEX, encode_example, finetune, load_model, sample_programs
from ilf_kedro.models.trainer import right_padding_collator

PROMPT = '"""\nWrite a function to add two numbers.\n"""\n\ndef add(a, b):\n'
COMPLETION = "    return a + b\n"


def _ids(tok, text, special=False):
    return tok(text, add_special_tokens=special)["input_ids"]


def test_loss_mask_prompt_ignored_completion_and_eos_present(tiny_bundle):
    tok = tiny_bundle.tokenizer
    ex = encode_example(tok, PROMPT, COMPLETION, max_seq_length=1024)
    prompt_ids, completion_ids = _ids(tok, PROMPT, special=True), _ids(tok, COMPLETION)
    n_prompt = len(prompt_ids)
    assert ex["input_ids"] == prompt_ids + completion_ids + [tok.eos_token_id]
    assert len(ex["labels"]) == len(ex["input_ids"]) == len(ex["attention_mask"])
    assert ex["labels"][:n_prompt] == [IGNORE_INDEX] * n_prompt
    assert ex["labels"][n_prompt:] == completion_ids + [tok.eos_token_id]
    assert IGNORE_INDEX not in ex["labels"][n_prompt:]
    assert ex["attention_mask"] == [1] * len(ex["input_ids"])


def test_truncation_cuts_the_start_of_the_prompt_only(tiny_bundle):
    tok = tiny_bundle.tokenizer
    prompt_ids, completion_ids = _ids(tok, PROMPT, special=True), _ids(tok, COMPLETION)
    limit = len(completion_ids) + 1 + 5  # room for 5 prompt tokens
    ex = encode_example(tok, PROMPT, COMPLETION, max_seq_length=limit)
    assert len(ex["input_ids"]) == limit
    assert ex["input_ids"][:5] == prompt_ids[-5:]  # the END of the prompt is kept
    assert ex["labels"][:5] == [IGNORE_INDEX] * 5
    assert ex["labels"][5:] == completion_ids + [tok.eos_token_id]


def test_target_longer_than_limit_keeps_its_start(tiny_bundle):
    tok = tiny_bundle.tokenizer
    completion_ids = _ids(tok, COMPLETION)
    ex = encode_example(tok, PROMPT, COMPLETION, max_seq_length=3)
    assert ex["input_ids"] == completion_ids[:3]
    assert ex["labels"] == completion_ids[:3]


def test_collator_pads_right_with_ignored_labels(tiny_bundle):
    tok = tiny_bundle.tokenizer
    assert tok.padding_side == "left"  # as sampling needs it
    pad = tok.pad_token_id
    batch = right_padding_collator(tok)(
        [
            {"input_ids": [1, 2, 3], "labels": [-100, 2, 3], "attention_mask": [1, 1, 1]},
            {"input_ids": [4], "labels": [4], "attention_mask": [1]},
        ]
    )
    assert batch["input_ids"].tolist() == [[1, 2, 3], [4, pad, pad]]
    assert batch["labels"].tolist() == [[-100, 2, 3], [4, -100, -100]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
    assert all(t.dtype == torch.long for t in batch.values())
    assert tok.padding_side == "left"  # the bundle's tokenizer is left as it was


def test_collated_batches_give_the_loss_masks_of_the_examples(tiny_bundle):
    tok = tiny_bundle.tokenizer
    examples = [encode_example(tok, PROMPT, c, 1024) for c in (COMPLETION, "    pass\n")]
    batch = right_padding_collator(tok)(examples)
    for row, example in enumerate(examples):
        n = len(example["input_ids"])
        assert batch["labels"][row, :n].tolist() == example["labels"]
        assert (batch["labels"][row, n:] == IGNORE_INDEX).all()
        assert batch["attention_mask"][row].sum() == n


def test_empty_training_set_returns_the_base_model_marked_untrained(tiny_bundle, caplog):
    empty = pd.DataFrame({"prompt": pd.Series([], dtype=str), "completion": []})
    with caplog.at_level(logging.WARNING, logger="ilf_kedro.models"):
        out = finetune(tiny_bundle, empty)
    assert out.model is tiny_bundle.model
    assert out.info["training_examples"] == 0
    assert "empty" in out.info["untrained_reason"]
    assert "untrained_reason" not in tiny_bundle.info
    assert "NOT fine-tuning" in caplog.text


def test_missing_columns_are_rejected(tiny_bundle):
    with pytest.raises(ValueError, match="completion"):
        finetune(tiny_bundle, pd.DataFrame({"prompt": ["x"]}))


def test_paper_hyperparameters_run_and_leave_the_base_model_untouched(tiny_bundle):
    before = {k: v.clone() for k, v in tiny_bundle.model.state_dict().items()}
    pairs = pd.DataFrame({"prompt": [PROMPT, PROMPT], "completion": [COMPLETION, "    pass\n"]})
    out = finetune(tiny_bundle, pairs, progress=False)  # lr 5e-6, 1 x 32, 2 epochs, 1024
    assert out.info["training_examples"] == 2
    assert out.info["train_steps"] == 2  # one (partial) accumulation step per epoch
    assert out.info["finetune"]["learning_rate"] == 5e-6
    assert out.model is not tiny_bundle.model
    assert not out.model.training
    after = tiny_bundle.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    changed = any(
        not torch.equal(before[k], v) for k, v in out.model.state_dict().items() if k in before
    )
    assert changed


def test_round_trip_learns_pairs_then_samples_them_back(round_trip_pairs, tmp_path):
    """Fine-tune -> save (HFModelDataset) -> load -> greedy sampling reproduces the targets,
    and the programs pass their tests: formatting, masking, saving, loading, sampling."""
    base = load_model("tiny-random", device="cpu", seed=0)
    trained = finetune(
        base,
        round_trip_pairs[["prompt", "completion"]],
        learning_rate=3e-3,
        per_device_batch_size=3,
        gradient_accumulation_steps=1,
        num_epochs=100,
        seed=0,
        progress=False,
    )
    assert trained.info["training_examples"] == 3
    assert trained.info["train_loss"] < 2.0

    dataset = HFModelDataset(filepath=str(tmp_path / "ilf_model"), load_args={"device": "cpu"})
    dataset.save(trained)
    loaded = dataset.load()
    assert loaded.info["training_examples"] == 3 and loaded.info["random_weights"] is True

    samples = sample_programs(
        loaded,
        round_trip_pairs[["task_id", "prompt"]],
        num_samples=2,
        temperature=0,
        max_new_tokens=64,
        batch_size=4,
        progress=False,
    )
    expected = round_trip_pairs["completion"].repeat(2).tolist()
    assert samples["completion"].tolist() == expected
    assert (samples["finish_reason"] == "eos").all()

    tasks = round_trip_pairs[["task_id", "tests"]].assign(test_setup_code="")
    verdicts = evaluate_programs(samples, tasks, progress=False, workers=2)
    assert verdicts["passed"].all(), verdicts.to_dict("records")


def _lora_pairs():
    return pd.DataFrame(
        {"prompt": [PROMPT, PROMPT], "completion": [COMPLETION, "    return a - b\n"]}
    )


LORA_RUN = {
    "strategy": "lora",
    "learning_rate": 1e-2,
    "gradient_accumulation_steps": 1,
    "num_epochs": 2,
    "progress": False,
}


def test_lora_trains_an_adapter_and_gives_the_base_model_back_unchanged():
    base = load_model("tiny-random", device="cpu", seed=0)
    before = {k: v.clone() for k, v in base.model.state_dict().items()}
    modules_before = [name for name, _ in base.model.named_modules()]
    trained = finetune(
        base,
        _lora_pairs(),
        lora={"r": 4, "alpha": 8, "dropout": 0.0, "target_modules": ["qkv_proj"]},
        **LORA_RUN,
    )
    # The base model: same weights, no LoRA layers left, trainable flags as they were.
    assert [name for name, _ in base.model.named_modules()] == modules_before
    assert all(torch.equal(before[k], v) for k, v in base.model.state_dict().items())
    assert all(p.requires_grad for p in base.model.parameters())
    # The merged result: only the targeted projections changed.
    after = trained.model.state_dict()
    assert set(after) == set(before)
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all("qkv_proj" in k for k in changed)
    assert trained.info["finetune"]["strategy"] == "lora"
    assert trained.info["finetune"]["lora"]["r"] == 4
    assert len(trained.info["loss_curve"]) == trained.info["train_steps"] == 4  # 2 x 2 epochs


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"strategy": "qlora"}, "finetune.strategy"),
        ({"strategy": "lora", "lora": {"rank": 8}}, "finetune.lora"),
        ({"strategy": "lora", "lora": {"save": "both"}}, "finetune.lora.save"),
        ({"num_processes": 0}, "finetune.num_processes"),
        ({"num_processes": 2, "distributed": "deepspeed"}, "finetune.distributed"),
    ],
)
def test_bad_strategy_parameters_are_named_before_training(tiny_bundle, params, named):
    with pytest.raises(ValueError, match=named.replace(".", r"\.")):
        finetune(tiny_bundle, _lora_pairs(), **params)


def test_one_module_name_means_the_same_modules_to_the_plan_and_to_training(tiny_bundle):
    """A single string in finetune.lora.target_modules is a module-name suffix for both
    the memory plan and PEFT (PEFT alone would read it as a full-name regex)."""
    import copy

    from peft import get_peft_model

    from ilf_kedro.models.memory_plan import load_config, model_shape
    from ilf_kedro.models.trainer import lora_config

    settings = {"r": 4, "alpha": 8, "dropout": 0.0, "target_modules": "qkv_proj"}
    peft_model = get_peft_model(copy.deepcopy(tiny_bundle.model), lora_config(settings))
    trainable, _ = peft_model.get_nb_trainable_parameters()
    assert trainable == model_shape(load_config("tiny-random")).lora_params(4, "qkv_proj") > 0
    base = load_model("tiny-random", device="cpu", seed=0)
    before = {k: v.clone() for k, v in base.model.state_dict().items()}
    trained = finetune(base, _lora_pairs(), lora=settings, **LORA_RUN)
    changed = {k for k, v in trained.model.state_dict().items() if not torch.equal(before[k], v)}
    assert changed and all("qkv_proj" in k for k in changed)

import logging

import pytest
import torch

from ilf_kedro.models import (
    ModelBundle,
    load_model,
    resolve_device,
    resolve_dtype,
    truncate_to_tokens,
)
from ilf_kedro.models.tiny import build_tiny_tokenizer


def test_tiny_random_bundle_records_what_it_is(caplog):
    with caplog.at_level(logging.WARNING, logger="ilf_kedro.models"):
        bundle = load_model("tiny-random", device="cpu")
    assert isinstance(bundle, ModelBundle)
    assert bundle.info["source"] == "tiny-random"
    assert bundle.info["random_weights"] is True
    assert bundle.info["device"] == "cpu"
    assert bundle.info["dtype"] == "float32"
    assert bundle.info["tiny_config"]["architecture"] == "codegen"
    assert type(bundle.model).__name__ == "CodeGenForCausalLM"
    assert not bundle.model.training
    assert "RANDOM, UNTRAINED" in caplog.text


def test_tiny_config_and_seed_control_the_weights():
    a = load_model("tiny-random", seed=0, tiny_config={"n_layer": 1, "n_embd": 32})
    b = load_model("tiny-random", seed=0, tiny_config={"n_layer": 1, "n_embd": 32})
    c = load_model("tiny-random", seed=1, tiny_config={"n_layer": 1, "n_embd": 32})
    assert a.model.config.n_layer == 1 and a.model.config.n_embd == 32
    pairs = zip(a.model.state_dict().values(), b.model.state_dict().values(), strict=True)
    assert all(torch.equal(x, y) for x, y in pairs)
    assert not torch.equal(a.model.transformer.wte.weight, c.model.transformer.wte.weight)


def test_gpt2_architecture_and_dtype_override():
    bundle = load_model("tiny-random", dtype="bfloat16", tiny_config={"architecture": "gpt2"})
    assert type(bundle.model).__name__ == "GPT2LMHeadModel"
    assert next(bundle.model.parameters()).dtype == torch.bfloat16
    assert bundle.info["dtype"] == "bfloat16"


@pytest.mark.parametrize(
    "text",
    [
        "",
        'def f(x):\n    """Docstring."""\n\treturn x  +  1\n\n',
        "café ✓ 日本語 \x00 \r\n trailing   ",
        "<|endoftext|> looks special but is text here?",
    ],
)
def test_tiny_tokenizer_round_trips_any_text(text):
    tok = build_tiny_tokenizer()
    ids = tok(text, add_special_tokens=False)["input_ids"]
    if "<|endoftext|>" not in text:
        assert tok.decode(ids) == text
    assert tok.eos_token_id is not None and tok.pad_token_id is not None
    assert tok.eos_token_id != tok.pad_token_id


def test_tiny_tokenizer_is_deterministic():
    assert build_tiny_tokenizer().get_vocab() == build_tiny_tokenizer().get_vocab()


def test_hub_id_offline_fails_naming_the_spec(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(OSError, match="Salesforce/codegen-no-such-model"):
        load_model("Salesforce/codegen-no-such-model", device="cpu")


def test_missing_local_directory_fails_naming_it(tmp_path):
    with pytest.raises(OSError, match="not-there"):
        load_model(str(tmp_path / "not-there"), device="cpu")


def test_device_and_dtype_resolution():
    assert resolve_device("cpu") == "cpu"
    assert resolve_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_dtype("auto", "cpu") == torch.float32
    assert resolve_dtype("bf16") == torch.bfloat16
    assert resolve_dtype(torch.float16) == torch.float16
    with pytest.raises(ValueError, match="Unknown dtype"):
        resolve_dtype("int3")


def test_truncate_to_tokens(tiny_bundle):
    tok = tiny_bundle.tokenizer
    text = "def long_function(argument):\n    return [argument] * 100  # a comment\n"
    n = len(tok(text, add_special_tokens=False)["input_ids"])
    assert truncate_to_tokens(tok, text, n) == text
    head = truncate_to_tokens(tok, text, 5, side="right")
    tail = truncate_to_tokens(tok, text, 5, side="left")
    assert text.startswith(head) and len(head) < len(text)
    assert text.endswith(tail) and len(tail) < len(text)
    assert len(tok(head, add_special_tokens=False)["input_ids"]) == 5
    assert len(tok(tail, add_special_tokens=False)["input_ids"]) == 5
    assert truncate_to_tokens(tok, text, 0) == ""
    with pytest.raises(ValueError):
        truncate_to_tokens(tok, text, 5, side="middle")

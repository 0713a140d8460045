import json
import os

import pytest
import torch
from kedro.io import DataCatalog, DatasetError, Version

from ilf_kedro.datasets.hf_model import HFModelDataset
from ilf_kedro.models import INFO_FILENAME, ModelBundle, load_model

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="module")
def bundle():
    b = load_model("tiny-random", device="cpu", seed=3)
    b.info["training_examples"] = 0
    b.info["untrained_reason"] = "the training set is empty"
    return b


def _same_weights(a, b):
    sa, sb = a.model.state_dict(), b.model.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_save_load_round_trip(bundle, tmp_path):
    dataset = HFModelDataset(filepath=str(tmp_path / "refiner_model"), load_args={"device": "cpu"})
    assert not dataset.exists()
    dataset.save(bundle)
    assert dataset.exists()
    files = {p.name for p in (tmp_path / "refiner_model").iterdir()}
    assert {"config.json", "tokenizer.json", INFO_FILENAME} <= files
    assert [p.name for p in tmp_path.iterdir()] == ["refiner_model"]  # no temp leftovers

    loaded = dataset.load()
    assert _same_weights(bundle, loaded)
    assert loaded.info["random_weights"] is True
    assert loaded.info["source"] == "tiny-random"
    assert loaded.info["untrained_reason"] == "the training set is empty"
    assert loaded.info["device"] == "cpu"
    text = 'def f(x):\n    return "é"\n'
    assert loaded.tokenizer(text)["input_ids"] == bundle.tokenizer(text)["input_ids"]
    assert loaded.tokenizer.eos_token == bundle.tokenizer.eos_token
    assert loaded.tokenizer.pad_token == bundle.tokenizer.pad_token
    assert loaded.tokenizer.padding_side == "left"


def test_load_args_choose_dtype(bundle, tmp_path):
    HFModelDataset(filepath=str(tmp_path / "m")).save(bundle)
    loaded = HFModelDataset(filepath=str(tmp_path / "m"), load_args={"dtype": "bfloat16"}).load()
    assert next(loaded.model.parameters()).dtype == torch.bfloat16
    with pytest.raises(DatasetError, match="Unknown load_args"):
        HFModelDataset(filepath=str(tmp_path / "m"), load_args={"revision": "main"})


def test_versioned_saves_keep_every_version(bundle, tmp_path):
    path = str(tmp_path / "ilf_model")
    HFModelDataset(filepath=path, version=Version(None, "2024-01-01T00.00.00.000Z")).save(bundle)
    other = load_model("tiny-random", device="cpu", seed=4)
    HFModelDataset(filepath=path, version=Version(None, "2024-01-02T00.00.00.000Z")).save(other)

    latest = HFModelDataset(filepath=path, version=Version(None, None)).load()
    first = HFModelDataset(filepath=path, version=Version("2024-01-01T00.00.00.000Z", None)).load()
    assert _same_weights(latest, other)
    assert _same_weights(first, bundle)
    with pytest.raises(DatasetError, match="must not exist"):
        HFModelDataset(filepath=path, version=Version(None, "2024-01-01T00.00.00.000Z")).save(
            bundle
        )


def test_failed_save_leaves_nothing_half_written(bundle, tmp_path, monkeypatch):
    target = tmp_path / "model"

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(bundle.tokenizer, "save_pretrained", broken)
    with pytest.raises(DatasetError, match="disk full"):
        HFModelDataset(filepath=str(target)).save(bundle)
    assert list(tmp_path.iterdir()) == []


def test_failed_overwrite_keeps_the_previous_model(bundle, tmp_path, monkeypatch):
    target = tmp_path / "model"
    HFModelDataset(filepath=str(target)).save(bundle)
    before = json.loads((target / INFO_FILENAME).read_text())
    other = load_model("tiny-random", device="cpu", seed=5)
    monkeypatch.setattr(other.model, "save_pretrained", lambda *a, **k: 1 / 0)
    with pytest.raises(DatasetError):
        HFModelDataset(filepath=str(target)).save(other)
    assert json.loads((target / INFO_FILENAME).read_text()) == before
    assert [p.name for p in tmp_path.iterdir()] == ["model"]
    assert _same_weights(HFModelDataset(filepath=str(target)).load(), bundle)


def test_overwrite_replaces_the_directory(bundle, tmp_path):
    target = tmp_path / "model"
    HFModelDataset(filepath=str(target)).save(bundle)
    other = load_model("tiny-random", device="cpu", seed=6)
    HFModelDataset(filepath=str(target)).save(other)
    assert _same_weights(HFModelDataset(filepath=str(target)).load(), other)
    assert [p.name for p in tmp_path.iterdir()] == ["model"]


def test_rejects_other_data_and_remote_paths(tmp_path):
    with pytest.raises(DatasetError, match="ModelBundle"):
        HFModelDataset(filepath=str(tmp_path / "m")).save({"model": None})
    with pytest.raises(DatasetError, match="local paths only"):
        HFModelDataset(filepath="s3://bucket/model")


def test_catalog_entry_and_description(bundle, tmp_path):
    catalog = DataCatalog.from_config(
        {
            "ilf_model": {
                "type": "ilf_kedro.datasets.hf_model.HFModelDataset",
                "filepath": str(tmp_path / "ilf_model"),
                "versioned": True,
                "load_args": {"device": "cpu"},
            }
        }
    )
    catalog.save("ilf_model", bundle)
    assert isinstance(catalog.load("ilf_model"), ModelBundle)
    assert "ilf_model" in str(catalog["ilf_model"])


@pytest.mark.parametrize("save", ["adapter", "merged"])
def test_lora_model_round_trip_samples_the_same(tmp_path, save):
    import pandas as pd

    from ilf_kedro.models import finetune, sample_programs

    base = load_model("tiny-random", device="cpu", seed=0)
    prompt = '"""\nWrite a function to add two numbers.\n"""\n\ndef add(a, b):\n'
    pairs = pd.DataFrame({"prompt": [prompt] * 2, "completion": ["    return a + b\n"] * 2})
    trained = finetune(
        base,
        pairs,
        strategy="lora",
        lora={"r": 4, "alpha": 16, "dropout": 0.0, "save": save},
        learning_rate=1e-2,
        gradient_accumulation_steps=1,
        num_epochs=3,
        progress=False,
    )
    dataset = HFModelDataset(filepath=str(tmp_path / "ilf_model"), load_args={"device": "cpu"})
    dataset.save(trained)
    files = {p.name for p in (tmp_path / "ilf_model").iterdir()}
    if save == "adapter":
        assert {"adapter_config.json", "adapter_model.safetensors"} <= files
        assert "model.safetensors" not in files  # the base weights are referenced, not copied
        info = json.loads((tmp_path / "ilf_model" / INFO_FILENAME).read_text())
        reference = {"spec": "tiny-random", "tiny_config": base.info["tiny_config"], "seed": 0}
        assert info["adapter_base"] == reference
    else:
        assert "model.safetensors" in files and "adapter_config.json" not in files
    loaded = dataset.load()
    assert loaded.info["finetune"]["strategy"] == "lora"

    prompts = pd.DataFrame({"task_id": [1, 2], "prompt": [prompt, "def f(x):\n"]})
    greedy = {"num_samples": 1, "temperature": 0, "max_new_tokens": 24, "progress": False}
    in_memory = sample_programs(trained, prompts, **greedy)
    pd.testing.assert_frame_equal(sample_programs(loaded, prompts, **greedy), in_memory)
    untrained = sample_programs(base, prompts, **greedy)
    assert not in_memory["completion"].equals(untrained["completion"])  # the adapter acts

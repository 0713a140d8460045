"""The catalog: every dataset's folder follows its kedro-viz layer (conf/base/catalog.yml's
header gives the map), so where a file lives says what it is."""

from __future__ import annotations

import re

import pytest
import yaml

from tests.conftest import PROJECT_ROOT

FOLDER_OF_LAYER = {
    "raw": "01_raw",
    "intermediate": "02_intermediate",
    "primary": "03_primary",
    "zero_shot": "04_feature",
    "feedback": "04_feature",
    "refiner_input": "05_model_input",
    "model_input": "05_model_input",
    "refiner": "06_models",
    "models": "06_models",
    "refinements": "07_model_output",
    "model_output": "07_model_output",
    "reporting": "08_reporting",
}


def _filepath(entry: dict) -> str:
    inner = entry.get("dataset")
    inner_path = inner.get("filepath") if isinstance(inner, dict) else None
    return str(entry.get("filepath") or inner_path or "")


def _layered_files() -> list[tuple[str, str, str]]:
    """(entry, layer, data folder) of every catalog entry with both; in-memory datasets,
    remote sources and files under conf/ have no data folder."""
    found = []
    for path in sorted((PROJECT_ROOT / "conf").glob("*/catalog*.yml")):
        for name, entry in (yaml.safe_load(path.read_text()) or {}).items():
            if name.startswith("_") or not isinstance(entry, dict):
                continue
            layer = ((entry.get("metadata") or {}).get("kedro-viz") or {}).get("layer")
            folder = re.search(r"data/(0\d_[a-z_]+)/", _filepath(entry))
            if layer and folder:
                found.append((f"{path.parent.name}/{name}", layer, folder.group(1)))
    return found


LAYERED = _layered_files()


def test_the_catalog_has_layered_files():
    assert len(LAYERED) > 40


@pytest.mark.parametrize(("name", "layer", "folder"), LAYERED, ids=[n for n, _, _ in LAYERED])
def test_a_datasets_folder_follows_its_layer(name, layer, folder):
    assert folder == FOLDER_OF_LAYER[layer], (
        f"{name}: layer {layer} belongs in {FOLDER_OF_LAYER[layer]}"
    )

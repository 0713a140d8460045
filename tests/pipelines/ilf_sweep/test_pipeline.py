"""`kedro run --pipelines=ilf_sweep`: ILF and gold fine-tuning on shares of the annotations,
one namespace per share, put together in ``sample_efficiency``. A whole run is the world
benchmark's smoke test (tests/benchmarks)."""

from __future__ import annotations

import pandas as pd
import pytest

from ilf_kedro.parameters import ParameterError, Sweep, section
from ilf_kedro.pipelines.ilf_sweep import create_pipeline
from ilf_kedro.pipelines.ilf_sweep.nodes import (
    build_sample_efficiency,
    efficiency_point,
    take_annotation_share,
)


def test_each_share_trains_ilf_and_gold_on_the_same_share_of_annotated_tasks():
    nodes = {node.name: node for node in create_pipeline(shares=(0.25, 0.5)).nodes}
    for percent in (25, 50):
        share = nodes[f"sweep_{percent}.take_annotation_share"]
        assert share.inputs[:2] == ["annotations_to_refine", "ilf_training_set"]
        subset = f"sweep_{percent}.ilf_training_set_share"
        assert subset in share.outputs
        assert subset in nodes[f"sweep_{percent}.ilf.train_model"].inputs
        assert subset in nodes[f"sweep_{percent}.build_gold_training_set"].inputs
        gold = nodes[f"sweep_{percent}.gold.train_model"].inputs
        assert f"sweep_{percent}.gold_training_set_share" in gold and "base_model" in gold
    assert nodes["build_sample_efficiency"].inputs == [
        "zero_shot_metrics",
        "sweep_25_point",
        "sweep_50_point",
        "sweep_100_point",
    ]
    assert nodes["efficiency_point"].inputs == [
        "annotations_to_refine",
        "ilf_metrics",
        "gold_metrics",
    ]


def _annotations(task_ids):
    return pd.DataFrame({"task_id": task_ids, "feedback": [f"f{t}" for t in task_ids]})


def test_a_share_keeps_the_ilf_pairs_of_its_tasks_only_and_is_seeded():
    annotations = _annotations(range(1, 21))
    pairs = pd.DataFrame({"task_id": [2, 4, 6, 8], "prompt": "p", "completion": "c"})
    used, subset = take_annotation_share(annotations, pairs, 7, share=0.25)
    assert used["task_id"].nunique() == 5
    assert set(subset["task_id"]) == set(used["task_id"]) & {2, 4, 6, 8}
    again, _ = take_annotation_share(annotations, pairs, 7, share=0.25)
    assert again.equals(used)
    other, _ = take_annotation_share(annotations, pairs, 8, share=0.25)
    assert set(other["task_id"]) != set(used["task_id"])


def test_sample_efficiency_puts_zero_shot_first_and_counts_annotations():
    def metrics(method, value):
        return pd.DataFrame({"task_set": ["mbpp"], "method": [method], "pass@1": [value]})

    half = efficiency_point(
        _annotations([1, 2]), metrics("ILF", 0.6), metrics("MBPP gold", 0.5), share=0.5
    )
    full = efficiency_point(
        _annotations([1, 2, 3, 4]), metrics("ILF", 0.7), metrics("MBPP gold", 0.6), share=1.0
    )
    table = build_sample_efficiency(metrics("zero-shot", 0.4), half, full)
    assert table["share"].tolist() == [0.0, 0.5, 0.5, 1.0, 1.0]
    assert table["annotations"].tolist() == [0, 2, 2, 4, 4]
    assert table.loc[table["method"] == "ILF", "pass@1"].tolist() == [0.6, 0.7]


@pytest.mark.parametrize(
    ("shares", "message"),
    [
        ([0.5, 1.0], r"sweep.shares is \[0.5, 1.0\]: has \[1.0\]; allowed: shares strictly"),
        ([0.25, 0.251], r"repeat or reach 0 or 100; allowed: distinct shares"),
    ],
)
def test_bad_shares_are_refused_with_the_allowed_values(shares, message):
    with pytest.raises(ParameterError, match=message):
        section(Sweep, {"shares": shares, "seed": 0}, "sweep")


def test_shares_from_the_command_line_are_split_and_sorted():
    assert section(Sweep, {"shares": "0.5 0.1", "seed": 0}, "sweep").shares == [0.1, 0.5]

"""refinement: one modular template, reused for the ablations; few-shot prompts."""

import pandas as pd
import pytest

from ilf_kedro.ilf.training_sets import few_shot_prefix
from ilf_kedro.parameters import Refiner
from ilf_kedro.pipelines.refinement import (
    create_pipeline,
    few_shot_refiner,
    unrelated_feedback_ablation,
)
from ilf_kedro.pipelines.refinement.nodes import compare_feedback


def test_the_template_is_reused_in_namespaces():
    main = {node.name for node in create_pipeline().nodes}
    assert {"generate_refinements", "test_refinements", "build_ilf_training_set"} <= main
    shots = {node.name: node for node in few_shot_refiner("one_shot_refiner").nodes}
    generate = shots["one_shot_refiner.generate_refinements"]
    assert (
        "base_model" in generate.inputs and "params:ablations.one_shot_refiner" in generate.inputs
    )
    assert (
        "one_shot_refiner.training_set" in shots["one_shot_refiner.build_ilf_training_set"].outputs
    )
    ablation = {node.name for node in unrelated_feedback_ablation().nodes}
    assert {
        "unrelated_feedback.derange_feedback",
        "unrelated_feedback.generate_refinements",
        "unrelated_feedback.compare_feedback_with_unrelated_feedback",
    } <= ablation


def test_few_shot_examples_are_worked_figure_2_pairs_and_bounded_by_the_split():
    pairs = pd.DataFrame(
        {
            "task_id": [1, 2],
            "prompt": ["OLD CODE:\na\n", "OLD CODE:\nb\n"],
            "completion": ["x", "y"],
        }
    )
    prefix = few_shot_prefix(pairs, shots=2, seed=0)
    assert prefix == "OLD CODE:\na\nx\n\n\nOLD CODE:\nb\ny\n\n\n"
    with pytest.raises(ValueError, match="refiner.shots is 3 but the refine split has only 2"):
        few_shot_prefix(pairs, shots=3, seed=0)


def test_table_2_has_one_row_per_prompt_content():
    stats = pd.DataFrame([{"pass@1": 0.5, "pass@10": 0.9, "n_tasks": 4}])
    table = compare_feedback(stats, stats.assign(**{"pass@1": 0.1}), Refiner(kind="finetuned"))
    assert table["prompt_contents"].tolist() == ["code + feedback", "code + unrelated feedback"]
    assert table["pass@1"].tolist() == [0.5, 0.1]
    assert (table["refiner"] == "fine-tuned pi_Refine").all()

"""refiner_training: only passing refinements teach pi_Refine; a few-shot refiner trains
nothing."""

import pandas as pd

from ilf_kedro.models import load_model
from ilf_kedro.parameters import Compute, Finetune, Refiner
from ilf_kedro.pipelines.refiner_training import create_pipeline
from ilf_kedro.pipelines.refiner_training.nodes import select_refiner_examples, train_refiner


def test_structure():
    nodes = {node.name: node for node in create_pipeline().nodes}
    assert nodes["select_refiner_examples"].outputs == ["refiner_examples"]
    assert "params:refiner" in nodes["train_refiner_model"].inputs
    assert nodes["train_refiner_model"].outputs == ["refiner_model"]


def test_only_refinements_that_pass_are_examples():
    annotations = pd.DataFrame(
        {
            "task_id": [111, 112, 113, 311],
            "split": ["refine", "refine", "refine", "train"],
            "refinement_passed": [True, False, True, True],
        }
    )
    assert select_refiner_examples(annotations, "refine", None)["task_id"].tolist() == [111, 113]
    assert select_refiner_examples(annotations, "refine", 2)["task_id"].tolist() == [111]


def test_a_few_shot_refiner_is_the_base_model_untrained():
    base = load_model("tiny-random", device="cpu", tiny_config={"n_layer": 1})
    before = {k: v.clone() for k, v in base.model.state_dict().items()}
    pairs = pd.DataFrame({"task_id": [1], "prompt": ["a"], "completion": ["b"]})
    refiner = train_refiner(base, pairs, Finetune(), Refiner(kind="few_shot", shots=1), Compute())
    assert refiner.model is base.model
    assert all((before[k] == v).all() for k, v in refiner.model.state_dict().items())
    assert refiner.info["refiner"] == "1-shot base model"
    assert "few-shot" in refiner.info["untrained_reason"]

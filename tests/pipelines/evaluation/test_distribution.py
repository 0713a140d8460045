"""evaluation.distribution: built from evaluation's methods, only when configured."""

from __future__ import annotations

import pandas as pd
import pytest

from ilf_kedro.parameters import Distribution
from ilf_kedro.pipelines import evaluation
from ilf_kedro.pipelines.evaluation.distribution import score_candidates


def _scored(pipeline) -> set[str]:
    return {n.name for n in pipeline.nodes if n.name.endswith("score_candidates")}


def test_every_evaluated_method_is_scored_only_when_candidates_are_configured():
    plain = evaluation.create_pipeline()
    assert not _scored(plain) and "distribution_metrics" not in plain.all_outputs()
    measured = evaluation.create_pipeline(candidates="candidate_programs")
    methods = {n.namespace for n in measured.nodes if n.name.endswith("compute_pass_at_k")}
    assert _scored(measured) == {f"{m}.score_candidates" for m in methods}
    (combine,) = [n for n in measured.nodes if n.name == "compute_distribution_metrics"]
    # The base model's scores come first: it is the reference of both KLs.
    assert combine.inputs[1] == "zero_shot_candidate_scores"
    assert "candidate_programs" in measured.inputs()


def test_the_run_plan_refuses_a_candidates_dataset_the_catalog_lacks():
    from ilf_kedro.infra.project_parameters import load_parameters
    from ilf_kedro.parameters import Parameters
    from ilf_kedro.pipelines.run_plan import RunPlan

    params = Parameters(**load_parameters())
    assert RunPlan.from_parameters(params).candidates == "candidate_programs"
    with pytest.raises(ValueError, match="reporting.distribution.candidates"):
        RunPlan.from_parameters(params, catalog_entries={"mbpp_raw"})


def test_scores_carry_the_method_name_of_its_table_4_row():
    from ilf_kedro.models import load_model

    bundle = load_model("tiny-random", device="cpu", tiny_config={"n_layer": 1})
    pairs = pd.DataFrame(
        {
            "candidate": [0, 1],
            "task_id": [1, 1],
            "split": "test",
            "correct": [True, False],
            "prompt": "def f(x):\n",
            "completion": ["    return x\n", "    return -x\n"],
        }
    )
    scores = score_candidates(bundle, pairs, pd.DataFrame({"method": ["ILF"]}), Distribution())
    assert list(scores["method"]) == ["ILF", "ILF"]
    assert (scores["log_likelihood"] < 0).all() and scores["log_likelihood"].nunique() == 2

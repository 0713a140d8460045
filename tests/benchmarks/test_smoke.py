"""Every benchmark in benchmarks/ runs in its smoke mode, so none can break unseen (the Ray
benchmark's on the Ray tests' cluster: tests/compute/test_ray_benchmark.py)."""

from __future__ import annotations

import pytest

from tests.benchmarks import run_smoke
from tests.conftest import ANNOTATIONS_PATH, MBPP_PATH

pytestmark = pytest.mark.slow


def test_sampling_benchmark_reads_the_run_parameters_and_reports_ratios():
    # --params goes through Kedro's loader: ${seed} resolves and runtime params apply.
    # The demo environment's base model (tiny-random); conf/base's is the miniature world's,
    # which exists only after `kedro run --pipelines=world`.
    out = run_smoke("bench_sampling.py", "--env", "demo", "--params", "seed=5,sampling.top_p=0.9")
    assert out["ours_tokens"] > 0 and out["baseline_tokens"] > 0
    assert out["ratio"] == pytest.approx(out["baseline_s"] / out["ours_s"], rel=0.05)
    assert out["server_vs_hf"] > 0


def test_finetune_benchmark_compares_every_strategy_with_full():
    out = run_smoke("bench_finetune.py")
    assert set(out["runs"]) == {"full", "lora", "2 processes"}
    assert set(out["ratios_to_full"]) == {"lora", "2 processes"}
    assert all(run["tokens"] > 0 for run in out["runs"].values())


def test_execution_benchmark_agrees_with_the_reference_runner():
    for path in (MBPP_PATH, ANNOTATIONS_PATH):
        if not path.exists():
            pytest.skip(f"reference data {path} is absent (it lives in ../shared/data)")
    out = run_smoke("bench_execution.py", "--under-load")
    reference = out["runners"]["reference (paper scripts)"]
    assert out["programs"] == 24
    assert reference["verdicts_agree"] == reference["programs"] == 24
    assert out["ours_vs_fastest_peer"] > 0
    # The gold programs of the workload's tasks and 12 of HumanEval, judged idle and with
    # every CPU busy (the run exits 1 if a verdict changes).
    assert out["under_load"]["mbpp"]["programs"] == 19
    if (MBPP_PATH.parents[1] / "humaneval" / "HumanEval.jsonl.gz").exists():
        assert out["under_load"]["humaneval"]["programs"] == 12
    assert {got["differ"] for got in out["under_load"].values()} == {0}


def test_world_benchmark_reports_every_table_of_a_tiny_world():
    out = run_smoke("bench_world.py", "--gold-learning-rates", "1e-4")
    near, far = out["rows"]
    assert (near["distance"], far["distance"]) == (0.0, 1.0)
    methods = {"zero-shot", "ILF", "MBPP gold", "human refinements", "RFT", "ILF + RFT"}
    assert methods == set(near["methods"]) and set(far["methods"]) == set(near["methods"])
    # Only the gold programs change with the gold author: every other method is the same.
    for method in methods - {"MBPP gold"}:
        assert far["methods"][method] == near["methods"][method], method
    assert set(near["distribution"]) == set(near["methods"])
    assert near["distribution"]["zero-shot"]["kl_from_base"] == pytest.approx(0.0, abs=1e-9)
    assert {"MBPP gold programs", "human refinements"} <= set(near["perplexity_median"])
    contents = [r["prompt_contents"] for r in near["refinement_ablation"]]
    assert contents == ["code + feedback", "code + unrelated feedback"]
    assert set(near["sample_efficiency"]) == set(far["sample_efficiency"]) == {"1.0", "0.5"}
    assert near["annotations"] > near["sample_efficiency"]["0.5"]["annotations"] > 0
    assert 0 < near["annotator_edit_distance"]["body"]["mean"] < 1
    assert out["determinism_differences"] == []
    for row in (near, far):  # gold alone fine-tuned again, at each distance
        assert set(row["gold_learning_rates"]) == {"0.0001"}
        assert 0 <= row["gold_learning_rates"]["0.0001"]["pass@1"] <= 1


def test_suite_benchmark_times_a_run_and_lists_its_slowest_tests():
    out = run_smoke("bench_tests.py")
    assert out["returncode"] == 0 and out["mode"] == "smoke"
    assert " passed" in out["closing_line"]
    assert out["cpu_s"] > 0 and 0 < out["machine_busy_share"] <= 1
    assert 0 < len(out["slowest"]) <= 15
    assert out["ratio_to_budget"] == pytest.approx(out["wall_s"] / out["budget_s"], abs=0.001)

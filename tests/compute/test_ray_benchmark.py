"""The Ray benchmark's smoke run, on this folder's 2-node cluster (``--address``): the
benchmark's own loopback cluster would be a second one started for it."""

from __future__ import annotations

from tests.benchmarks import run_smoke


def test_ray_benchmark_runs_both_stages_on_two_nodes_with_identical_results(mbpp_path, ray_cluster):
    # The benchmark reads MBPP from ../shared/data (mbpp_path skips where it is absent);
    # tiny-random, as for bench_sampling.
    out = run_smoke("bench_ray.py", "--env", "demo", "--address", ray_cluster.address)
    assert out["programs"] == 24 and out["sequences"] == 4
    assert out["verdicts_identical"] and out["samples_identical"]
    assert out["local_programs_per_s"] > 0 and out["ray_programs_per_s"] > 0
    assert out["driver_cpu_ms_per_program"] > 0

"""Benchmark: the verdict and sampling stages locally and on a 2-node loopback Ray cluster.

Workload: the 974 MBPP gold programs (../shared/data beside the repo) judged by
:func:`ilf_kedro.execution.evaluate_programs` on this machine (``workers`` = the cluster's
CPUs) and by ``compute.backend: ray`` on a :class:`~ilf_kedro.compute.loopback.LoopbackCluster`
of 2 nodes with ``--cpus-per-node`` CPUs each, started by the benchmark on this same machine;
and the project's sampler (the run's ``sampling`` parameters, ``base_model``) on MBPP-style
prompts with ``sampling.backend`` hf vs ray. Both backends have the same CPUs in total on
one machine, so the ratio measures what Ray costs, not a speed-up; the last lines turn the
measured costs into the throughput a cluster of N nodes can reach and where the driver
(the Kedro process) becomes the limit. ``--address`` runs the Ray side on a cluster that
is already up (2 nodes of ``--cpus-per-node`` CPUs) instead.

Each measurement runs ``--repeats`` times after a warm-up (Ray workers started, torch
imported); the table shows mean and spread (min-max).

Run:  python benchmarks/bench_ray.py [--repeats R] [--cpus-per-node C] [--address A]
      [--env E] [--params K=V,...] [--smoke]   (--smoke: 24 programs, 2 prompts: a test
      runs it, on the test cluster's address)
The last line is a JSON object with the numbers.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

import pandas as pd  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
MBPP = ROOT / ".." / "shared" / "data" / "mbpp" / "mbpp.jsonl"
sys.path.insert(0, str(ROOT / "src"))

from ilf_kedro.compute.loopback import LoopbackCluster  # noqa: E402
from ilf_kedro.compute.ray_sampling import RaySampling  # noqa: E402
from ilf_kedro.compute.ray_verdicts import evaluate_programs_on_ray, verdict_shards  # noqa: E402
from ilf_kedro.execution import evaluate_programs  # noqa: E402
from ilf_kedro.infra.project_parameters import add_arguments, load_parameters  # noqa: E402
from ilf_kedro.models import load_model, sample_programs  # noqa: E402

PROMPTS = [
    '"""\nWrite a function to find the shared elements from the given two lists.\n"""\n\n'
    "def similar_elements(test_tup1, test_tup2):\n",
    '"""\nWrite a python function to identify non-prime numbers.\n"""\n\n'
    "import math\ndef is_not_prime(n):\n",
    '"""\nWrite a function to find the n largest integers from a list.\n"""\n\n'
    "import heapq as hq\ndef heap_queue_largest(nums, n):\n",
    '"""\nWrite a python function to check whether two numbers differ at one bit.\n"""\n\n'
    "def differ_At_One_Bit_Pos(a, b):\n",
]


def gold_workload(limit: int | None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """MBPP's tasks and their gold programs (CRLF as LF), the first ``limit`` of them."""
    if not MBPP.exists():
        raise SystemExit(f"the MBPP data is absent: {MBPP.resolve()} (../shared/data)")
    rows = [json.loads(x) for x in MBPP.read_text().splitlines() if x.strip()][:limit]

    def lf(text: str) -> str:
        return text.replace("\r\n", "\n")

    tasks = pd.DataFrame(
        {
            "task_id": [r["task_id"] for r in rows],
            "tests": [[lf(t) for t in r["test_list"]] for r in rows],
            "test_setup_code": [lf(r["test_setup_code"]) for r in rows],
        }
    )
    programs = pd.DataFrame({"task_id": tasks["task_id"], "program": [lf(r["code"]) for r in rows]})
    return programs, tasks


def timed(repeats: int, run) -> tuple[list[float], list[float], object]:
    """Wall-clock and this process's CPU seconds of each of ``repeats`` runs; the last
    result."""
    walls, cpus, result = [], [], None
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        result = run()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return walls, cpus, result


def spread(values: list[float]) -> str:
    return f"{statistics.mean(values):.2f} s ({min(values):.2f}-{max(values):.2f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cpus-per-node", type=int, default=1)
    parser.add_argument("--smoke", action="store_true", help="24 programs, 2 prompts, 1 repeat")
    parser.add_argument(
        "--address",
        help="a running cluster of 2 nodes with --cpus-per-node CPUs each (default: the "
        "benchmark starts a loopback one)",
    )
    add_arguments(parser)
    args = parser.parse_args()
    params = load_parameters(args.env, args.params)
    logging.basicConfig(level=logging.ERROR)  # the random-weights warning is expected here
    repeats = 1 if args.smoke else args.repeats
    programs, tasks = gold_workload(24 if args.smoke else None)
    prompts = pd.DataFrame({"task_id": range(len(PROMPTS)), "prompt": PROMPTS})
    # Time generation, not reading finished shards; the compute section is set below.
    sampling = {k: v for k, v in params["sampling"].items() if k != "resume_dir"}
    if args.smoke:
        prompts = prompts.head(2)
        sampling.update(num_samples=2, max_new_tokens=8)
    cpus = 2 * args.cpus_per_node
    judge = {"timeout_s": 10.0, "progress": False}
    bundle = load_model(
        params["base_model"],
        device="cpu",
        **{k: v for k, v in params["model"].items() if k != "device"},
    )
    n_seqs = len(prompts) * sampling["num_samples"]
    print(
        f"{len(programs)} MBPP gold programs; sampling {n_seqs} sequences of "
        f"{bundle.info['source']}; 2 nodes x {args.cpus_per_node} CPU vs {cpus} local workers"
    )

    local_walls, _, local = timed(
        repeats, lambda: evaluate_programs(programs, tasks, workers=cpus, **judge)
    )
    sample_programs(bundle, prompts.head(1), **{**sampling, "backend": "hf", "num_samples": 1})
    hf_walls, _, hf = timed(
        repeats, lambda: sample_programs(bundle, prompts, **{**sampling, "backend": "hf"})
    )
    with contextlib.ExitStack() as started:
        address = args.address or (
            started.enter_context(LoopbackCluster(nodes=2, num_cpus=args.cpus_per_node)).address
        )
        compute = {
            "backend": "ray",
            "address": address,
            "verdicts": {"num_cpus": args.cpus_per_node, "programs_per_task": 32},
            "sampling": {"num_cpus": args.cpus_per_node, "batches_per_shard": 1},
        }
        # Warm-up: a worker on each node, torch imported, the model in each object store.
        warm_start = time.perf_counter()
        evaluate_programs_on_ray(programs.head(64), tasks, compute=compute, **judge)
        on_replicas = {**sampling, "backend": "ray", "replicas": RaySampling(compute)}
        sample_programs(bundle, prompts, **on_replicas)
        warm_up_s = time.perf_counter() - warm_start
        ray_walls, ray_cpus, on_ray = timed(
            repeats, lambda: evaluate_programs_on_ray(programs, tasks, compute=compute, **judge)
        )
        rs_walls, _, ray_samples = timed(
            repeats,
            lambda: sample_programs(bundle, prompts, **on_replicas),
        )
    same = local.drop(columns="duration_s").equals(on_ray.drop(columns="duration_s"))
    # Verdicts that differ (a gold program near its time limit on a loaded machine can
    # time out in one run and not the other): which, so a difference can be judged.
    columns = [c for c in local.columns if c != "duration_s"]
    differ = [
        f"task {local.at[i, 'task_id']}: local {local.at[i, 'status']} "
        f"({local.at[i, 'duration_s']:.2f} s), ray {on_ray.at[i, 'status']} "
        f"({on_ray.at[i, 'duration_s']:.2f} s)"
        for i in local.index
        if local.loc[i, columns].tolist() != on_ray.loc[i, columns].tolist()
    ]
    n = len(programs)
    local_s, ray_s = statistics.mean(local_walls), statistics.mean(ray_walls)
    overhead = (ray_s - local_s) / n
    driver_cpu = statistics.mean(ray_cpus) / n
    # The driver plans each task's asserts once (they hold the expected values, so this
    # stays on the driver), however many programs the task has; the rest is per program.
    _, plan_cpus, _ = timed(
        repeats, lambda: verdict_shards(programs, tasks, compute=compute, **judge)
    )
    plan_per_task = statistics.mean(plan_cpus) / tasks["task_id"].nunique()
    per_program = driver_cpu - plan_per_task * tasks["task_id"].nunique() / n
    ilf_driver = per_program + plan_per_task / 10  # ILF: 10 samples per task
    per_core = local_s * cpus / n  # CPU-seconds one program needs in the harness
    print(f"\nverdicts ({n} programs, {repeats} repeat(s)):")
    print(f"  local, {cpus} workers  : {spread(local_walls)}  {n / local_s:.1f} programs/s")
    print(f"  ray, 2 nodes       : {spread(ray_walls)}  {n / ray_s:.1f} programs/s")
    print(f"  Ray adds {overhead * 1000:.2f} ms per program; verdicts identical: {same}")
    for line in differ[:10]:
        print(f"    differs: {line}")
    print(f"  driver CPU {driver_cpu * 1000:.2f} ms per program (ceiling {1 / driver_cpu:.0f}/s)")
    print(
        f"  of which planning {plan_per_task * 1000:.2f} ms per task (once per task), "
        f"{per_program * 1000:.2f} ms per program; with 10 programs per task "
        f"{ilf_driver * 1000:.2f} ms per program (ceiling {1 / ilf_driver:.0f}/s)"
    )
    hf_s, rs_s = statistics.mean(hf_walls), statistics.mean(rs_walls)
    print(f"sampling ({n_seqs} sequences):")
    print(f"  hf, local          : {spread(hf_walls)}  {n_seqs / hf_s:.2f} seq/s")
    print(f"  ray, 2 replicas    : {spread(rs_walls)}  {n_seqs / rs_s:.2f} seq/s")
    print(f"  samples identical: {hf.equals(ray_samples)}; Ray warm-up {warm_up_s:.1f} s")
    print(
        f"scaling: one program needs {per_core * 1000:.1f} CPU-ms, so N nodes x C cores "
        f"judge about N*C*{1 / per_core:.0f} programs/s until the driver's "
        f"{1 / driver_cpu:.0f} programs/s (N*C = {per_core / driver_cpu:.0f} cores)"
    )
    print(
        json.dumps(
            {
                "programs": n,
                "repeats": repeats,
                "local_programs_per_s": n / local_s,
                "ray_programs_per_s": n / ray_s,
                "ray_overhead_ms_per_program": overhead * 1000,
                "driver_cpu_ms_per_program": driver_cpu * 1000,
                "driver_planning_ms_per_task": plan_per_task * 1000,
                "driver_ms_per_program_at_10_per_task": ilf_driver * 1000,
                "cpu_ms_per_program": per_core * 1000,
                "verdicts_identical": bool(same),
                "sequences": n_seqs,
                "hf_seq_per_s": n_seqs / hf_s,
                "ray_seq_per_s": n_seqs / rs_s,
                "samples_identical": bool(hf.equals(ray_samples)),
                "ray_warm_up_s": warm_up_s,
            }
        )
    )


if __name__ == "__main__":
    main()

"""Peer for bench_execution.py: EvalPlus's ``untrusted_check`` in a process pool.

Run with the Python of a separate environment where ``pip install evalplus`` was done:
``PYTHON evalplus_untrusted_check.py WORKLOAD.json``. The design is EvalPlus's
``evaluate``: a ProcessPoolExecutor whose workers call ``untrusted_check`` once per
program (one more process per program, per-input time limits ``max(min_time_limit,
gt_time_limit_factor * ref_time)``, ``fast_check`` as in its default run). Only tasks
whose asserts all have EvalPlus's input/output form (``NAME(literal args) == literal``,
no setup code) are given to it; ``ref_time`` per input is the gold program's run time
divided by the number of asserts.

Arguments and expected values arrive as Python literal source (``ast.literal_eval``).
Prints one JSON object: ``{"seconds": wall time of the pool, "passed": [bool, ...]}``.
"""

import ast
import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor

from evalplus.eval import PASS, untrusted_check


def check(job: dict) -> bool:
    n = len(job["inputs"])
    status, _ = untrusted_check(
        "mbpp",
        job["program"],
        job["inputs"],
        job["entry"],
        expected=job["expected"],
        atol=0,
        ref_time=[job["gold_duration_s"] / n] * n,
        fast_check=True,
    )
    return status == PASS


def main() -> None:
    with open(sys.argv[1]) as f:
        spec = json.load(f)
    for job in spec["jobs"]:  # literals travel as source text: JSON has no tuples or sets
        job["inputs"] = [ast.literal_eval(x) for x in job["inputs"]]
        job["expected"] = [ast.literal_eval(x) for x in job["expected"]]
    start = time.perf_counter()
    with ProcessPoolExecutor(max_workers=spec["workers"]) as pool:
        passed = list(pool.map(check, spec["jobs"]))
    seconds = time.perf_counter() - start
    print(json.dumps({"seconds": seconds, "passed": passed}))


if __name__ == "__main__":
    main()

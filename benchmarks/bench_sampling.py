"""Benchmark: our batched sampler vs the reference scripts' sampling pattern.

Same model (the run's ``base_model``: parameters as ``kedro run`` resolves them, with
``--env`` and ``--params``), same prompts, same CPU. Ours: ``sample_programs`` with the
configured ``sampling`` parameters (batched, left padded, stop sequences, ``max_new_tokens``
cap). Baseline: the pattern of the reference
scripts: one sequence per ``generate`` call, always up to 1024 new tokens (only EOS ends a
sequence early), stop sequences applied by truncating the text afterwards.

Run:  python benchmarks/bench_sampling.py [--num-samples N] [--baseline-tokens T] [--env E]
      [--params K=V,...] [--smoke]   (--smoke: 2 prompts, 1 sample, 8 tokens: a test runs it)
The server backend (``sampling.backend: server``, ``transformers serve`` on loopback, start
and stop included) is timed on the same prompts and parameters as ``server_s``.
The last line printed is a JSON object with ``ours_s``, ``baseline_s``, ``ratio``,
``server_s`` and ``server_vs_hf`` (server time / in-process time).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pandas as pd  # noqa: E402
import torch  # noqa: E402

from ilf_kedro.infra.project_parameters import add_arguments, load_parameters  # noqa: E402
from ilf_kedro.models import load_model, sample_programs  # noqa: E402
from ilf_kedro.models.sampling import cut_completion  # noqa: E402
from ilf_kedro.parameters import Server  # noqa: E402

# MBPP-style code-generation prompts (docstring, example, def line), as in DESIGN.md.
PROMPTS = [
    '"""\nWrite a function to find the shared elements from the given two lists.\n'
    ">>> Example: similar_elements((3, 4, 5, 6), (5, 7, 4, 10)) = (4, 5)\n"
    '"""\n\ndef similar_elements(test_tup1, test_tup2):\n',
    '"""\nWrite a python function to identify non-prime numbers.\n'
    ">>> Example: is_not_prime(2) = False\n"
    '"""\n\nimport math\ndef is_not_prime(n):\n',
    '"""\nWrite a function to find the n largest integers from a given list of numbers, '
    "returned in descending order.\n"
    ">>> Example: heap_queue_largest([25, 35, 22, 85, 14, 65, 75, 22, 58], 3) = [85, 75, 65]\n"
    '"""\n\nimport heapq as hq\ndef heap_queue_largest(nums, n):\n',
    '"""\nWrite a python function to check whether the two numbers differ at one bit '
    "position only or not.\n"
    ">>> Example: differ_At_One_Bit_Pos(13, 9) = True\n"
    '"""\n\ndef differ_At_One_Bit_Pos(a, b):\n',
    '"""\nWrite a function to find all words which are at least 4 characters long in a '
    "string.\n"
    ">>> Example: find_char_long('Please move back to stream') = ['Please', 'move', 'back', "
    "'stream']\n"
    '"""\n\nimport re\ndef find_char_long(text):\n',
]


def baseline(bundle, prompts, *, num_samples, temperature, top_p, max_new_tokens, stops, seed):
    """One sequence per generate call, up to ``max_new_tokens``, truncated afterwards.

    Returns (generated tokens, completions).
    """
    from transformers import GenerationConfig

    tok, model = bundle.tokenizer, bundle.model
    config = GenerationConfig(
        do_sample=True,
        temperature=temperature,
        top_p=top_p,
        top_k=0,
        max_new_tokens=max_new_tokens,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )
    torch.manual_seed(seed)
    n_tokens, completions = 0, []
    for prompt in prompts:
        ids = tok(prompt, return_tensors="pt")
        for _ in range(num_samples):
            with torch.inference_mode():
                out = model.generate(**ids, generation_config=config)
            new = out[0, ids["input_ids"].shape[1] :]
            n_tokens += len(new)
            text = tok.decode(new, skip_special_tokens=True)
            completions.append(cut_completion(text, stops)[0])
    return n_tokens, completions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-samples", type=int, default=None, help="default: sampling's")
    parser.add_argument("--baseline-tokens", type=int, default=1024)
    parser.add_argument("--smoke", action="store_true", help="a few prompts and tokens")
    add_arguments(parser)
    args = parser.parse_args()
    params = load_parameters(args.env, args.params)
    sampling = dict(params["sampling"])
    prompts = PROMPTS
    if args.smoke:
        prompts, args.num_samples, args.baseline_tokens = PROMPTS[:2], 1, 8
        sampling["max_new_tokens"] = 8
    if args.num_samples is not None:
        sampling["num_samples"] = args.num_samples
    sampling.pop("resume_dir", None)  # time generation, not reading finished shards
    sampling.pop("backend", None)
    server = Server.model_validate(sampling.pop("server", {})).model_dump()
    logging.basicConfig(level=logging.ERROR)  # the random-weights warning is expected here

    bundle = load_model(
        params["base_model"],
        device="cpu",
        **{k: v for k, v in params["model"].items() if k != "device"},
    )
    frame = pd.DataFrame({"task_id": range(len(prompts)), "prompt": prompts})
    print(
        f"model: {bundle.info['source']} (random weights: {bundle.info['random_weights']}), "
        f"cpu threads: {torch.get_num_threads()}, prompts: {len(prompts)}, "
        f"samples per prompt: {sampling['num_samples']}"
    )

    # Warm-up (first-call overheads) so neither side pays them.
    sample_programs(bundle, frame.head(1), **{**sampling, "num_samples": 1}, progress=False)

    t0 = time.perf_counter()
    ours = sample_programs(bundle, frame, **sampling, progress=False)
    ours_s = time.perf_counter() - t0
    ours_tokens = int(ours["num_new_tokens"].sum())
    reasons = ours["finish_reason"].value_counts().to_dict()
    print(
        f"ours:     {ours_tokens:6d} generated tokens in {ours_s:7.2f} s "
        f"(batch_size={sampling['batch_size']}, max_new_tokens={sampling['max_new_tokens']}, "
        f"finish: {reasons})"
    )

    # The server backend: the same sampling through `transformers serve` on loopback,
    # server start and stop included (what a run pays).
    t0 = time.perf_counter()
    served = sample_programs(
        bundle, frame, **sampling, backend="server", server=server, progress=False
    )
    server_s = time.perf_counter() - t0
    print(
        f"server:   {len(served):6d} samples in {server_s:7.2f} s "
        f"({server['command']}, start and stop included)"
    )

    t0 = time.perf_counter()
    base_tokens, _ = baseline(
        bundle,
        prompts,
        num_samples=sampling["num_samples"],
        temperature=sampling["temperature"],
        top_p=sampling["top_p"],
        max_new_tokens=args.baseline_tokens,
        stops=sampling["stop_sequences"],
        seed=sampling["seed"],
    )
    baseline_s = time.perf_counter() - t0
    print(
        f"baseline: {base_tokens:6d} generated tokens in {baseline_s:7.2f} s "
        f"(one sequence at a time, up to {args.baseline_tokens} new tokens)"
    )
    print(
        json.dumps(
            {
                "ours_s": round(ours_s, 3),
                "baseline_s": round(baseline_s, 3),
                "ratio": round(baseline_s / ours_s, 2),
                "ours_tokens": ours_tokens,
                "baseline_tokens": base_tokens,
                "server_s": round(server_s, 3),
                "server_vs_hf": round(server_s / ours_s, 2),
                # Per-token throughput: the batching gain alone, without the shorter cap.
                "ours_tok_per_s": round(ours_tokens / ours_s, 1),
                "baseline_tok_per_s": round(base_tokens / baseline_s, 1),
            }
        )
    )


if __name__ == "__main__":
    main()

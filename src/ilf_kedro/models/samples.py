"""What a sample is, whichever backend made it: the prompts a sampler takes, its output
frame (columns, rows in input order) and the cut of a completion at its first stop
sequence. No torch: the endpoint backend needs it too."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd

OUTPUT_COLUMNS = [
    "task_id",
    "sample_idx",
    "prompt",
    "completion",
    "program",
    "finish_reason",  # "stop" (a stop sequence), "eos" or "length" (max_new_tokens)
    "num_new_tokens",  # tokens the model generated for this sample, stop text included
]


def cut_completion(text: str, stop_sequences: Sequence[str]) -> tuple[str, bool]:
    """Truncate ``text`` at its earliest stop sequence; returns (text, was_cut)."""
    hits = [i for i in (text.find(s) for s in stop_sequences) if i >= 0]
    if not hits:
        return text, False
    return text[: min(hits)], True


def check_prompts(prompts: pd.DataFrame) -> None:
    """Raise a ValueError naming the missing or clashing columns before anything runs."""
    missing = {"task_id", "prompt"} - set(prompts.columns)
    if missing:
        raise ValueError(f"prompts is missing column(s) {sorted(missing)}")
    clash = (set(OUTPUT_COLUMNS) - {"task_id", "prompt"}) & set(prompts.columns)
    if clash:
        raise ValueError(f"prompts already has output column(s) {sorted(clash)}; drop them")


def assemble_output(
    prompts: pd.DataFrame,
    results: Mapping[tuple[int, int], tuple[str, str, int]],
    num_samples: int,
    greedy: bool,
) -> pd.DataFrame:
    """The output frame from ``(prompt row, sample) -> (completion, finish_reason,
    num_new_tokens)``; greedy results hold sample 0 only, copied to every sample."""
    extra_cols = [c for c in prompts.columns if c not in ("task_id", "prompt")]
    rows = []
    for row, prompt in enumerate(prompts["prompt"].astype(str)):
        for k in range(num_samples):
            completion, reason, n_new = results[(row, 0 if greedy else k)]
            rows.append((row, k, prompt, completion, prompt + completion, reason, n_new))
    out_df = pd.DataFrame(
        rows,
        columns=[
            "_row",
            "sample_idx",
            "prompt",
            "completion",
            "program",
            "finish_reason",
            "num_new_tokens",
        ],
    )
    carried = prompts.drop(columns=["prompt"]).reset_index(drop=True)
    out_df = out_df.join(carried, on="_row").drop(columns="_row")
    return out_df[OUTPUT_COLUMNS + extra_cols].reset_index(drop=True)


def empty_output(prompts: pd.DataFrame, extra_cols: list[str]) -> pd.DataFrame:
    """The output frame of no samples: its columns, with the input's dtypes."""
    frame = pd.DataFrame(
        {
            "task_id": pd.Series([], dtype=prompts["task_id"].dtype),
            "sample_idx": pd.Series([], dtype="int64"),
            "prompt": pd.Series([], dtype=object),
            "completion": pd.Series([], dtype=object),
            "program": pd.Series([], dtype=object),
            "finish_reason": pd.Series([], dtype=object),
            "num_new_tokens": pd.Series([], dtype="int64"),
        }
    )
    for col in extra_cols:
        frame[col] = pd.Series([], dtype=prompts[col].dtype)
    return frame

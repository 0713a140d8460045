"""What a sample is, whichever backend made it: the sampler's output columns and the cut
of a completion at its first stop sequence. No torch: the endpoint backend needs it too."""

from __future__ import annotations

from collections.abc import Sequence

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

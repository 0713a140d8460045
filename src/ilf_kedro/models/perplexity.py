"""Per-program perplexity under a causal LM (paper Figure 3's data): scoring with a
loaded ``ModelBundle``, so it lives with the models and runs where the model is loaded."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from ilf_kedro.parameters import Perplexity

from .loading import context_length

# The ``reporting.perplexity`` parameters' defaults are these functions' (one source).
_DEFAULTS = Perplexity()


def program_perplexities(
    bundle,
    programs: Sequence[str],
    batch_size: int = _DEFAULTS.batch_size,
    max_length: int | None = _DEFAULTS.max_length,
) -> list[float]:
    """Per-program perplexity under a causal LM: ``exp(mean token NLL)`` of each text.

    Each program is tokenized on its own (no special tokens added), cut to its first
    ``max_length`` tokens (and the model's context), and scored in right-padded batches
    under ``torch.no_grad``; the first token has no prediction, so a program of under two
    tokens gets NaN.

    Args:
        bundle: An ``ilf_kedro.models.ModelBundle`` (model, tokenizer, info).
        programs: Program texts.
        batch_size: Programs per forward pass.
        max_length: Token cap per program (None: the model's context only).

    Returns:
        One float per program, in order.
    """
    import torch
    import torch.nn.functional as F

    model, tokenizer = bundle.model, bundle.tokenizer
    limits = [n for n in (max_length, context_length(model)) if n]
    limit = min(limits) if limits else None
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    device = next(model.parameters()).device
    encoded = [
        tokenizer(str(text), add_special_tokens=False)["input_ids"][:limit] for text in programs
    ]
    # Longest first keeps padding low; results go back to the input order.
    order = sorted(range(len(encoded)), key=lambda i: -len(encoded[i]))
    result = [math.nan] * len(encoded)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for start in range(0, len(order), max(1, int(batch_size))):
                batch = [i for i in order[start : start + max(1, int(batch_size))]]
                scorable = [i for i in batch if len(encoded[i]) >= 2]
                if not scorable:
                    continue
                width = max(len(encoded[i]) for i in scorable)
                ids = torch.full((len(scorable), width), pad_id, dtype=torch.long)
                mask = torch.zeros((len(scorable), width), dtype=torch.long)
                for row, i in enumerate(scorable):
                    ids[row, : len(encoded[i])] = torch.tensor(encoded[i])
                    mask[row, : len(encoded[i])] = 1
                ids, mask = ids.to(device), mask.to(device)
                logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1].float()
                targets = ids[:, 1:]
                target_mask = mask[:, 1:].float()
                nll = F.cross_entropy(
                    logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), reduction="none"
                ).view(targets.shape)
                mean_nll = (nll * target_mask).sum(1) / target_mask.sum(1)
                for row, i in enumerate(scorable):
                    result[i] = float(torch.exp(mean_nll[row]).item())
    finally:
        model.train(was_training)
    return result


def perplexity_table(
    bundle,
    sources: Mapping[str, pd.DataFrame],
    batch_size: int = _DEFAULTS.batch_size,
    max_length: int | None = _DEFAULTS.max_length,
) -> pd.DataFrame:
    """Perplexity of every program of several sources under one model (paper Figure 3).

    Args:
        bundle: The ``ModelBundle`` that scores (the paper: the base model pi_theta).
        sources: Source label -> a frame with ``task_id`` and ``program`` columns.
        batch_size, max_length: As in ``program_perplexities``.

    Returns:
        ``source``, ``task_id``, ``n_tokens`` (tokens scored, after the cap),
        ``perplexity``; one row per program, sources in the given order.
    """
    frames = []
    for label, frame in sources.items():
        programs = [str(p) for p in frame["program"]]
        ppl = program_perplexities(bundle, programs, batch_size=batch_size, max_length=max_length)
        n_tokens = [
            len(bundle.tokenizer(p, add_special_tokens=False)["input_ids"]) for p in programs
        ]
        if max_length:
            n_tokens = [min(n, int(max_length)) for n in n_tokens]
        frames.append(
            pd.DataFrame(
                {
                    "source": label,
                    "task_id": frame["task_id"].astype("int64").to_numpy(),
                    "n_tokens": np.asarray(n_tokens, dtype="int64"),
                    "perplexity": np.asarray(ppl, dtype="float64"),
                }
            )
        )
    if not frames:
        return pd.DataFrame(
            {
                "source": pd.Series(dtype=str),
                "task_id": pd.Series(dtype="int64"),
                "n_tokens": pd.Series(dtype="int64"),
                "perplexity": pd.Series(dtype="float64"),
            }
        )
    return pd.concat(frames, ignore_index=True)

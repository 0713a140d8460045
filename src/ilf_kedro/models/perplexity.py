"""How likely a causal LM finds a program given its task prompt: per-program perplexity
(paper Figure 3's data) and log-likelihood (the theory's distributions over candidate
programs). Scoring with a loaded ``ModelBundle``, so it lives with the models and runs
where the model is loaded."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from ilf_kedro.parameters import Perplexity

from .loading import context_length
from .trainer import IGNORE_INDEX, encode_with_cut

# The ``reporting.perplexity`` parameters' defaults are these functions' (one source).
_DEFAULTS = Perplexity()
TABLE_COLUMNS = {"source": str, "task_id": "int64", "n_tokens": "int64", "perplexity": "float64"}


def completion_log_likelihoods(
    bundle,
    prompts: Sequence[str],
    completions: Sequence[str],
    batch_size: int = _DEFAULTS.batch_size,
    max_length: int | None = _DEFAULTS.max_length,
) -> tuple[np.ndarray, np.ndarray]:
    """``log p(completion + EOS | prompt)`` under a causal LM, and the tokens it covers.

    Each pair is encoded as the fine-tune encodes its targets (``trainer.encode_example``:
    prompt tokens, then the completion's and an EOS, the prompt cut from the left to fit
    ``max_length`` and the model's context), so every program is scored on the span the
    model writes, under the conditioning it writes it in, whoever wrote the program.
    Right-padded batches under ``torch.no_grad``.

    Returns:
        ``(log_likelihood, n_tokens)``: float and int arrays, one entry per pair, in order.
    """
    import torch
    import torch.nn.functional as F

    model, tokenizer = bundle.model, bundle.tokenizer
    limits = [n for n in (max_length, context_length(model)) if n]
    limit = min(limits) if limits else 1 << 30
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    device = next(model.parameters()).device
    encoded = [
        encode_with_cut(tokenizer, str(p), str(c), limit)[0]
        for p, c in zip(prompts, completions, strict=True)
    ]
    # Longest first keeps padding low; results go back to the input order.
    order = sorted(range(len(encoded)), key=lambda i: -len(encoded[i]["input_ids"]))
    log_likelihood = np.zeros(len(encoded), dtype="float64")
    n_tokens = np.array(
        [sum(label != IGNORE_INDEX for label in e["labels"]) for e in encoded], dtype="int64"
    )
    step = max(1, int(batch_size))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for start in range(0, len(order), step):
                batch = order[start : start + step]
                width = max(len(encoded[i]["input_ids"]) for i in batch)
                ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
                labels = torch.full((len(batch), width), IGNORE_INDEX, dtype=torch.long)
                mask = torch.zeros((len(batch), width), dtype=torch.long)
                for row, i in enumerate(batch):
                    length = len(encoded[i]["input_ids"])
                    ids[row, :length] = torch.tensor(encoded[i]["input_ids"])
                    labels[row, :length] = torch.tensor(encoded[i]["labels"])
                    mask[row, :length] = 1
                logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits
                logits, targets = logits[:, :-1].float(), labels[:, 1:].to(device)
                nll = F.cross_entropy(
                    logits.reshape(-1, logits.shape[-1]),
                    targets.reshape(-1),
                    ignore_index=IGNORE_INDEX,
                    reduction="none",
                ).view(targets.shape)
                for row, i in enumerate(batch):
                    log_likelihood[i] = -float(nll[row].sum().item())
    finally:
        model.train(was_training)
    return log_likelihood, n_tokens


def completion_perplexities(
    bundle,
    prompts: Sequence[str],
    completions: Sequence[str],
    batch_size: int = _DEFAULTS.batch_size,
    max_length: int | None = _DEFAULTS.max_length,
) -> list[float]:
    """Per-program perplexity ``exp(mean token NLL)`` of each completion (and its EOS)
    given its prompt: ``completion_log_likelihoods`` per token."""
    log_likelihood, n_tokens = completion_log_likelihoods(
        bundle, prompts, completions, batch_size=batch_size, max_length=max_length
    )
    return [
        math.exp(-ll / n) if n else math.nan for ll, n in zip(log_likelihood, n_tokens, strict=True)
    ]


def perplexity_table(
    bundle,
    sources: Mapping[str, pd.DataFrame],
    batch_size: int = _DEFAULTS.batch_size,
    max_length: int | None = _DEFAULTS.max_length,
) -> pd.DataFrame:
    """Perplexity of every program of several sources under one model (paper Figure 3),
    each scored on its body given its task prompt (``completion_log_likelihoods``).

    Args:
        bundle: The ``ModelBundle`` that scores (the paper: the base model pi_theta).
        sources: Source label -> a frame with ``task_id``, ``prompt`` (the task's code
            prompt) and ``completion`` (what the program has after it) columns.
        batch_size, max_length: As in ``completion_log_likelihoods``.

    Returns:
        ``source``, ``task_id``, ``n_tokens`` (tokens scored: the body's and the EOS),
        ``perplexity``; one row per program, sources in the given order.
    """
    frames = [pd.DataFrame({c: pd.Series(dtype=t) for c, t in TABLE_COLUMNS.items()})]
    for label, frame in sources.items():
        log_likelihood, n_tokens = completion_log_likelihoods(
            bundle,
            list(frame["prompt"]),
            list(frame["completion"]),
            batch_size=batch_size,
            max_length=max_length,
        )
        frames.append(
            pd.DataFrame(
                {
                    "source": label,
                    "task_id": frame["task_id"].astype("int64").to_numpy(),
                    "n_tokens": n_tokens,
                    "perplexity": np.exp(-log_likelihood / np.maximum(n_tokens, 1)),
                }
            )
        )
    return pd.concat(frames, ignore_index=True).astype(TABLE_COLUMNS)

"""Train the miniature world's base model from scratch on its corpus.

The project's own tokenizer and model classes (``ilf_kedro.models.tiny``), a plain
next-token loss over whole examples (prompt and program, as web code is read), AdamW
with a linear warm-up and decay. Deterministic for a seed on CPU.

Plain Python, no Kedro.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Any

import pandas as pd
import torch
from transformers.trainer_pt_utils import get_length_grouped_indices

from ilf_kedro.models import ModelBundle
from ilf_kedro.models.tiny import build_tiny_model, build_tiny_tokenizer

logger = logging.getLogger(__name__)


def pretrain(
    corpus: pd.DataFrame,
    tiny_config: Mapping[str, Any],
    *,
    epochs: int,
    learning_rate: float,
    batch_size: int,
    seed: int,
    threads: int | None = None,
) -> ModelBundle:
    """A tiny causal LM trained from random weights on ``corpus`` (prompt + completion).

    Args:
        corpus: ``prompt`` and ``completion`` columns (``generate_corpus``).
        tiny_config: The architecture (``models.tiny.TINY_DEFAULTS`` keys).
        epochs, learning_rate, batch_size: The optimisation.
        seed: Seeds the weights and the order of the examples.
        threads: torch CPU threads while training (a fixed count keeps float sums in the
            same order, hence identical weights run to run); None leaves torch's setting.

    Returns:
        A ``ModelBundle`` on CPU in eval mode; ``info`` records the corpus size, epochs
        and final training loss (the mean of the last epoch's last 20 steps), and
        ``random_weights: False``. It has no ``source``: its weights exist only in memory
        until saved (``origin`` says where they come from).
    """
    if corpus.empty:
        raise ValueError("world corpus is empty: world.corpus.size must be at least 1")
    previous_threads = torch.get_num_threads()
    if threads:
        torch.set_num_threads(int(threads))
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            # The merges are learned from the corpus itself, so its prompts take few tokens.
            texts = tuple(corpus["prompt"] + corpus["completion"])
            tokenizer = build_tiny_tokenizer(int(tiny_config.get("vocab_size", 1024)), texts)
            model, resolved = build_tiny_model(tokenizer, dict(tiny_config))
            loss = _train(model, tokenizer, corpus, epochs, learning_rate, batch_size, seed)
    finally:
        torch.set_num_threads(previous_threads)
    model.eval()
    info = {
        # Not ``source``, which names a model id or directory the weights load from.
        "origin": "pretrained from scratch (ilf_kedro.world)",
        "random_weights": False,
        "tiny_config": resolved,
        "seed": seed,
        "corpus_examples": len(corpus),
        "pretrain_epochs": epochs,
        "pretrain_final_loss": loss,
        "device": "cpu",
        "dtype": "float32",
    }
    return ModelBundle(model=model, tokenizer=tokenizer, info=info)


def _train(model, tokenizer, corpus, epochs, learning_rate, batch_size, seed) -> float:
    # The loss is on the program only (the prompt is read, not predicted), as in the
    # project's fine-tune: the model's capacity goes to writing code for a description.
    encoded = []
    for prompt, completion in zip(corpus["prompt"], corpus["completion"], strict=True):
        head = tokenizer(prompt)["input_ids"]
        tail = tokenizer(completion)["input_ids"] + [tokenizer.eos_token_id]
        encoded.append((head + tail, len(head)))
    steps = epochs * math.ceil(len(encoded) / batch_size)
    optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate, weight_decay=0.01)
    warmup = max(1, steps // 20)
    decay = max(1, steps - warmup)  # a run of one step is all warm-up
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min((s + 1) / warmup, max(0.0, (steps - s) / decay))
    )
    generator = torch.Generator().manual_seed(seed)
    lengths = [len(ids) for ids, _ in encoded]
    model.train()
    for epoch in range(epochs):
        recent = []  # this epoch's loss, not the last one's
        for batch_rows in _length_grouped_batches(lengths, batch_size, generator):
            batch = [encoded[i] for i in batch_rows]
            width = max(len(ids) for ids, _ in batch)
            input_ids = torch.full((len(batch), width), tokenizer.pad_token_id)
            labels = torch.full((len(batch), width), -100)
            mask = torch.zeros((len(batch), width), dtype=torch.long)
            for row, (ids, prompt_len) in enumerate(batch):
                input_ids[row, : len(ids)] = torch.tensor(ids)
                labels[row, prompt_len : len(ids)] = torch.tensor(ids[prompt_len:])
                mask[row, : len(ids)] = 1
            loss = model(input_ids=input_ids, attention_mask=mask, labels=labels).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            recent = (recent + [loss.item()])[-20:]
        logger.info(
            "world pretraining: epoch %d/%d, loss %.4f",
            epoch + 1,
            epochs,
            sum(recent) / len(recent),
        )
    return sum(recent) / len(recent)


def _length_grouped_batches(
    lengths: list[int], batch_size: int, generator: torch.Generator
) -> list[list[int]]:
    """One epoch's batches: rows of similar length together (transformers'
    ``LengthGroupedSampler`` order: a random permutation sorted by length within mega-batches
    of 50 batches), the batches then shuffled so that lengths, hence families, do not come
    in runs. Padding falls from about 43% of the world corpus's tokens to a few percent,
    which is most of a step's cost."""
    rows = get_length_grouped_indices(lengths, batch_size, generator=generator)
    batches = [rows[start : start + batch_size] for start in range(0, len(rows), batch_size)]
    return [batches[i] for i in torch.randperm(len(batches), generator=generator).tolist()]

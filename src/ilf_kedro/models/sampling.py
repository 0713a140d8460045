"""The one sampler every ILF stage uses: n samples per prompt, batched, with stop sequences."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from inspect import signature
from typing import Any, Protocol

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from ilf_kedro.parameters import Sampling, section

from .loading import ModelBundle, context_length, warn_if_random
from .samples import OUTPUT_COLUMNS, assemble_output, check_prompts, cut_completion, empty_output

__all__ = ["OUTPUT_COLUMNS", "assemble_output", "cut_completion", "sample_programs"]

logger = logging.getLogger(__name__)


def _batch_seed(seed: int, batch_idx: int) -> int:
    # Independent, reproducible stream per batch: a batch's samples do not depend on how
    # much randomness earlier batches consumed.
    return int(np.random.SeedSequence([int(seed), batch_idx]).generate_state(1)[0])


def sample_programs(
    bundle: ModelBundle,
    prompts: pd.DataFrame,
    sampling: Sampling | Mapping[str, Any] | None = None,
    *,
    replicas: Replicas | None = None,
    progress: bool = True,
    **overrides: Any,
) -> pd.DataFrame:
    """Sample ``sampling.num_samples`` completions for every prompt.

    Args:
        bundle: Model and tokenizer (``load_model`` / ``finetune`` / ``HFModelDataset``).
        prompts: One row per prompt with ``task_id`` and ``prompt``; other columns (ids,
            splits...) are carried into every output row. Must not already have the
            output columns ``sample_idx``, ``completion``, ``program`` etc.
        sampling: The ``sampling`` parameters (``ilf_kedro.parameters.Sampling``: their
            defaults and rules); ``overrides`` (e.g. ``num_samples=2``) replace some of
            them. ``temperature`` 0 is greedy (one generation copied ``num_samples``
            times); ``top_p`` is the nucleus mass (no top-k cut); ``batch_size`` the
            sequences per ``generate`` call (prompts are left-padded). A sample stops at
            the first of ``stop_sequences`` in its completion (or at EOS) and is cut
            before it. Same seed, inputs and ``batch_size`` give identical output.
            ``resume_dir``: every finished batch is written under ``resume_dir/<key>/``
            (see ``shards``; the key hashes the settings, the prompts and the model) and
            the batches already there are skipped, so a killed run resumes with identical
            output. ``backend`` ``server`` starts an OpenAI-compatible server for the
            model's directory (``server.command``, e.g. ``vllm serve``) and samples
            through it (``server_sampling``), with the same output; ``ray`` samples
            with ``replicas``.
        replicas: Needed by ``backend: ray`` (the Kedro nodes give
            ``ilf_kedro.compute.ray_sampling.RaySampling`` of the ``compute`` section):
            the same batches, with the same seeds, generated in replicas of the model on
            a cluster, or, when the replicas are ``served``, sampled as ``server`` does
            from a server replica on each of several nodes.
        progress: Show a tqdm progress bar.

    Returns:
        One row per (prompt, sample) in input order with ``OUTPUT_COLUMNS``
        (``program = prompt + completion``) followed by the input's other columns.
        An empty input gives an empty frame with the same columns.
    """
    settings = section(Sampling, sampling, "sampling", **overrides)
    if settings.backend == "ray" and replicas is None:
        raise ValueError(
            "sampling.backend is ray, which samples on replicas: pass "
            "replicas=ilf_kedro.compute.ray_sampling.RaySampling(compute) (the Kedro nodes "
            "do, from the compute section)"
        )
    check_prompts(prompts)
    extra_cols = [c for c in prompts.columns if c not in ("task_id", "prompt")]
    if prompts.empty:
        return empty_output(prompts, extra_cols)
    warn_if_random(bundle.info)
    params = settings.generation()
    on_ray = replicas if settings.backend == "ray" else None
    if settings.backend == "server" or (on_ray is not None and on_ray.served):
        from .server_sampling import sample_with_server

        results = sample_with_server(bundle, prompts, settings, replicas=on_ray, progress=progress)
        return assemble_output(prompts, results, settings.num_samples, settings.greedy)

    decoding = _decoding_setup(bundle, params["stop_sequences"], settings)
    encoded = _encode_prompts(bundle, prompts, settings.max_new_tokens)
    items = _work_items(encoded, 1 if settings.greedy else settings.num_samples)
    plan = SamplingPlan(decoding, encoded, items, settings.batch_size, settings.seed)
    store = _open_store(settings.resume_dir, params, prompts, bundle, plan.n_batches)
    if on_ray is not None:
        results = on_ray.generate(bundle, plan, store, progress)
    else:
        results = _generate_all(bundle, plan, store, progress)
    return assemble_output(prompts, results, settings.num_samples, settings.greedy)


@dataclass(frozen=True)
class _Decoding:
    """What every ``generate`` call of one sampling run shares."""

    config: Any  # transformers.GenerationConfig
    pad_id: int
    eos_ids: frozenset[int]
    end_ids: frozenset[int]  # EOS or padding: where a sample's generated tokens end
    stop_sequences: list[str]


@dataclass(frozen=True)
class SamplingPlan:
    """The batches of one sampling run, apart from the model: batch ``b`` holds
    ``items[b * batch_size:][:batch_size]`` and draws from its own seeded stream, so any
    process holding the same model generates the same batch (Ray replicas do)."""

    decoding: _Decoding
    encoded: list[list[int]]  # token ids per prompt row
    items: list[tuple[int, int]]  # (prompt row, sample), in batch order
    batch_size: int
    seed: int

    @property
    def n_batches(self) -> int:
        return -(-len(self.items) // self.batch_size)

    def batch(self, b: int) -> list[tuple[int, int]]:
        return self.items[b * self.batch_size : (b + 1) * self.batch_size]

    def generate(self, bundle: ModelBundle, b: int) -> dict[tuple[int, int], tuple[str, str, int]]:
        """Batch ``b`` generated by ``bundle``: each item's (completion, finish_reason,
        num_new_tokens)."""
        return _generate_batch(
            bundle, self.decoding, self.encoded, self.batch(b), _batch_seed(self.seed, b)
        )


Results = dict[tuple[int, int], tuple[str, str, int]]  # (row, sample) -> completion,
# finish reason, new tokens


class Replicas(Protocol):
    """Where ``sampling.backend: ray`` samples: replicas of the model on a cluster
    (``ilf_kedro.compute.ray_sampling.RaySampling``)."""

    @property
    def served(self) -> bool:
        """True: each replica serves the model (``sampling.server.command``) and is
        sampled through its endpoint (:meth:`serve`); False: :meth:`generate`."""
        ...

    def generate(self, bundle: ModelBundle, plan: SamplingPlan, store, progress: bool) -> Results:
        """Every batch of ``plan``: read from ``store`` (a ``ShardStore`` or None) when an
        earlier run finished it, else generated by the replicas and written to it."""
        ...

    def serve(self, model: str, sampling: Sampling, chunks, sample_chunk, keep, progress):
        """Sample every chunk of prompt rows from server replicas of ``model`` (see
        ``server_sampling.sample_with_server``: ``sample_chunk`` and ``keep``)."""
        ...


def _decoding_setup(
    bundle: ModelBundle, stop_sequences: list[str], settings: Sampling
) -> _Decoding:
    """The EOS/padding ids of the model and the generation config (greedy or nucleus)."""
    from transformers import GenerationConfig

    model, tokenizer = bundle.model, bundle.tokenizer
    eos_ids = {tokenizer.eos_token_id}
    gen_eos = getattr(model.generation_config, "eos_token_id", None)
    eos_ids |= set(gen_eos) if isinstance(gen_eos, list) else {gen_eos}
    eos_ids.discard(None)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else min(eos_ids)

    gen_kwargs = {
        # transformers ends each sequence at the first of these in its generated text;
        # the completion is cut before it afterwards (``_postprocess``).
        "stop_strings": stop_sequences or None,
        "max_new_tokens": settings.max_new_tokens,
        "pad_token_id": pad_id,
        "eos_token_id": sorted(eos_ids),
        "use_cache": True,
    }
    if settings.greedy:
        config = GenerationConfig(do_sample=False, **gen_kwargs)
    else:
        config = GenerationConfig(
            do_sample=True,
            temperature=settings.temperature,
            top_p=settings.top_p,
            top_k=0,
            **gen_kwargs,
        )
    return _Decoding(
        config=config,
        pad_id=pad_id,
        eos_ids=frozenset(eos_ids),
        end_ids=frozenset(eos_ids | {pad_id}),
        stop_sequences=stop_sequences,
    )


def _encode_prompts(
    bundle: ModelBundle, prompts: pd.DataFrame, max_new_tokens: int
) -> list[list[int]]:
    """Token ids per prompt, the start cut (with a warning) where prompt plus
    ``max_new_tokens`` would not fit the model's context."""
    model, tokenizer = bundle.model, bundle.tokenizer
    prompt_texts = prompts["prompt"].astype(str).tolist()
    encoded = [tokenizer(p)["input_ids"] for p in prompt_texts]
    context = context_length(model)
    if context is None:
        return encoded
    keep = context - max_new_tokens
    if keep < 1:
        raise ValueError(f"max_new_tokens={max_new_tokens} >= the context ({context})")
    n_cut = sum(len(ids) > keep for ids in encoded)
    if n_cut:
        logger.warning(
            "%d prompt(s) longer than %d tokens (context %d - max_new_tokens); their "
            "start is cut for generation (the prompt column keeps the full text).",
            n_cut,
            keep,
            context,
        )
        encoded = [ids[-keep:] for ids in encoded]
    return encoded


def _work_items(encoded: list[list[int]], copies: int) -> list[tuple[int, int]]:
    """(prompt row, sample) pairs, longest prompts first.

    Greedy decoding is deterministic, so it passes ``copies=1``: one generation per row.
    Longest first: batches of similar length waste little padding, and a memory error
    shows up on the first batch rather than the last.
    """
    items = [(row, k) for row in range(len(encoded)) for k in range(copies)]
    items.sort(key=lambda it: -len(encoded[it[0]]))
    return items


def _open_store(
    resume_dir: str | None,
    params: Mapping[str, Any],
    prompts: pd.DataFrame,
    bundle: ModelBundle,
    n_batches: int,
):
    """The shard store of this run under ``resume_dir`` (``None`` without one); logs how
    many batches an earlier run already finished."""
    if not resume_dir:
        return None
    from .shards import ShardStore

    store = ShardStore.for_sampling(resume_dir, params, prompts, bundle.model, bundle.tokenizer)
    finished = store.finished()
    if finished:
        logger.info(
            "Resuming sampling: %d of %d batches already done in %s",
            len(finished),
            n_batches,
            store.directory,
        )
    return store


def _generate_all(
    bundle: ModelBundle, plan: SamplingPlan, store, progress: bool
) -> dict[tuple[int, int], tuple[str, str, int]]:
    """Every work item's (completion, finish_reason, num_new_tokens), batch by batch:
    batches the store already holds are read back, the others generated and written."""
    model = bundle.model
    finished = store.finished() if store else set()
    results: dict[tuple[int, int], tuple[str, str, int]] = {}
    was_training = model.training
    model.eval()
    bar = tqdm(total=len(plan.items), desc="sampling", unit="seq", disable=not progress)
    try:
        for b in range(plan.n_batches):
            if b in finished:
                results.update(store.read(b))
            else:
                done = plan.generate(bundle, b)
                if store:
                    store.write(b, done)
                results.update(done)
            bar.update(len(plan.batch(b)))
    finally:
        bar.close()
        model.train(was_training)
    return results


def _generate_batch(
    bundle: ModelBundle,
    decoding: _Decoding,
    encoded: list[list[int]],
    batch: list[tuple[int, int]],
    batch_seed: int,
) -> dict[tuple[int, int], tuple[str, str, int]]:
    """One left-padded ``generate`` call under its own RNG stream; each item's result."""
    model, tokenizer, device = bundle.model, bundle.tokenizer, bundle.device
    width = max(len(encoded[row]) for row, _ in batch)
    input_ids = torch.full((len(batch), width), decoding.pad_id, dtype=torch.long)
    attention = torch.zeros((len(batch), width), dtype=torch.long)
    for i, (row, _) in enumerate(batch):
        ids = encoded[row]
        input_ids[i, width - len(ids) :] = torch.tensor(ids, dtype=torch.long)
        attention[i, width - len(ids) :] = 1
    input_ids, attention = input_ids.to(device), attention.to(device)
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(batch_seed)
        with torch.inference_mode():
            out = model.generate(
                input_ids=input_ids,
                attention_mask=attention,
                cache=_shared_prefill(model, input_ids, attention, batch),
                generation_config=decoding.config,
                tokenizer=tokenizer,  # stop_strings are matched on its tokens
            )
    return {
        item: _postprocess(
            out[i, width:].tolist(),
            tokenizer,
            decoding.end_ids,
            decoding.eos_ids,
            decoding.stop_sequences,
        )
        for i, item in enumerate(batch)
    }


def _shared_prefill(model, input_ids, attention, batch: list[tuple[int, int]]):
    """The KV cache of every row's prompt but its last token, computed once per distinct
    prompt and copied to its samples (``generate`` goes on from it); None when no prompt
    repeats. The samples of a prompt share their whole prompt, and its forward pass over
    a long prompt costs far more than the few tokens sampled after it."""
    rows = [row for row, _ in batch]
    slot = {row: i for i, row in enumerate(dict.fromkeys(rows))}  # prompt -> prefill row
    if len(slot) == len(rows) or input_ids.shape[1] < 2:
        return None
    first = torch.tensor([rows.index(row) for row in slot], device=input_ids.device)
    ids, mask = input_ids[first, :-1], attention[first, :-1]
    # Positions as ``generate`` numbers a left-padded prompt.
    positions = (mask.long().cumsum(-1) - 1).masked_fill(mask == 0, 0)
    # Only the cache is needed: logits for the last position alone, where the model can.
    last_only = (
        {"logits_to_keep": 1} if "logits_to_keep" in signature(model.forward).parameters else {}
    )
    cache = model(
        input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True, **last_only
    ).cache
    cache.reorder_cache(torch.tensor([slot[row] for row in rows], device=ids.device))
    return cache


def _postprocess(tokens, tokenizer, end_ids, eos_ids, stop_sequences):
    """Generated token ids -> (completion, finish_reason, num_new_tokens)."""
    end = next((j for j, t in enumerate(tokens) if t in end_ids), None)
    body = tokens if end is None else tokens[:end]
    hit_eos = end is not None and tokens[end] in eos_ids
    text = tokenizer.decode(body, skip_special_tokens=True, clean_up_tokenization_spaces=False)
    completion, was_cut = cut_completion(text, stop_sequences)
    reason = "stop" if was_cut else ("eos" if hit_eos else "length")
    return completion, reason, len(body) + int(hit_eos)

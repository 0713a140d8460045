"""The ``server`` sampling backend: the model's directory behind a local OpenAI-compatible
server (``vllm serve`` on GPUs, ``transformers serve`` on CPU), asked through the project's
endpoint client (``ilf_kedro.serving.client``: bounded concurrency, retries with backoff).

The server is started from ``server.command`` only when some prompts still need samples,
and always stopped, on failure too. While it runs, the in-process copy of the model waits
on the CPU so the server has the device's memory. Output: the same rows as the ``hf``
backend (``samples.assemble_output``); completions are cut at the first stop sequence on
the client as well, since not every server honours ``stop``. Differences a caller may see:
``num_new_tokens`` is -1 (not reported per sample), and ``finish_reason`` is ``stop`` for
EOS too (the OpenAI API does not tell EOS from a stop string).

Shards: groups of prompt rows, written under ``resume_dir`` like the ``hf`` backend's, so a
killed run asks the server only for what is missing.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from ilf_kedro.parameters import Sampling
from ilf_kedro.serving.client import Endpoint, Request, generate
from ilf_kedro.serving.server import ServedModel

from .loading import TINY_RANDOM, ModelBundle
from .samples import OUTPUT_COLUMNS, cut_completion

logger = logging.getLogger(__name__)

Result = tuple[str, str, int]
Chunk = tuple[int, int, int]  # shard index, first prompt row, end row


def servable_directory(bundle: ModelBundle, scratch: Path) -> str:
    """A directory (or hub id) the server can load ``bundle``'s weights from: where it
    was loaded from when that holds the same weights, else a copy saved into ``scratch``."""
    info = bundle.info
    loaded_from = info.get("loaded_from")
    if loaded_from and Path(loaded_from).is_dir() and not info.get("adapter_base"):
        return str(loaded_from)
    source = info.get("source")
    if source and source != TINY_RANDOM and not info.get("training_examples"):
        return str(source)
    from .io import save_bundle

    target = scratch / "model"
    save_bundle(bundle, target)
    return str(target)


def sample_with_server(
    bundle: ModelBundle,
    prompts: pd.DataFrame,
    sampling: Sampling,
    *,
    replicas=None,
    progress: bool = True,
) -> dict[tuple[int, int], Result]:
    """``(prompt row, sample) -> (completion, finish_reason, num_new_tokens)`` for every
    prompt row (sample 0 only when greedy), through a served copy of ``bundle``: one
    server here (``sampling.backend: server``), or server ``replicas`` on a cluster
    (``sampling.backend: ray``; ``ilf_kedro.models.sampling.Replicas``, ``served``)."""
    from .shards import ShardStore
    from .trainer import on_cpu_meanwhile

    server = sampling.server
    per_prompt = 1 if sampling.greedy else sampling.num_samples
    # A shard holds about batch_size samples: whole prompt rows.
    rows_per_shard = max(1, sampling.batch_size // per_prompt)
    chunks = [
        (index, start, min(start + rows_per_shard, len(prompts)))
        for index, start in enumerate(range(0, len(prompts), rows_per_shard))
    ]
    store = None
    if sampling.resume_dir:
        key_params = {**sampling.generation(), "server_command": server.command}
        store = ShardStore.for_sampling(
            sampling.resume_dir, key_params, prompts, bundle.model, bundle.tokenizer
        )
    finished = store.finished() if store else set()
    results: dict[tuple[int, int], Result] = {}
    for index in finished:
        results.update(store.read(index))
    pending = [chunk for chunk in chunks if chunk[0] not in finished]
    if finished:
        logger.info(
            "Resuming sampling: %d of %d batches already done in %s",
            len(finished),
            len(chunks),
            store.directory,
        )
    if not pending:
        return results

    frame = prompts[["task_id", "prompt"]].reset_index(drop=True)
    per_request = sampling.model_copy(update={"num_samples": per_prompt})

    def sample_chunk(base_url: str, model: str, chunk: Chunk, bar: bool) -> dict:
        """One chunk's samples from the server at ``base_url`` serving ``model``."""
        endpoint = Endpoint(
            base_url=base_url,
            model=model,
            api="completions",
            max_concurrency=server.max_concurrency,
            max_retries=server.max_retries,
            timeout_s=server.timeout_s,
        )
        _, start, stop = chunk
        samples = sample_from_endpoint(endpoint, frame.iloc[start:stop], per_request, progress=bar)
        return {
            (start + offset // per_prompt, int(row.sample_idx)): (
                row.completion,
                row.finish_reason,
                int(row.num_new_tokens),
            )
            for offset, row in enumerate(samples.itertuples(index=False))
        }

    def keep(chunk: Chunk, done: dict) -> None:
        if store:
            store.write(chunk[0], done)
        results.update(done)

    with (
        tempfile.TemporaryDirectory(prefix="ilf_serve_") as scratch,
        on_cpu_meanwhile(bundle.model),
    ):
        model_dir = servable_directory(bundle, Path(scratch))
        if replicas is not None:
            replicas.serve(model_dir, sampling, pending, sample_chunk, keep, progress)
            return results
        served = ServedModel(
            command=server.command,
            model=model_dir,
            health_path=server.health_path,
            startup_timeout_s=server.startup_timeout_s,
            log_path=server.log_path,
        )
        with served:
            logger.info("Sampling through %s (%s)", served.base_url, server.command)
            for chunk in pending:
                keep(chunk, sample_chunk(served.base_url, model_dir, chunk, progress))
    return results


def sample_from_endpoint(
    endpoint: Endpoint,
    prompts: pd.DataFrame,
    sampling: Sampling,
    *,
    credentials: Mapping[str, Any] | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """The local sampler's contract (``ilf_kedro.models.sample_programs``) through an
    endpoint: ``num_samples`` rows per prompt row with ``completion`` cut at the first stop
    sequence (also client-side: not every server honours ``stop``), ``program`` = prompt +
    completion (callers that prompt with more than the task prompt rebuild it),
    ``finish_reason`` and ``num_new_tokens`` (-1: the server does not say per sample)."""
    request = Request(
        n=sampling.num_samples,
        temperature=sampling.temperature,
        top_p=sampling.top_p,
        max_tokens=sampling.max_new_tokens,
        stop=tuple(s for s in sampling.stop_sequences if s),
        seed=sampling.seed,
    )
    texts = list(prompts["prompt"])
    answers = generate(
        endpoint, texts, request, credentials=credentials, progress=progress, description="samples"
    )
    rows = []
    for row, samples in zip(prompts.to_dict("records"), answers, strict=True):
        for index, sample in enumerate(samples):
            completion, cut = cut_completion(sample.text, request.stop)
            rows.append(
                {
                    **row,
                    "sample_idx": index,
                    "completion": completion,
                    "program": row["prompt"] + completion,
                    "finish_reason": "stop" if cut else sample.finish_reason,
                    "num_new_tokens": -1,
                }
            )
    extra = [c for c in prompts.columns if c not in OUTPUT_COLUMNS]
    return pd.DataFrame(rows, columns=OUTPUT_COLUMNS + extra)

"""The ``server`` sampling backend: the model's directory behind a local OpenAI-compatible
server (``vllm serve`` on GPUs, ``transformers serve`` on CPU), asked through the project's
endpoint client (``ilf_kedro.endpoints``: bounded concurrency, retries with backoff).

The server is started from ``server.command`` only when some prompts still need samples,
and always stopped, on failure too. While it runs, the in-process copy of the model waits
on the CPU so the server has the device's memory. Output: the same rows as the ``hf``
backend (``sampling.assemble_output``); completions are cut at the first stop sequence on
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

from .loading import TINY_RANDOM, ModelBundle

logger = logging.getLogger(__name__)

SERVER_DEFAULTS: dict[str, Any] = {
    # {model}: the model directory; {host}, {port}: where the server must listen.
    "command": "transformers serve {model} --host {host} --port {port}",
    "health_path": "/health",
    "startup_timeout_s": 300.0,
    "max_concurrency": 8,
    "max_retries": 4,
    "timeout_s": 600.0,
    "log_path": None,
}

Result = tuple[str, str, int]


def check_server_params(server: Mapping[str, Any]) -> dict[str, Any]:
    """``SERVER_DEFAULTS`` updated with ``server``; names a bad ``sampling.server`` key."""
    unknown = set(server) - set(SERVER_DEFAULTS)
    if unknown:
        raise ValueError(
            f"Unknown sampling.server key(s) {sorted(unknown)}; allowed: {sorted(SERVER_DEFAULTS)}"
        )
    settings = {**SERVER_DEFAULTS, **server}
    command = str(settings["command"])
    for field in ("{model}", "{port}"):
        if field not in command:
            raise ValueError(
                f"sampling.server.command must contain {field} (and may use {{host}}), "
                f"got {command!r}"
            )
    return settings


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
    params: Mapping[str, Any],
    server: Mapping[str, Any],
    *,
    resume_dir: str | None = None,
    progress: bool = True,
) -> dict[tuple[int, int], Result]:
    """``(prompt row, sample) -> (completion, finish_reason, num_new_tokens)`` for every
    prompt row (sample 0 only when greedy), through a served copy of ``bundle``."""
    from ilf_kedro.endpoints import Endpoint, ServedModel, sample_from_endpoint

    from .shards import ShardStore
    from .trainer import on_cpu_meanwhile

    settings = check_server_params(server)
    greedy = params["temperature"] is None or float(params["temperature"]) <= 0.0
    per_prompt = 1 if greedy else int(params["num_samples"])
    # A shard holds about batch_size samples: whole prompt rows.
    rows_per_shard = max(1, int(params["batch_size"]) // per_prompt)
    chunks = [
        (index, start, min(start + rows_per_shard, len(prompts)))
        for index, start in enumerate(range(0, len(prompts), rows_per_shard))
    ]
    store = None
    if resume_dir:
        key_params = {**params, "server_command": settings["command"]}
        store = ShardStore.for_sampling(
            resume_dir, key_params, prompts, bundle.model, bundle.tokenizer
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
    with (
        tempfile.TemporaryDirectory(prefix="ilf_serve_") as scratch,
        on_cpu_meanwhile(bundle.model),
    ):
        model_dir = servable_directory(bundle, Path(scratch))
        served = ServedModel(
            command=settings["command"],
            model=model_dir,
            health_path=settings["health_path"],
            startup_timeout_s=float(settings["startup_timeout_s"]),
            log_path=settings["log_path"],
        )
        with served:
            logger.info("Sampling through %s (%s)", served.base_url, settings["command"])
            endpoint = Endpoint(
                base_url=served.base_url,
                model=model_dir,
                api="completions",
                max_concurrency=int(settings["max_concurrency"]),
                max_retries=int(settings["max_retries"]),
                timeout_s=float(settings["timeout_s"]),
            )
            for index, start, stop in pending:
                samples = sample_from_endpoint(
                    endpoint,
                    frame.iloc[start:stop],
                    num_samples=per_prompt,
                    temperature=float(params["temperature"] or 0.0),
                    top_p=float(params["top_p"]),
                    max_new_tokens=int(params["max_new_tokens"]),
                    stop_sequences=params["stop_sequences"],
                    seed=int(params["seed"]),
                    progress=progress,
                )
                done = {
                    (start + offset // per_prompt, int(row.sample_idx)): (
                        row.completion,
                        row.finish_reason,
                        int(row.num_new_tokens),
                    )
                    for offset, row in enumerate(samples.itertuples(index=False))
                }
                if store:
                    store.write(index, done)
                results.update(done)
    return results

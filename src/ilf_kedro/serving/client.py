"""OpenAI-compatible endpoints: one client for every stage that asks a served model.

The LLM feedback source, the few-shot refiner behind an endpoint and the ``server``
sampling backend all talk to a model through :func:`generate`. It uses the ``openai``
package (its built-in retries with exponential backoff, timeouts and error types), sends
requests from a bounded thread pool, and caches every response on disk by (endpoint,
model, API, prompt, settings, sample index) so a re-run pays for nothing it already has.
A local server for a model lives in :mod:`ilf_kedro.serving.server`.

No Kedro import: plain library code.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from ilf_kedro import parameters
from ilf_kedro.infra.atomic import write_text_atomic

logger = logging.getLogger(__name__)

API_KEY_ENV = parameters.API_KEY_ENV
# The endpoint parameters' defaults are the client's (one source: the schema).
_DEFAULTS = parameters.Endpoint()
# Local servers (transformers serve, vLLM without --api-key) accept any key; the openai
# client insists on one.
NO_KEY = "no-key"


class EndpointError(RuntimeError):
    """An endpoint that stays unreachable or answers with an error; names the URL."""


@dataclass(frozen=True)
class Endpoint:
    """Where and how to ask a served model.

    ``api``: ``chat`` (``/v1/chat/completions``, the prompt is one user message) or
    ``completions`` (``/v1/completions``, raw text). ``max_concurrency`` bounds the
    requests in flight; ``max_retries`` and ``timeout_s`` go to the openai client, which
    retries connection errors, 408/409/429 and 5xx with exponential backoff.
    """

    base_url: str
    model: str
    api: str = _DEFAULTS.api
    max_concurrency: int = _DEFAULTS.max_concurrency
    max_retries: int = _DEFAULTS.max_retries
    timeout_s: float = _DEFAULTS.timeout_s
    cache_dir: str | None = None

    @classmethod
    def from_settings(cls, settings: parameters.Endpoint) -> Endpoint:
        """The client for validated endpoint parameters (``base_url`` and ``model`` set:
        the schema's rules check that wherever an endpoint is used)."""
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in settings.model_dump().items() if k in known})


@dataclass(frozen=True)
class Request:
    """What is asked for each prompt: ``n`` samples with these settings.

    Sample ``i`` is its own request with ``seed + i`` (many servers ignore ``n``, and
    per-sample requests make each sample cacheable on its own).
    """

    n: int = 1
    temperature: float = 0.0
    top_p: float = 1.0
    max_tokens: int = 256
    stop: tuple[str, ...] = ()
    seed: int = 0
    system_prompt: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Completion:
    """One sample: its text and why generation ended (``stop``, ``length``...)."""

    text: str
    finish_reason: str


def resolve_api_key(credentials: Mapping[str, Any] | None = None) -> str:
    """The API key: Kedro credentials ``openai.api_key``, else ``$OPENAI_API_KEY``, else a
    placeholder that local servers accept."""
    from_credentials = ((credentials or {}).get("openai") or {}).get("api_key")
    return from_credentials or os.environ.get(API_KEY_ENV) or NO_KEY


class ResponseCache:
    """One JSON file per (endpoint, model, api, prompt, settings, sample) under ``root``.

    Writes are atomic (temporary file, then rename), so a run killed mid-way keeps every
    response it had received and never leaves a half-written entry.
    """

    def __init__(self, root: str | Path | None):
        self.root = Path(root) if root else None

    @staticmethod
    def key(endpoint: Endpoint, request: Request, prompt: str, sample: int) -> str:
        identity = {
            "base_url": endpoint.base_url.rstrip("/"),
            "model": endpoint.model,
            "api": endpoint.api,
            "prompt": prompt,
            "request": {**asdict(request), "n": None, "seed": request.seed + sample},
        }
        blob = json.dumps(identity, sort_keys=True, default=list)
        return hashlib.sha256(blob.encode()).hexdigest()

    def get(self, key: str) -> Completion | None:
        if self.root is None:
            return None
        path = self.root / key[:2] / f"{key}.json"
        if not path.is_file():
            return None
        return Completion(**json.loads(path.read_text()))

    def put(self, key: str, completion: Completion) -> None:
        if self.root is None:
            return
        folder = self.root / key[:2]
        folder.mkdir(parents=True, exist_ok=True)
        write_text_atomic(folder / f"{key}.json", json.dumps(asdict(completion)))


def _client(endpoint: Endpoint, api_key: str):
    from openai import OpenAI

    return OpenAI(
        base_url=endpoint.base_url,
        api_key=api_key,
        max_retries=endpoint.max_retries,
        timeout=endpoint.timeout_s,
    )


def _ask(client, endpoint: Endpoint, request: Request, prompt: str, sample: int) -> Completion:
    """One request for sample ``sample`` of ``prompt``."""
    import openai

    settings = {
        "model": endpoint.model,
        "temperature": request.temperature,
        "top_p": request.top_p,
        "max_tokens": request.max_tokens,
        "seed": request.seed + sample,
        **({"stop": list(request.stop)} if request.stop else {}),
        **({"extra_body": request.extra} if request.extra else {}),
    }
    try:
        if endpoint.api == "chat":
            messages = [{"role": "user", "content": prompt}]
            if request.system_prompt:
                messages.insert(0, {"role": "system", "content": request.system_prompt})
            response = client.chat.completions.create(messages=messages, **settings)
            choice = response.choices[0]
            text = choice.message.content or ""
        else:
            response = client.completions.create(prompt=prompt, **settings)
            choice = response.choices[0]
            text = choice.text or ""
    except openai.APIConnectionError as err:
        raise EndpointError(
            f"endpoint {endpoint.base_url} is unreachable after {endpoint.max_retries} "
            f"retries with backoff ({err}); responses received so far are cached"
        ) from err
    except openai.APIStatusError as err:
        raise EndpointError(
            f"endpoint {endpoint.base_url} answered HTTP {err.status_code} for model "
            f"{endpoint.model!r} ({endpoint.api} API): {err.message}"
        ) from err
    return Completion(text=text, finish_reason=str(choice.finish_reason or ""))


def generate(
    endpoint: Endpoint,
    prompts: Sequence[str],
    request: Request,
    *,
    credentials: Mapping[str, Any] | None = None,
    progress: bool = True,
    description: str = "endpoint",
) -> list[list[Completion]]:
    """``request.n`` completions for each prompt, in prompt order.

    Cached responses are reused; the others are requested with at most
    ``endpoint.max_concurrency`` in flight and cached as they arrive. The first request
    that still fails after the client's retries stops the whole call with an
    :class:`EndpointError` naming the URL (responses already received stay cached).
    """
    cache = ResponseCache(endpoint.cache_dir)
    jobs = [(i, s) for i in range(len(prompts)) for s in range(request.n)]
    keys = {job: cache.key(endpoint, request, prompts[job[0]], job[1]) for job in jobs}
    results: dict[tuple[int, int], Completion] = {}
    for job in jobs:
        cached = cache.get(keys[job])
        if cached is not None:
            results[job] = cached
    missing = [job for job in jobs if job not in results]
    logger.info(
        "%s: %d request(s) to %s (%s, model %r), %d from the cache",
        description,
        len(missing),
        endpoint.base_url,
        endpoint.api,
        endpoint.model,
        len(jobs) - len(missing),
    )
    if missing:
        client = _client(endpoint, resolve_api_key(credentials))

        def run(job):
            completion = _ask(client, endpoint, request, prompts[job[0]], job[1])
            cache.put(keys[job], completion)
            return job, completion

        bar = tqdm(total=len(missing), desc=description, disable=not progress)
        with ThreadPoolExecutor(max_workers=max(1, int(endpoint.max_concurrency))) as pool:
            futures = [pool.submit(run, job) for job in missing]
            try:
                for future in futures:
                    job, completion = future.result()
                    results[job] = completion
                    bar.update()
            finally:
                for future in futures:
                    future.cancel()
                bar.close()
    return [[results[(i, s)] for s in range(request.n)] for i in range(len(prompts))]

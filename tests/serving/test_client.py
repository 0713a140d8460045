"""The OpenAI-compatible client against a real server on loopback (transformers serve)."""

from __future__ import annotations

import pytest

from ilf_kedro.infra.ports import free_port
from ilf_kedro.serving.client import (
    Endpoint,
    EndpointError,
    Request,
    ResponseCache,
    generate,
    resolve_api_key,
)
from ilf_kedro.serving.server import ServedModel


def _endpoint(server, tmp_path, api="completions", **kwargs) -> Endpoint:
    return Endpoint(
        base_url=server.base_url,
        model=server.model,
        api=api,
        cache_dir=str(tmp_path / "cache"),
        **kwargs,
    )


@pytest.mark.parametrize("api", ["completions", "chat"])
def test_generate_returns_n_samples_per_prompt_from_a_real_server(tiny_server, tmp_path, api):
    endpoint = _endpoint(tiny_server, tmp_path, api=api, max_concurrency=2)
    request = Request(n=2, temperature=0.8, max_tokens=8, seed=3)
    out = generate(endpoint, ["def add(a, b):", "def sub(a, b):"], request, progress=False)
    assert [len(samples) for samples in out] == [2, 2]
    assert all(isinstance(c.text, str) and c.finish_reason for s in out for c in s)
    assert any(c.text for s in out for c in s)


@pytest.mark.slow  # starts and stops a server of its own
def test_a_rerun_is_served_from_the_disk_cache_even_with_the_server_gone(tiny_model_dir, tmp_path):
    from tests.conftest import SERVE_COMMAND

    prompts = ["def mul(a, b):"]
    request = Request(n=2, temperature=0.8, max_tokens=6, seed=1)
    with ServedModel(SERVE_COMMAND, str(tiny_model_dir)) as server:
        endpoint = _endpoint(server, tmp_path)
        first = generate(endpoint, prompts, request, progress=False)
    assert server.process.poll() is not None  # stopped on leaving the block
    again = generate(endpoint, prompts, request, progress=False)  # no server now
    assert again == first
    # Another setting is another cache entry: it needs the (gone) server.
    with pytest.raises(EndpointError, match=server.base_url):
        generate(endpoint, prompts, Request(n=1, max_tokens=7), progress=False)


def test_an_unreachable_endpoint_names_its_url_and_keeps_the_cache(tmp_path):
    url = f"http://127.0.0.1:{free_port()}/v1"
    endpoint = Endpoint(
        base_url=url, model="m", max_retries=1, timeout_s=2, cache_dir=str(tmp_path)
    )
    cached = ResponseCache(tmp_path)
    cached.put(cached.key(endpoint, Request(), "cached prompt", 0), _completion("kept"))
    with pytest.raises(EndpointError, match=f"{url}.*unreachable"):
        generate(endpoint, ["cached prompt", "new prompt"], Request(), progress=False)
    assert generate(endpoint, ["cached prompt"], Request(), progress=False)[0][0].text == "kept"


def _completion(text):
    from ilf_kedro.serving.client import Completion

    return Completion(text=text, finish_reason="stop")


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ("nothing", r"feedback.llm is 'nothing': Input should be a valid dictionary"),
        ({"model": "m"}, "feedback.llm.base_url is not set"),
        ({"base_url": "http://x/v1"}, "feedback.llm.model is not set"),
        ({"base_url": "u", "model": "m", "api": "rest"}, "'rest': .*'chat' or 'completions'"),
        ({"base_url": "u", "model": "m", "api_key": "sk"}, "llm.api_key .*credentials.yml"),
    ],
)
def test_bad_endpoint_settings_name_the_parameter(params, message):
    """The endpoint's rules live in the feedback section's schema (``feedback.llm``)."""
    from ilf_kedro.parameters import Feedback, section

    templates = {"feedback_template": "{program}", "refinement_template": "{feedback}"}
    if isinstance(params, dict):
        params = {**templates, **params}
    with pytest.raises(ValueError, match=message):
        section(Feedback, {"source": "llm", "llm": params}, "feedback")


def test_the_api_key_comes_from_credentials_then_the_environment(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "from-env")
    assert resolve_api_key({"openai": {"api_key": "from-credentials"}}) == "from-credentials"
    assert resolve_api_key({}) == "from-env"
    monkeypatch.delenv("OPENAI_API_KEY")
    assert resolve_api_key(None) == "no-key"

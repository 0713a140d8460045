"""Served models (plain Python, no Kedro): the OpenAI-compatible client with its retries
and disk cache (``client``) and a local server's lifecycle (``server``)."""

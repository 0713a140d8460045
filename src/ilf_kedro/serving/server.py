"""A local OpenAI-compatible server (``transformers serve``, ``vllm serve``...) as a context
manager: started from a command template, healthy before use, always stopped.

No Kedro import: plain library code.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from ilf_kedro import parameters
from ilf_kedro.infra.commands import resolve_argv
from ilf_kedro.infra.ports import free_port
from ilf_kedro.serving.client import EndpointError

# The ``sampling.server`` parameters' defaults are the server's (one source: the schema).
_DEFAULTS = parameters.Server()


@dataclass
class ServedModel:
    """A local OpenAI-compatible server for a model, as a context manager.

    ``command`` is a template with ``{model}``, ``{host}`` and ``{port}``, for example
    ``transformers serve {model} --host {host} --port {port}`` or
    ``vllm serve {model} --host {host} --port {port}``. Entering starts it in its own
    process group, polls ``health_path`` until it answers 200 (or the process dies, or
    ``startup_timeout_s`` passes) and yields ``base_url``; leaving always stops the group
    (SIGTERM, then SIGKILL). The server's output goes to ``log_path``.
    """

    command: str
    model: str
    host: str = "127.0.0.1"
    port: int | None = None
    health_path: str = _DEFAULTS.health_path
    startup_timeout_s: float = _DEFAULTS.startup_timeout_s
    log_path: str | None = _DEFAULTS.log_path
    parameter: str = "sampling.server.command"  # where the command is configured
    process: subprocess.Popen | None = field(default=None, init=False, repr=False)
    _temporary_log: str | None = field(default=None, init=False, repr=False)

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def __enter__(self) -> ServedModel:
        self.port = self.port or free_port(self.host)
        argv = shlex.split(self.command.format(model=self.model, host=self.host, port=self.port))
        argv = resolve_argv(argv, parameter=self.parameter)
        if self.log_path:
            sink = open(self.log_path, "ab")  # noqa: SIM115 - closed below, once Popen has it
        else:
            # Our own log: removed after a clean stop, kept when the server fails.
            fd, self.log_path = tempfile.mkstemp(prefix="served-model-", suffix=".log")
            sink, self._temporary_log = os.fdopen(fd, "ab"), self.log_path
        with sink:
            self.process = subprocess.Popen(
                argv, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True
            )
        try:
            self._wait_until_healthy()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, exc_type, *exc) -> None:
        self.stop()
        if exc_type is None and self._temporary_log:
            Path(self._temporary_log).unlink(missing_ok=True)
            self.log_path = self._temporary_log = None

    def _wait_until_healthy(self) -> None:
        url = f"http://{self.host}:{self.port}{self.health_path}"
        deadline = time.monotonic() + self.startup_timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise EndpointError(
                    f"server `{self.command}` for {self.model} exited with code "
                    f"{self.process.returncode} before {url} was healthy; its log: "
                    f"{self.log_path}\n{self._log_tail()}"
                )
            with (
                contextlib.suppress(urllib.error.URLError, ConnectionError, TimeoutError),
                urllib.request.urlopen(url, timeout=2) as response,
            ):
                if response.status == 200:
                    return
            time.sleep(0.5)
        raise EndpointError(
            f"server for {self.model} was not healthy at {url} within "
            f"{self.startup_timeout_s:.0f} s; its log: {self.log_path}\n{self._log_tail()}"
        )

    def _log_tail(self, chars: int = 2000) -> str:
        try:
            return Path(self.log_path).read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def stop(self) -> None:
        """Stop the server's process group; safe to call twice."""
        if self.process is None or self.process.poll() is not None:
            return
        for sig, wait_s in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, sig)
            try:
                self.process.wait(timeout=wait_s)
                return
            except subprocess.TimeoutExpired:
                continue

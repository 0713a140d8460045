"""External commands are found next to the interpreter first, then on PATH."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from ilf_kedro.infra.commands import CommandNotFoundError, find_command, resolve_argv
from ilf_kedro.serving.server import ServedModel
from tests.conftest import PROJECT_ROOT, SERVE_COMMAND

# A PATH without the interpreter's directory: what a scheduler or `venv/bin/kedro run`
# from a shell that never activated the venv gives the process.
BARE_PATH = "/usr/bin:/bin"


def test_a_command_beside_the_interpreter_wins_over_path(tmp_path, monkeypatch):
    decoy = tmp_path / "transformers"
    decoy.write_text("#!/bin/sh\n")
    decoy.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{BARE_PATH}")
    beside = Path(sys.executable).parent / "transformers"
    assert beside.is_file(), "transformers[serving] is a dev dependency"
    assert find_command("transformers", parameter="p") == str(beside)


def test_a_command_found_only_on_path_is_used(tmp_path, monkeypatch):
    tool = tmp_path / "ilf-test-only-tool"
    tool.write_text("#!/bin/sh\n")
    tool.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{BARE_PATH}")
    assert resolve_argv(["ilf-test-only-tool", "-x"], parameter="p") == [str(tool), "-x"]


def test_a_missing_server_command_names_the_parameter_and_the_install(monkeypatch):
    monkeypatch.setenv("PATH", BARE_PATH)
    served = ServedModel("vllm serve {model} --port {port}", "some/model")
    with pytest.raises(CommandNotFoundError) as err:
        served.__enter__()
    message = str(err.value)
    assert "`vllm`" in message and "sampling.server.command" in message
    assert "pip install vllm" in message
    assert served.process is None  # nothing was started


@pytest.mark.slow
def test_server_backend_runs_from_a_process_whose_path_lacks_the_venv(tiny_model_dir):
    script = textwrap.dedent(
        f"""
        import pandas as pd
        from ilf_kedro.models import load_model, sample_programs

        bundle = load_model({str(tiny_model_dir)!r}, device="cpu")
        prompts = pd.DataFrame({{"task_id": [1], "prompt": ["def f(x):\\n"]}})
        out = sample_programs(
            bundle, prompts, num_samples=1, temperature=0, max_new_tokens=4,
            backend="server", server={{"command": {SERVE_COMMAND!r}}}, progress=False,
        )
        print("ROWS", len(out))
        """
    )
    env = {**os.environ, "PATH": BARE_PATH, "PYTHONPATH": str(PROJECT_ROOT / "src")}
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "ROWS 1" in done.stdout

"""A local server's lifecycle: a failed start is reported with its log, and no start leaks
a descriptor or a file."""

from __future__ import annotations

import os

import pytest

from ilf_kedro.serving.client import EndpointError
from ilf_kedro.serving.server import ServedModel


def test_a_server_that_dies_at_startup_is_reported_with_its_log(temp_folder):
    server = ServedModel("python -c 'import sys; print(\"boom {model}\"); sys.exit(3)'", "x")
    with pytest.raises(EndpointError, match="exited with code 3") as raised:
        server.__enter__()
    (log,) = temp_folder.iterdir()  # kept, named in the error with what the server wrote
    assert str(log) in str(raised.value) and "boom x" in str(raised.value)
    assert log.read_text() == "boom x\n"


def _open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_starting_a_server_leaves_no_descriptor_and_no_log_behind(temp_folder):
    before = _open_descriptors()
    for _ in range(3):
        dying = ServedModel("python -c 'import sys; sys.exit(3)' {model} {port}", "x")
        with pytest.raises(EndpointError, match=str(temp_folder)):  # the log it keeps
            dying.__enter__()
    assert _open_descriptors() == before
    assert len(list(temp_folder.iterdir())) == 3
    command = "python -m http.server {port} --bind {host} --directory " + str(temp_folder / "www")
    (temp_folder / "www").mkdir()
    for _ in range(2):
        with ServedModel(command, "x", health_path="/", startup_timeout_s=60):
            pass
    assert _open_descriptors() == before
    assert len(list(temp_folder.iterdir())) == 4  # the three failed starts' logs and www/

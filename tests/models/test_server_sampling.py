"""The ``server`` sampling backend against ``hf``: a tiny model directory served by
``transformers serve`` on loopback."""

import logging
import shutil

import pandas as pd
import pytest

from ilf_kedro.models import sample_programs
from ilf_kedro.serving.client import EndpointError

pytestmark = pytest.mark.skipif(
    shutil.which("transformers") is None, reason="the transformers CLI is not installed"
)

GREEDY = {"num_samples": 2, "temperature": 0, "max_new_tokens": 24, "progress": False}


@pytest.mark.slow  # samples through a served model and in process
def test_server_backend_gives_the_hf_backends_rows_and_stop_semantics(
    tiny_bundle, prompts, tmp_path, caplog
):
    # A stop sequence the model is known to produce: the middle of hf's first completion.
    first = sample_programs(tiny_bundle, prompts, **GREEDY, stop_sequences=[])
    stop = first["completion"][0][6:9]
    hf = sample_programs(tiny_bundle, prompts, **GREEDY, stop_sequences=[stop])

    def serve():
        with caplog.at_level(logging.INFO, logger="ilf_kedro.models.server_sampling"):
            return sample_programs(
                tiny_bundle,
                prompts,
                **GREEDY,
                stop_sequences=[stop],
                backend="server",
                resume_dir=str(tmp_path),
            )

    served = serve()
    assert "Sampling through http://127.0.0.1:" in caplog.text
    # Same schema: columns, order and dtypes, the carried column included.
    assert list(served.columns) == list(hf.columns)
    assert served.dtypes.equals(hf.dtypes)
    # Same stop semantics: greedy decoding of the same weights, cut before the stop.
    same = ["task_id", "sample_idx", "prompt", "completion", "program", "split"]
    pd.testing.assert_frame_equal(served[same], hf[same])
    assert (hf["finish_reason"] == "stop").any()
    assert not served["completion"].str.contains(stop, regex=False).any()
    assert served["finish_reason"].tolist() == hf["finish_reason"].replace("eos", "stop").tolist()

    # Every shard is written: a re-run reads them and starts no server.
    caplog.clear()
    again = serve()
    assert "Sampling through" not in caplog.text
    pd.testing.assert_frame_equal(again, served)


def test_a_server_that_dies_fails_the_sampling_with_its_exit(tiny_bundle, prompts, temp_folder):
    server = {"command": "python -c 'import sys; sys.exit(3)' {model} {port}"}
    with pytest.raises(EndpointError, match="exited with code 3") as raised:
        sample_programs(tiny_bundle, prompts, **GREEDY, backend="server", server=server)
    (log,) = temp_folder.iterdir()  # the model's copy is gone; the log, named, is kept
    assert log.name.startswith("served-model-") and str(log) in str(raised.value)


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ({"backend": "vllm"}, "sampling.backend"),
        ({"backend": "server", "server": {"cmd": "x"}}, "sampling.server"),
        ({"backend": "server", "server": {"command": "serve {model}"}}, "{port}"),
    ],
)
def test_bad_backend_settings_are_named(tiny_bundle, prompts, settings, named):
    with pytest.raises(ValueError, match=named.replace(".", r"\.").replace("{", r"\{")):
        sample_programs(tiny_bundle, prompts, **GREEDY, **settings)

"""Sampling in shards: resume after a kill with identical output; never mix configurations."""

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch

from ilf_kedro.models import load_model, sample_programs
from tests.conftest import PROJECT_ROOT
from tests.kedro_project import catalog_path, copy_project, load, run_pipeline

SAMPLING = {
    "num_samples": 3,
    "temperature": 0.8,
    "max_new_tokens": 12,
    "batch_size": 2,
    "seed": 0,
    "progress": False,
}


def _shard_dirs(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.is_dir()) if root.exists() else []


def test_sharded_sampling_resumes_with_identical_output(tiny_bundle, prompts, tmp_path, caplog):
    plain = sample_programs(tiny_bundle, prompts, **SAMPLING)
    first = sample_programs(tiny_bundle, prompts, resume_dir=str(tmp_path), **SAMPLING)
    pd.testing.assert_frame_equal(first, plain)  # sharding does not change the samples
    (store,) = _shard_dirs(tmp_path)
    batches = sorted(store.glob("batch-*.parquet"))
    assert len(batches) == 5  # 3 prompts x 3 samples in batches of 2
    assert not list(store.glob(".*"))  # no temporary files left

    # Lose two batches, as a kill would; the rest is read back, not generated again.
    kept = {p: p.stat().st_mtime_ns for p in batches[:3]}
    for p in batches[3:]:
        p.unlink()
    with caplog.at_level(logging.INFO, logger="ilf_kedro.models.sampling"):
        resumed = sample_programs(tiny_bundle, prompts, resume_dir=str(tmp_path), **SAMPLING)
    assert "Resuming sampling: 3 of 5 batches already done" in caplog.text
    assert {p: p.stat().st_mtime_ns for p in kept} == kept
    pd.testing.assert_frame_equal(resumed, plain)


@pytest.mark.parametrize(
    "change",
    ["temperature", "prompts", "model", "stop_sequences"],
)
def test_changed_parameters_prompts_or_model_get_their_own_shards(
    tiny_bundle, prompts, tmp_path, change
):
    sample_programs(tiny_bundle, prompts, resume_dir=str(tmp_path), **SAMPLING)
    bundle, frame, params = tiny_bundle, prompts, dict(SAMPLING)
    if change == "temperature":
        params["temperature"] = 0.5
    elif change == "prompts":
        frame = prompts.assign(prompt=prompts["prompt"] + "    ")
    elif change == "model":
        bundle = load_model("tiny-random", device="cpu", seed=1)
    else:
        params["stop_sequences"] = ["\ndef "]
    out = sample_programs(bundle, frame, resume_dir=str(tmp_path), **params)
    assert len(_shard_dirs(tmp_path)) == 2
    pd.testing.assert_frame_equal(out, sample_programs(bundle, frame, **params))


# ---- a real `kedro run`, killed with SIGKILL in the middle of sampling -------------------

# An automatic feedback source, so `ilf` samples the base model (it does not for human).
KILL_PARAMS = {
    "feedback.source": "interpreter",
    "max_tasks_per_split": 3,
    "sampling.num_samples": 4,
    "sampling.batch_size": 1,
    "sampling.max_new_tokens": 24,
    "sampling.temperature": 0.8,
}
TO_NODES = "sample_zero_shot_programs"


# Loaded by the killed run's interpreter (its PYTHONPATH): the run stops itself (SIGSTOP)
# right after its third batch is on disk, so the test's SIGKILL lands mid-sampling at a
# known point whatever the machine's load, instead of racing the sampler.
STOP_AFTER_BATCHES = """
import os, signal
from ilf_kedro.models import shards

_write = shards.ShardStore.write


def _write_then_stop(self, batch, results):
    _write(self, batch, results)
    if len(self.finished()) >= {batches}:
        os.kill(os.getpid(), signal.SIGSTOP)


shards.ShardStore.write = _write_then_stop
"""


def _kedro_run(project: Path, stop_after_batches: int | None = None) -> subprocess.Popen:
    path = [str(PROJECT_ROOT / "src"), str(PROJECT_ROOT)]
    if stop_after_batches is not None:
        site = project / "stop_after_batches"
        site.mkdir()
        code = STOP_AFTER_BATCHES.format(batches=stop_after_batches)
        (site / "sitecustomize.py").write_text(code)
        path.insert(0, str(site))
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(path),
        "KEDRO_DISABLE_TELEMETRY": "true",
        "HF_HUB_OFFLINE": "1",
        "COLUMNS": "300",  # rich logging: one line per message
    }
    command = [sys.executable, "-m", "kedro", "run", "--env=demo"]
    command.append(f"--to-nodes={TO_NODES}")
    command.append("--params=" + ",".join(f"{k}={v}" for k, v in KILL_PARAMS.items()))
    return subprocess.Popen(
        command,
        cwd=project,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _stopped(pid: int) -> bool:
    """Whether process ``pid`` is stopped (state T in /proc/PID/stat)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "T"
    except (OSError, IndexError):
        return False


def _finish(proc: subprocess.Popen) -> str:
    output, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, output[-4000:]
    return output


@pytest.mark.slow
def test_killed_kedro_run_resumes_and_matches_an_uninterrupted_run(tmp_path):
    killed = copy_project(tmp_path / "killed")
    shards = killed / "data/07_model_output/.shards"
    proc = _kedro_run(killed, stop_after_batches=3)
    deadline = time.monotonic() + 300
    while proc.poll() is None and not _stopped(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _stopped(proc.pid), f"the run never reached its third batch:\n{_finish(proc)}"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not catalog_path(killed, "initial_samples").exists()
    done_before = {p: p.read_bytes() for p in shards.glob("*/batch-*.parquet")}
    (store,) = _shard_dirs(shards)
    total = len(load(killed, "initial_sampling_prompts"))
    assert len(done_before) == 3 < total * 4  # batch 1: one file per sample

    output = _finish(_kedro_run(killed))
    assert f"Resuming sampling: {len(done_before)} of {total * 4} batches" in output
    assert all(p.read_bytes() == data for p, data in done_before.items())  # not redone

    # The uninterrupted run in this process: the same run without a process of its own.
    fresh = copy_project(tmp_path / "fresh")
    run_pipeline(fresh, "__default__", params=KILL_PARAMS, to_nodes=[TO_NODES])
    resumed = load(killed, "initial_samples")
    uninterrupted = load(fresh, "initial_samples")
    pd.testing.assert_frame_equal(resumed, uninterrupted)
    assert len(resumed) == total * 4


def test_fingerprint_follows_the_weights_not_the_saving(tmp_path):
    from ilf_kedro.models import save_bundle
    from ilf_kedro.models.shards import model_fingerprint

    bundle = load_model("tiny-random", device="cpu", seed=0)
    before = model_fingerprint(bundle.model, bundle.tokenizer)
    save_bundle(bundle, tmp_path / "model")  # rewrites config.architectures and dtype
    assert model_fingerprint(bundle.model, bundle.tokenizer) == before
    with torch.no_grad():
        next(bundle.model.parameters()).view(-1)[0] += 1.0
    assert model_fingerprint(bundle.model, bundle.tokenizer) != before

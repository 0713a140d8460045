"""Connecting the Kedro process (the Ray driver) to the cluster of ``compute.address``.

``auto`` joins the cluster this machine belongs to (``ray start`` ran here), a
``ray://host:port`` address goes through Ray Client, ``host:port`` joins a head's GCS, and
an empty address starts a private local cluster for the run, stopped when the process
ends. Workers run this process's own ``ilf_kedro`` source (shipped with the job as a Ray
``py_modules`` entry), so nodes need only the environment, not the project checkout.
"""

from __future__ import annotations

import io
import logging
import os
import tarfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

# Settings the workers need to behave like this process (offline hubs, thread counts).
FORWARDED_ENV = (
    "HF_HUB_OFFLINE",
    "TRANSFORMERS_OFFLINE",
    "HF_DATASETS_OFFLINE",
    "HF_HOME",
    "OMP_NUM_THREADS",
)


def runtime_env() -> dict[str, Any]:
    """The job's runtime environment: this process's ``ilf_kedro`` package and the
    environment variables of ``FORWARDED_ENV`` that are set here."""
    import ilf_kedro

    env_vars = {k: os.environ[k] for k in FORWARDED_ENV if k in os.environ}
    return {
        "py_modules": [str(Path(ilf_kedro.__file__).resolve().parent)],
        "env_vars": env_vars,
        "excludes": ["__pycache__", "*.pyc"],
    }


def connect(address: str | None) -> None:
    """Connect this process to the Ray cluster at ``address`` (see the module docstring);
    a no-op when already connected. Raises ``RuntimeError`` naming the address when the
    cluster cannot be reached."""
    import ray

    if ray.is_initialized():
        return
    target = address or "local"
    try:
        ray.init(
            address=target,
            runtime_env=runtime_env(),
            include_dashboard=False if target == "local" else None,
            log_to_driver=True,
            logging_level=logging.WARNING,
            configure_logging=False,
        )
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise RuntimeError(
            f"could not connect to the Ray cluster at compute.address={address!r}: {exc}"
        ) from exc
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    logger.info(
        "Connected to Ray at %s: %d node(s), %s CPU, %s GPU",
        target,
        len(nodes),
        ray.cluster_resources().get("CPU", 0),
        ray.cluster_resources().get("GPU", 0),
    )


def pack(directory: Path) -> bytes:
    """``directory`` as tar bytes, to send a model directory with a job (nodes need no
    shared disk); :func:`unpack` restores it on a node."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        tar.add(directory, arcname=".")
    return buffer.getvalue()


def unpack(packed: bytes, directory: Path) -> Path:
    """The directory :func:`pack` packed, written to ``directory``."""
    with tarfile.open(fileobj=io.BytesIO(packed)) as tar:
        tar.extractall(directory, filter="data")
    return directory


def log_spread(done: str, nodes: Mapping[str, int], started: float) -> None:
    """One line on how a stage's shards spread over the cluster: ``done`` (what ran),
    the nodes that ran them with their counts, and the seconds since ``started``
    (``time.monotonic``)."""
    logger.info(
        "%s on %d Ray node(s) in %.1f s: %s",
        done,
        len(nodes),
        time.monotonic() - started,
        {node[:8]: n for node, n in nodes.items()},
    )

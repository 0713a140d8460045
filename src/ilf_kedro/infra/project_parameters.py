"""The project's parameters as ``kedro run`` resolves them, for benchmarks and command-line
tools: Kedro's own config loader (environments, ``${seed}`` interpolation, runtime params),
never the YAML files read raw."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def parse_params(spec: str | Sequence[str] | None) -> dict[str, Any]:
    """``"sampling.num_samples=2,seed=3"`` (``kedro run --params`` syntax) as a nested dict;
    values are read as YAML scalars, like Kedro's runtime params."""
    from omegaconf import OmegaConf

    items = spec.split(",") if isinstance(spec, str) else list(spec or [])
    items = [item.strip() for item in items if item.strip()]
    for item in items:
        if "=" not in item:
            raise ValueError(f"--params: {item!r} is not KEY=VALUE (e.g. sampling.num_samples=2)")
    return OmegaConf.to_container(OmegaConf.from_dotlist(items), resolve=True)


def load_parameters(
    env: str | None = None, params: str | Sequence[str] | None = None, project_path=None
) -> dict[str, Any]:
    """Every parameter of the project in ``env`` with ``params`` applied on top."""
    from kedro.framework.project import settings
    from kedro.framework.startup import bootstrap_project
    from kedro.utils import find_kedro_project

    root = Path(project_path) if project_path else find_kedro_project(Path.cwd())
    if root is None:
        raise FileNotFoundError(
            f"{Path.cwd()} is not inside a Kedro project: run this from the ilf-kedro checkout"
        )
    bootstrap_project(root)
    loader = settings.CONFIG_LOADER_CLASS(
        conf_source=str(root / settings.CONF_SOURCE),
        env=env,
        runtime_params=parse_params(params),
        **settings.CONFIG_LOADER_ARGS,
    )
    return loader["parameters"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``--env`` and ``--params``, as ``kedro run`` spells them."""
    parser.add_argument("--env", default=None, help="Kedro environment (default: local)")
    parser.add_argument(
        "--params", default=None, help="runtime parameters, e.g. sampling.num_samples=2,seed=3"
    )

"""A project's datasets through its catalog as a Kedro session builds it (no hard-coded
file paths), for benchmarks and tests that read the outputs of runs."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any


def project_catalog(project_path: Path, env: str | None = None):
    """The catalog of the project at ``project_path`` in ``env``. A session's context reads
    and checks every configuration file and sets up tracking (~0.7 s), so the catalog is
    built once per state of ``conf/`` (each file's path, mtime and size) and again when a
    file there changes."""
    files = sorted(path for path in (Path(project_path) / "conf").rglob("*") if path.is_file())
    state = tuple((str(path), (stat := path.stat()).st_mtime_ns, stat.st_size) for path in files)
    return _catalog(Path(project_path), env, state)


@functools.cache
def _catalog(project_path: Path, env: str | None, conf_state: tuple):
    del conf_state  # part of the cache key only
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    bootstrap_project(project_path)
    with KedroSession.create(project_path=project_path, env=env) as session:
        return session.load_context().catalog


def load_dataset(project_path: Path, name: str, env: str | None = None) -> Any:
    """Dataset ``name`` of the project as it is on disk now."""
    from kedro.io import MemoryDataset

    catalog = project_catalog(project_path, env)
    if not isinstance(catalog.get(name), MemoryDataset):  # parameters live in memory only
        catalog.release(name)  # a versioned dataset looks for its latest version again
    return catalog.load(name)

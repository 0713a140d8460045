"""External commands the project starts (``transformers serve``, ``vllm serve``,
``label-studio``, ``ray start``), found the way users run things: next to the running
interpreter first (a venv that is not activated, a scheduler calling ``venv/bin/kedro``),
then on ``PATH``."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

# What installs each command the project knows; anything else: "install it".
INSTALLS = {
    "transformers": 'pip install -e ".[dev]" (transformers[serving])',
    "vllm": "pip install vllm (on a GPU machine)",
    "ray": 'pip install -e ".[ray]"',
    "label-studio": (
        "python -m venv .venv-label-studio && "
        ".venv-label-studio/bin/pip install label-studio==1.23.2"
    ),
}


class CommandNotFoundError(FileNotFoundError):
    """An external command is neither next to the interpreter nor on PATH."""


def find_command(name: str, *, parameter: str, extra_dirs: Sequence[Path] = ()) -> str:
    """The path of executable ``name``: as given when it has a directory part, else next to
    ``sys.executable``, then on ``PATH``, then in ``extra_dirs``.

    Raises :class:`CommandNotFoundError` naming the command, the ``parameter`` that
    configures it and the install that provides it.
    """
    if os.sep in name:
        return name
    beside = Path(sys.executable).parent / name
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which(name) or next(
        (
            str(d / name)
            for d in extra_dirs
            if (d / name).is_file() and os.access(d / name, os.X_OK)
        ),
        None,
    )
    if found:
        return found
    raise CommandNotFoundError(
        f"command `{name}` (set by {parameter}) was found neither next to the running "
        f"Python ({beside.parent}) nor on PATH; install it with: "
        f"{INSTALLS.get(name, f'an install that provides `{name}`')}, or set {parameter} "
        "to a full path"
    )


def resolve_argv(argv: Sequence[str], *, parameter: str) -> list[str]:
    """``argv`` with its program replaced by :func:`find_command`'s path."""
    if not argv:
        raise ValueError(f"{parameter} is empty: it must name a command")
    return [find_command(argv[0], parameter=parameter), *argv[1:]]

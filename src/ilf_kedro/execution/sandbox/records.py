"""The records the harness and the sandbox server exchange, and the limits both sides share.

The harness writes a job file (a :class:`Config`, ``{task_id: TaskSpec}`` and a list of
:class:`Job`, each record a JSON object with its field names); the server answers on its
stdout with JSON lines: ``{"hello": isolation report}``, one :class:`ProgramRun` per job,
``{"done": true}``. What a program's process writes on its report pipe (the ``reports`` of
a ProgramRun) is described in :mod:`.child`; the values in it are encoded by :mod:`.wire`.
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

# Unprivileged uids for programs when the server runs as root. Each server locks a block
# of UID_BLOCK uids (one per program slot) for as long as it runs, so harnesses running at
# once never share a uid. The range sits above systemd's container range (524288 to
# 1879048191) and below 2**31, where no distribution allocates users.
UID_BASE = 1_900_000_000
UID_BLOCK = 1024
UID_BLOCKS = 4096

CALL, ASSERT = "call", "assert"
READY = {"ready": True}  # a child's first record once the program is about to run


@dataclasses.dataclass(frozen=True)
class Config:
    """Limits and isolation choices for one server (sent by the harness)."""

    workers: int  # CPU-bound programs at once
    max_inflight: int  # programs at once, idle and demoted ones included
    memory_mb: int  # RLIMIT_AS per program
    max_processes: int  # RLIMIT_NPROC per program
    max_file_mb: int  # RLIMIT_FSIZE; a program's /tmp holds at most 4x this
    max_message_chars: int  # bound on exception messages
    max_output_chars: int  # captured stdout+stderr kept per program (0: none)
    max_result_bytes: int  # largest encoding of all checks' values of one program
    namespaces: bool  # use Linux namespaces when available


class Check(NamedTuple):
    """One assert as the program's process sees it.

    CALL: ``source`` is a tuple display of the expressions whose values the harness needs
    (the calls of the program in the assert); the process evaluates it and hands the
    values back. ASSERT: ``source`` is a whole statement, run in the program's process,
    which reports only whether it raised.
    """

    kind: str
    source: str


class TaskSpec(NamedTuple):
    """What the program's process may know of a task: no expected values."""

    setup: str
    checks: tuple  # of Check
    tolerant: bool = True  # ASSERT checks compare numbers with a tolerance (MBPP's scripts)


class Job(NamedTuple):
    row: int
    task_id: str
    program: str
    time_limit_s: float


class ProgramRun(NamedTuple):
    """What the server saw of one program; the harness judges it.

    ``reports`` is what the program's process wrote on its report pipe (JSON lines,
    bounded): after the child's own first record (:data:`READY`), claims, trusted only as
    far as the harness's judge trusts them.
    """

    row: int
    reports: str
    ended: str  # exited | signaled | timeout | vanished | unknown_task
    code: int  # exit code (exited) or signal number (signaled)
    duration_s: float
    time_limit_s: float

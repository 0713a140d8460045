"""The program's side: a forked child isolates itself, runs the program and its checks.

Everything here runs in the child, after the fork and before (or while) the program
runs, so it is the program's to tamper with: nothing it reports is trusted by itself.
What it writes on its report pipe (fd 3, JSON lines; see :func:`run_checks`) starts with
the child's own :data:`~.records.READY` record, written once isolation is in place and
before the program runs; a run without it never ran the program.
"""

from __future__ import annotations

import _thread
import contextlib
import io
import json
import math
import os
import resource
import signal
import sys
from typing import NamedTuple

from .linux import (
    LIBC,
    PR_SET_KEEPCAPS,
    PR_SET_NO_NEW_PRIVS,
    PR_SET_PDEATHSIG,
    ChildIsolation,
    isolate_program,
    keep_only_read_caps,
)
from .records import ASSERT, CALL, READY, Config, Job, TaskSpec
from .semantics import APPROX_NAME, approx_eq, compile_test
from .wire import BeyondLimits, encode_value


class CompiledTask(NamedTuple):
    """A TaskSpec compiled once in the server, for all of the task's programs."""

    setup_code: object  # code object
    checks: list  # of (kind, code object)


def compile_task(spec: TaskSpec) -> CompiledTask:
    """Compile a task's setup and checks; a part that does not compile raises when run."""
    try:
        setup_code = compile(spec.setup or "", "<test_setup_code>", "exec", optimize=0)
    except SyntaxError:
        setup_code = compile("raise SyntaxError('test_setup_code does not compile')", "<x>", "exec")
    checks = []
    for i, (kind, source) in enumerate(spec.checks):
        name = f"<test {i}>"
        try:
            if kind == CALL:
                code = compile(source, name, "eval", dont_inherit=True, optimize=0)
            else:
                code = compile_test(source, name, spec.tolerant)
        except SyntaxError:
            kind = ASSERT
            code = compile("raise SyntaxError('the test does not compile')", name, "exec")
        checks.append((kind, code))
    return CompiledTask(setup_code, checks)


# --------------------------------------------------------------------------- child side


class BoundedSink(io.TextIOBase):
    """A text stream that keeps the first ``limit`` characters written and drops the rest."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.parts: list[str] = []
        self.size = 0
        self.limit = limit

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False

    def write(self, s: str) -> int:
        s = str(s)
        if self.size < self.limit:
            keep = s[: self.limit - self.size]
            self.parts.append(keep)
            self.size += len(keep)
        return len(s)

    def getvalue(self) -> str:
        return "".join(self.parts)


def _bounded(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 15] + " ...[truncated]"


def _raised(exc: BaseException, filename: str, limit: int) -> dict:
    """An exception as a report: its type, bounded message and where it was raised
    (innermost line of the program, else of ``filename``)."""
    if isinstance(exc, SystemExit):
        return {
            "raised": "SystemExit",
            "message": _bounded(f"exit({exc.code!r}) before all asserts ran", limit),
            "where": None,
        }
    try:
        msg = str(exc)
    except Exception:
        msg = "<unprintable>"
    where = None
    tb = exc.__traceback__
    while tb is not None:  # no traceback import: it would slow every child's error path
        name = tb.tb_frame.f_code.co_filename
        if name == "<program>":
            where = f"program line {tb.tb_lineno}"
        elif name == filename and (where is None or not where.startswith("program")):
            where = f"line {tb.tb_lineno}"
        tb = tb.tb_next
    if isinstance(exc, SyntaxError) and exc.filename == filename:
        where = f"line {exc.lineno}"
    return {"raised": type(exc).__name__, "message": _bounded(msg, limit), "where": where}


def _report(record: dict) -> None:
    _write((json.dumps(record) + "\n").encode("utf-8", "replace"))


def _write(data: bytes) -> None:
    view = memoryview(data)
    while view:  # a pipe takes a large record in parts
        view = view[os.write(3, view) :]


def run_checks(program: str, task: CompiledTask, cfg: Config) -> None:
    """Run the program, the setup code and each check in one namespace, reporting on fd 3:
    ``{"stage", "raised", ...}`` if the program or setup raised; per check ``{"check": i,
    "value": tokens}`` (the values of a CALL check's expressions, see :mod:`.wire`),
    ``{"check": i, "refused": why}`` (values beyond the harness's limits: all checks'
    values together at most ``max_result_bytes``),
    ``{"check": i, "ok": true}`` (an in-process assert held) or
    ``{"check": i, "raised", ...}`` (and stop); ``{"end": true}`` once all checks ran."""
    g: dict = {"__name__": "__main__", "__builtins__": __builtins__}
    limit = cfg.max_message_chars
    stage, filename = "program", "<program>"
    try:
        code = compile(program, filename, "exec", dont_inherit=True, optimize=0)
        exec(code, g)
        stage, filename = "test_setup_code", "<test_setup_code>"
        exec(task.setup_code, g)
    except BaseException as exc:
        _report({"stage": stage, **_raised(exc, filename, limit)})
        return
    g[APPROX_NAME] = approx_eq
    budget = cfg.max_result_bytes
    for i, (kind, code) in enumerate(task.checks):
        try:
            if kind == CALL:
                values = eval(code, g)
                try:
                    text = encode_value(values, budget)
                except BeyondLimits as exc:
                    _report({"check": i, "refused": str(exc)})
                    return
                budget -= len(text)
                _write(f'{{"check": {i}, "value": {text}}}\n'.encode())
                continue
            exec(code, g)
        except BaseException as exc:
            _report({"check": i, **_raised(exc, f"<test {i}>", limit)})
            return
        _report({"check": i, "ok": True})
    _report({"end": True})


# Signals whose default action kills the process. PID 1 of a namespace ignores them when
# they come from inside the namespace (e.g. os.kill(os.getpid(), SIGTERM)), so a program
# running as PID 1 gets handlers that emulate the default death instead.
_FATAL_SIGNALS = tuple(
    getattr(signal, name)
    for name in ("SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGALRM", "SIGVTALRM")
    if hasattr(signal, name)
)


def _emulate_fatal_signals(me: int) -> None:
    """Handlers in PID 1 only. A process the program forks must not inherit them: a
    Python handler runs only between bytecodes, so a signal landing just before a
    blocking call is held until that call returns, which may be never. That hung
    ``multiprocessing.Pool``: its ``terminate()`` holds the task queue's lock and sends
    SIGTERM to workers about to wait on it (about 1 run in 10). So a fork resets them to
    the default, with the signals blocked across it so that none is caught in between."""

    def die(signum, frame):
        if os.getpid() != me:  # forked without the at-fork hooks (a C library's fork)
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        _report({"signal": signal.Signals(signum).name})
        os._exit(0)

    # Each forking thread's mask before its fork, put back as it was on both sides: a
    # signal the program blocked itself stays blocked.
    saved: dict = {}

    def block() -> None:
        saved[_thread.get_ident()] = signal.pthread_sigmask(signal.SIG_BLOCK, _FATAL_SIGNALS)

    def unblock() -> None:
        mask = saved.pop(_thread.get_ident(), None)
        if mask is not None:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)

    def default_in_child() -> None:
        for sig in _FATAL_SIGNALS:
            if signal.getsignal(sig) is die:  # a handler of the program's own stays
                signal.signal(sig, signal.SIG_DFL)
        unblock()  # a signal sent meanwhile is delivered now, with its default action

    for sig in _FATAL_SIGNALS:
        if signal.getsignal(sig) == signal.SIG_DFL:
            signal.signal(sig, die)
    os.register_at_fork(before=block, after_in_parent=unblock, after_in_child=default_in_child)


# The environment every program gets, plus HOME and TMPDIR (its working directory). The
# server sets it for itself once (see :func:`_set_base_environment`), so a child only adds
# the two per-program entries: every Python object a child touches costs it a copy-on-write
# page fault, and rebuilding the whole mapping touched about a hundred pages.
BASE_ENV = {
    "PATH": "/usr/local/bin:/usr/bin:/bin",
    "LANG": "C.UTF-8",
    "LC_ALL": "C.UTF-8",
    "PYTHONIOENCODING": "utf-8",
}
_DEVNULL = -1  # the server's /dev/null descriptor, opened once by prepare_server_stdio()


def _set_base_environment() -> None:
    os.environ.clear()
    os.environ.update(BASE_ENV)


def prepare_server_stdio() -> None:
    """Once per server: the base environment, a /dev/null descriptor for children's fd
    0-2, and ``sys.stdin`` reading fd 0 (/dev/null in every child), so that children do
    not each build these again."""
    global _DEVNULL
    _set_base_environment()
    _DEVNULL = os.open(os.devnull, os.O_RDWR)
    os.dup2(_DEVNULL, 0)
    sys.stdin = open(0, closefd=False)  # noqa: SIM115 - lives as long as the server


def run_child(
    job: Job,
    task: CompiledTask,
    cfg: Config,
    iso: ChildIsolation,
    report_fd: int,
    scratch,
    uid,
    slot: int,
) -> None:
    """Body of a forked child. Never returns: always ends in os._exit."""
    me = os.getpid()
    try:
        os.setsid()
        isolate_program(iso, slot, uid, 4 * cfg.max_file_mb)  # while its descriptors are open
    except BaseException as exc:
        _sandbox_failed(report_fd, exc, cfg.max_message_chars)
    try:
        devnull = _DEVNULL if _DEVNULL >= 0 else os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(devnull, fd)
        os.dup2(report_fd, 3)
        os.closerange(4, 1 << 16)
        cpu = int(math.ceil(job.time_limit_s)) + 1
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
        for res, value in iso.rlimits:
            resource.setrlimit(res, value)
        if scratch is None:
            scratch = "/tmp"
        os.chdir(scratch)
        if _DEVNULL < 0:  # not started through main(): rebuild the environment here
            _set_base_environment()
        os.environ["HOME"] = scratch
        os.environ["TMPDIR"] = scratch
        if LIBC is not None:
            # setuid binaries must not give the program privileges back.
            LIBC.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
        if uid is not None:
            if iso.keep_read_caps:
                LIBC.prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0)
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
            if iso.keep_read_caps and not keep_only_read_caps():
                raise OSError("capset failed")
        if LIBC is not None:
            # After setuid (which clears it): die with the server, whatever happens to it.
            LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        sink = BoundedSink(cfg.max_output_chars)
        sys.stdout = sys.stderr = sink
        if _DEVNULL < 0:  # else sys.stdin already reads fd 0, which is /dev/null
            sys.stdin = open(os.devnull)  # noqa: SIM115 - lives until os._exit
        sys.argv = ["program.py"]
        if me == 1:
            _emulate_fatal_signals(me)
        # The first record: isolation is in place and the program is about to run. The
        # program can only write after it, so a run without it never ran the program.
        _report(READY)
        run_checks(job.program, task, cfg)
        if os.getpid() == me and cfg.max_output_chars:  # a fork made by the program: quiet
            _report({"output": sink.getvalue()})
    except BaseException as exc:  # the sandbox itself failed (programs' errors are reports)
        _sandbox_failed(3, exc, cfg.max_message_chars)
    os._exit(0)


def _sandbox_failed(fd: int, exc: BaseException, limit: int) -> None:
    """Report that the sandbox, not the program, failed (a first record only the child can
    write, see :data:`READY`), and end the child."""
    with contextlib.suppress(BaseException):
        message = _bounded(f"{type(exc).__name__}: {exc}", limit)
        os.write(fd, (json.dumps({"sandbox": message}) + "\n").encode("utf-8", "replace"))
    os._exit(0)

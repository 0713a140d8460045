"""Sandbox fork server: runs untrusted programs against unit tests, one forked child each.

This file is executed as a standalone script (``python -I -S _sandbox.py JOBFILE``) by
:mod:`ilf_kedro.execution.harness`; it imports only the standard library and nothing of the
programs it runs, so every child starts from the same clean, warm interpreter (a fork costs
about a millisecond, a fresh interpreter about 20 ms).

Protocol. JOBFILE (JSON, deleted once read) holds a :class:`Config`, ``{task_id:
TaskSpec}`` and a list of :class:`Job`, each record as a JSON object with its field
names. Stdout carries JSON lines: ``{"hello": isolation report}``, then one
:class:`ProgramRun` object per job, then ``{"done": true}``. The server judges nothing:
the harness turns each ProgramRun into a verdict.

Why a program cannot forge a verdict. A :class:`TaskSpec` is all of a task that reaches
this process, and it never holds an expected value: for an assert of the form
``assert CALL == EXPECTED`` the harness sends a ``call`` :class:`Check` with the source of
CALL only and keeps EXPECTED (a literal) to itself. The child evaluates CALL and writes the
result, encoded by :func:`encode_plain` (exact built-in types only, size-bounded), to its
report pipe; the harness decodes it into fresh built-in objects and compares them with
EXPECTED in its own process. So:

- a result whose ``__eq__`` always says True is not plain data and is refused (a failed
  test), and nothing the program returns is ever asked to compare itself;
- the comparison helpers the program can reach (in its copy of this process) take no part
  in the comparison, so patching them changes nothing;
- whatever the program writes, to the report pipe or any other descriptor it can open,
  is at most a claim about what CALL returned (the first claim per assert counts, and a
  claim of any other shape is a failure). A forged claim passes only if it holds the
  expected value, which is in no memory, message or file this process has: the server
  never had it, and the harness that has it runs as root while the program runs under a
  uid of its own that can neither read the harness's memory nor open its descriptors.
  There are no tokens to steal: knowing the value is the only way to pass.

What this does not cover: without root the program runs under the harness's uid and
could read the harness's memory (a warning says so), and a program that can read the
dataset's files (or was trained on them) can look the answers up, as any solver could.

Asserts of any other form (``kind="assert"``) still run in the program's process with
the float-tolerant comparison (:func:`compile_test`); their verdicts are marked untrusted
by the harness.

Isolation, strongest available first (each step degrades on its own, with a warning):

- the server enters new mount, network, IPC and UTS namespaces once (no network, a
  private tmpfs over /tmp, /var/tmp and /dev/shm); if Python lives under a directory the
  sandbox uids cannot enter (e.g. a pyenv in /root), that directory is covered by an empty
  tmpfs in which only Python's own directories are bind-mounted back, read-only, at their
  original paths, so every lazily imported module (``encodings.cp1252``, ``json.tool``...)
  loads as in a normal interpreter while the rest of that directory stays hidden;
- each program gets its own mount namespace with a fresh, empty tmpfs as /tmp (also bound
  over /var/tmp and /dev/shm), which is its working directory and HOME: nothing one
  program leaves there is visible to another;
- each program is PID 1 of its own PID namespace, so when it exits or is killed the kernel
  kills every process it started, daemons included;
- as root, each running program gets its own unprivileged uid/gid (``UID_BASE + slot``),
  so it cannot signal the harness or touch root-owned files, and RLIMIT_NPROC is per
  program;
- rlimits for address space, CPU time, processes, file size, open files and core dumps;
- stdin is /dev/null, stdout/stderr are captured in memory up to a bound (fd 1 and 2 point
  at /dev/null), the environment is rebuilt from scratch;
- the wall-clock limit is enforced by this server with SIGKILL, which no program can catch.

Without namespaces (``namespaces=False`` or an unprivileged harness) programs share the
host's /tmp; as root the server removes what a program's uid left there when it ends, and
the working directory is still a private scratch directory.

The helpers :func:`rewrite_asserts` and :func:`approx_eq` are importable (the benchmark's
baselines use them) and define the test semantics: ``assert X == Y`` compares numbers with
a relative tolerance like ``pytest.approx`` (rel 1e-6, abs 1e-12).
"""

from __future__ import annotations

import ast
import collections
import contextlib
import dataclasses
import gc
import io
import json
import math
import numbers
import os
import resource
import select
import shutil
import signal
import sys
import time
from collections import deque
from typing import NamedTuple

APPROX_NAME = "__ilf_approx_eq__"
REL_TOL = 1e-6
ABS_TOL = 1e-12

# Modules that MBPP-style programs import most; preloading them once in the server makes
# each child's `import` a dictionary lookup. They hold no program state. Modules with
# at-fork hooks (threading, random, and tempfile/statistics which import random) are left
# out on purpose: their hooks cost 0.2-0.5 ms in every forked child.
PRELOAD = (
    "re",
    "math",
    "cmath",
    "collections",
    "heapq",
    "itertools",
    "functools",
    "operator",
    "bisect",
    "array",
    "copy",
    "datetime",
    "string",
    "decimal",
    "fractions",
    "typing",
)

# Unprivileged uids for sandboxed programs when running as root: UID_BASE + slot. Debian
# policy reserves 65000-65533 and never allocates them, so no real user owns files there.
UID_BASE = 65000
YOUNG_S = 0.01  # a program this young has not yet shown whether it is CPU-bound
# A program still running after this fraction of its limit (and at least 1 s; the gold
# program needs at most 1/factor of it) is reniced and stops counting as busy.
DEMOTE_FRACTION = 0.5
DEMOTE_NICE = 10
MAX_NESTING = 100  # deepest plain-data result a call may hand back

# clone(2) and mount(2) flags
CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_REMOUNT = 32
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18
MNT_DETACH = 2
PR_SET_PDEATHSIG = 1
PR_SET_KEEPCAPS = 8
PR_SET_NO_NEW_PRIVS = 38
CAP_DAC_READ_SEARCH = 2
_LINUX_CAPABILITY_VERSION_3 = 0x20080522

# --------------------------------------------------------------------------- records


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
    max_result_bytes: int  # largest encoded result of one call
    namespaces: bool  # use Linux namespaces when available


class Check(NamedTuple):
    """One assert as the program's process sees it."""

    kind: str  # CALL: evaluate ``source`` (an expression) and report its value; ASSERT:
    source: str  # run ``source`` (a whole assert) in-process and report whether it held


CALL, ASSERT = "call", "assert"
READY = {"ready": True}  # a child's first record once the program is about to run


class TaskSpec(NamedTuple):
    """What the program's process may know of a task: no expected values."""

    setup: str
    checks: list  # of Check


class CompiledTask(NamedTuple):
    """A TaskSpec compiled once in the server, for all of the task's programs."""

    setup_code: object  # code object
    checks: list  # of (kind, code object)


class ChildIsolation(NamedTuple):
    """What every forked child applies to itself before running the program."""

    rlimits: list  # of (resource, (soft, hard))
    keep_read_caps: bool  # keep CAP_DAC_READ_SEARCH (Python not otherwise readable)


class Job(NamedTuple):
    row: int
    task_id: str
    program: str
    time_limit_s: float


class ProgramRun(NamedTuple):
    """What the server saw of one program; the harness judges it.

    ``reports`` is what the program's process wrote on its report pipe (JSON lines,
    bounded): claims, trusted only as far as the harness's judge trusts them.
    """

    row: int
    reports: str
    ended: str  # exited | signaled | timeout | vanished | unknown_task
    code: int  # exit code (exited) or signal number (signaled)
    duration_s: float
    time_limit_s: float


# --------------------------------------------------------------------------- test semantics


def _is_number(x: object) -> bool:
    return isinstance(x, numbers.Number) and not isinstance(x, bool)


def _close(actual: object, expected: object) -> bool:
    """pytest.approx-like closeness for numbers, recursing into lists, tuples and dicts."""
    if _is_number(actual) and _is_number(expected):
        try:
            if actual == expected:
                return True
            if isinstance(expected, complex) or isinstance(actual, complex):
                scale = abs(expected)
            else:
                if math.isinf(expected) or math.isnan(expected):
                    return False
                scale = abs(expected)
            return bool(abs(actual - expected) <= max(REL_TOL * scale, ABS_TOL))
        except Exception:
            return False
    if type(actual) is type(expected) and isinstance(actual, (list, tuple)):
        return len(actual) == len(expected) and all(
            _eq_or_close(a, e) for a, e in zip(actual, expected, strict=True)
        )
    if isinstance(actual, dict) and isinstance(expected, dict):
        return actual.keys() == expected.keys() and all(
            _eq_or_close(actual[k], expected[k]) for k in expected
        )
    return False


def _eq_or_close(a: object, e: object) -> bool:
    try:
        if a == e:
            return True
    except Exception:
        return False
    return _close(a, e)


def approx_eq(actual: object, expected: object) -> bool:
    """``actual == expected``, except that numbers may differ by rel 1e-6 (abs 1e-12).

    Exact equality is tried first with the original semantics (so e.g. an ambiguous numpy
    truth value still raises, as the plain assert would); only when it is False are numbers,
    and lists/tuples/dicts of numbers, compared with tolerance.
    """
    if actual == expected:
        return True
    return _close(actual, expected)


class _AssertRewriter(ast.NodeTransformer):
    def visit_Assert(self, node: ast.Assert) -> ast.Assert:
        test = node.test
        if (
            isinstance(test, ast.Compare)
            and len(test.ops) == 1
            and isinstance(test.ops[0], ast.Eq)
            and len(test.comparators) == 1
        ):
            func = ast.copy_location(ast.Name(id=APPROX_NAME, ctx=ast.Load()), test)
            call = ast.Call(func=func, args=[test.left, test.comparators[0]], keywords=[])
            node.test = ast.copy_location(call, test)
        return node


def compile_test(source: str, filename: str):
    """Compile one test snippet with its ``assert X == Y`` made float-tolerant."""
    tree = _AssertRewriter().visit(ast.parse(source))
    return compile(tree, filename, "exec", dont_inherit=True, optimize=0)


def rewrite_asserts(source: str) -> str:
    """Return ``source`` with every ``assert X == Y`` rewritten to call the tolerant helper.

    The helper must be bound to the global name ``__ilf_approx_eq__`` when the rewritten
    code runs. Source that does not parse is returned unchanged (it will fail on its own).
    """
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return source
    tree = ast.fix_missing_locations(_AssertRewriter().visit(tree))
    return ast.unparse(tree)


# --------------------------------------------------------------------------- plain data


class NotPlainData(ValueError):
    """A call's result that cannot be handed back as plain data (the reason says why)."""


# Mapping classes of the standard library whose values compare with a dict as the dict
# of their items does; they are read through dict's own methods and handed back as dicts.
_DICT_LIKE = (dict, collections.Counter, collections.OrderedDict, collections.defaultdict)


def encode_plain(value: object, max_bytes: int) -> str:
    """JSON text for ``value`` if it is plain data, else raise :class:`NotPlainData`.

    Plain data: objects whose type is exactly int, float, complex, bool, str, bytes,
    NoneType, list, tuple, set, frozenset or dict (or Counter/OrderedDict/defaultdict,
    sent as a dict), nested at most ``MAX_NESTING`` deep, at most ``max_bytes`` encoded.
    JSON objects are used only as type tags, so the harness's decoder rebuilds exactly
    these types. Subclasses are refused: their methods are the program's code.
    """
    budget = [max_bytes]  # elements still allowed; each costs at least one byte

    def enc(v: object, depth: int):
        if depth > MAX_NESTING:
            raise NotPlainData(f"nested deeper than {MAX_NESTING} levels")
        budget[0] -= 1
        if budget[0] < 0:
            raise NotPlainData(f"larger than {max_bytes} bytes of plain data")
        t = type(v)
        if t is str or t is int or t is bool or t is float or v is None:
            return v
        if t is list:
            return [enc(x, depth + 1) for x in v]
        if t is tuple:
            return {"tuple": [enc(x, depth + 1) for x in v]}
        if t is set or t is frozenset:
            return {t.__name__: [enc(x, depth + 1) for x in v]}
        if t in _DICT_LIKE:
            items = dict.items(v)
            return {"dict": [[enc(k, depth + 1), enc(x, depth + 1)] for k, x in items]}
        if t is bytes:
            return {"bytes": v.hex()}
        if t is complex:
            return {"complex": [v.real, v.imag]}
        name = f"{t.__module__}.{t.__qualname__}" if t.__module__ != "builtins" else t.__name__
        raise NotPlainData(f"an object of type {name!r}, which is not plain data")

    try:
        text = json.dumps(enc(value, 0))
    except (ValueError, RecursionError, MemoryError) as exc:  # e.g. a 5,000-digit int
        raise NotPlainData(str(exc) or type(exc).__name__) from None
    if len(text) > max_bytes:
        raise NotPlainData(f"larger than {max_bytes} bytes of plain data")
    return text


# --------------------------------------------------------------------------- child side


class _BoundedSink(io.TextIOBase):
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
    os.write(3, (json.dumps(record) + "\n").encode("utf-8", "replace"))


def _run_checks(program: str, task: CompiledTask, cfg: Config) -> None:
    """Run the program, the setup code and each check in one namespace, reporting on fd 3:
    ``{"stage", "raised", ...}`` if the program or setup raised; per check ``{"check": i,
    "value": json}`` (a call's plain result), ``{"check": i, "refused": why}`` (a result
    that is not plain data), ``{"check": i, "ok": true}`` (an in-process assert held) or
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
    for i, (kind, code) in enumerate(task.checks):
        try:
            if kind == CALL:
                value = eval(code, g)
                try:
                    record = {"check": i, "value": encode_plain(value, cfg.max_result_bytes)}
                except NotPlainData as exc:
                    record = {"check": i, "refused": str(exc)}
            else:
                exec(code, g)
                record = {"check": i, "ok": True}
        except BaseException as exc:
            _report({"check": i, **_raised(exc, f"<test {i}>", limit)})
            return
        _report(record)
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
    def die(signum, frame):
        if os.getpid() != me:  # a process forked by the program is not PID 1
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        _report({"signal": signal.Signals(signum).name})
        os._exit(0)

    for sig in _FATAL_SIGNALS:
        if signal.getsignal(sig) == signal.SIG_DFL:
            signal.signal(sig, die)


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
_DEVNULL = -1  # the server's /dev/null descriptor, opened once by _prepare_server_stdio()


def _set_base_environment() -> None:
    os.environ.clear()
    os.environ.update(BASE_ENV)


def _prepare_server_stdio() -> None:
    """Once per server: the base environment, a /dev/null descriptor for children's fd
    0-2, and ``sys.stdin`` reading fd 0 (/dev/null in every child), so that children do
    not each build these again."""
    global _DEVNULL
    _set_base_environment()
    _DEVNULL = os.open(os.devnull, os.O_RDWR)
    os.dup2(_DEVNULL, 0)
    sys.stdin = open(0, closefd=False)  # noqa: SIM115 - lives as long as the server


def _private_tmp(uid, tmp_mb: int) -> None:
    """Give this child its own mount namespace with a fresh tmpfs as /tmp (bound over
    /var/tmp and /dev/shm too), owned by the program's uid."""
    if _LIBC.unshare(CLONE_NEWNS) != 0:
        raise OSError(f"unshare(CLONE_NEWNS): {_errno_text()}")
    owner = f",uid={uid},gid={uid}" if uid is not None else ""
    opts = f"size={tmp_mb}m,mode=0700{owner}".encode()
    if _LIBC.mount(b"tmpfs", b"/tmp", b"tmpfs", MS_NOSUID | MS_NODEV, opts) != 0:
        raise OSError(f"mount tmpfs on /tmp: {_errno_text()}")
    for d in (b"/var/tmp", b"/dev/shm"):
        _LIBC.mount(b"/tmp", d, None, MS_BIND, None)  # absent directories: no matter


def _child(
    job: Job, task: CompiledTask, cfg: Config, iso: ChildIsolation, report_fd: int, scratch, uid
) -> None:
    """Body of a forked child. Never returns: always ends in os._exit."""
    me = os.getpid()
    try:
        os.setsid()
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
            _private_tmp(uid, 4 * cfg.max_file_mb)
            scratch = "/tmp"
        os.chdir(scratch)
        if _DEVNULL < 0:  # not started through main(): rebuild the environment here
            _set_base_environment()
        os.environ["HOME"] = scratch
        os.environ["TMPDIR"] = scratch
        if _LIBC is not None:
            # setuid binaries must not give the program privileges back.
            _LIBC.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
        if uid is not None:
            if iso.keep_read_caps:
                _LIBC.prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0)
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
            if iso.keep_read_caps and not _keep_only_read_caps():
                raise OSError("capset failed")
        if _LIBC is not None:
            # After setuid (which clears it): die with the server, whatever happens to it.
            _LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        sink = _BoundedSink(cfg.max_output_chars)
        sys.stdout = sys.stderr = sink
        if _DEVNULL < 0:  # else sys.stdin already reads fd 0, which is /dev/null
            sys.stdin = open(os.devnull)  # noqa: SIM115 - lives until os._exit
        sys.argv = ["program.py"]
        if me == 1:
            _emulate_fatal_signals(me)
        # The first record: isolation is in place and the program is about to run. The
        # program can only write after it, so a run without it never ran the program.
        _report(READY)
        _run_checks(job.program, task, cfg)
        if os.getpid() == me and cfg.max_output_chars:  # a fork made by the program: quiet
            _report({"output": sink.getvalue()})
    except BaseException as exc:  # the sandbox itself failed (programs' errors are reports)
        with contextlib.suppress(BaseException):
            message = _bounded(str(exc), cfg.max_message_chars)
            _report({"sandbox": f"{type(exc).__name__}: {message}"})
    os._exit(0)


# --------------------------------------------------------------------------- server side

try:  # ctypes is only needed for namespaces and PDEATHSIG; degrade without it
    import ctypes

    _LIBC = ctypes.CDLL(None, use_errno=True)
except Exception:  # pragma: no cover - exotic platforms
    ctypes = None  # type: ignore[assignment]
    _LIBC = None


def _errno_text() -> str:
    e = ctypes.get_errno() if ctypes is not None else 0
    return os.strerror(e) if e else "unknown error"


class Isolation:
    """Set up the strongest isolation available and report what was (not) possible."""

    def __init__(self, cfg: Config) -> None:
        self.warnings: list[str] = []
        self.root = os.geteuid() == 0
        self.namespaces = False
        self.pidns = False
        self.tmpfs: list[str] = []
        self.exposed: list[str] = []
        self.keep_read_caps = False
        self.pidns_fd = -1
        if not self.root:
            self.warnings.append(
                "not running as root: programs run under the harness's own uid (they could "
                "signal other processes of that uid or write where it can); no namespaces"
            )
        elif _LIBC is None:
            self.warnings.append("ctypes unavailable: no namespaces, no parent-death signal")
        elif cfg.namespaces:
            self._setup_namespaces()
        # Each program gets its own empty /tmp when the server has a private mount
        # namespace to copy (see _private_tmp); else a scratch directory of the server's.
        self.private_tmp = "/tmp" in self.tmpfs
        if not self.private_tmp:
            self.warnings.append(
                "no per-program mount namespace: programs share the host's /tmp (what a "
                "program leaves there is removed when it ends, when running as root)"
            )
        if self.root:
            self._expose_python()
        # Non-root RLIMIT_NPROC counts all of the user's processes; allow for those.
        self.nproc_base = 0 if self.root else self._count_own_tasks()

    def _setup_namespaces(self) -> None:
        flags = CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS
        if _LIBC.unshare(flags) != 0:
            self.warnings.append(
                f"unshare(mount/net/ipc/uts) failed ({_errno_text()}): programs share the "
                "host's network and /tmp"
            )
        else:
            self.namespaces = True
            if _LIBC.mount(None, b"/", None, MS_REC | MS_PRIVATE, None) == 0:
                self._server_tmp()
            else:
                self.warnings.append(f"could not make mounts private ({_errno_text()})")
        try:
            self.pidns_fd = os.open("/proc/self/ns/pid", os.O_RDONLY)
            self._enter_new_pidns()
            pid = os.fork()
            if pid == 0:
                os._exit(0 if os.getpid() == 1 else 1)
            self._leave_pidns()
            _, status = os.waitpid(pid, 0)
            self.pidns = os.waitstatus_to_exitcode(status) == 0
            if not self.pidns:
                raise OSError("child was not PID 1")
        except OSError as exc:
            self.warnings.append(
                f"per-program PID namespaces unavailable ({exc}): falling back to killing the "
                "program's process group and every process of its uid"
            )
            self.pidns = False

    def _server_tmp(self) -> None:
        used = [os.path.realpath(p) for p in [sys.prefix, sys.exec_prefix, *sys.path] if p]
        for d in ("/tmp", "/var/tmp", "/dev/shm"):
            if not os.path.isdir(d) or any(p == d or p.startswith(d + "/") for p in used):
                continue
            rc = _LIBC.mount(b"tmpfs", d.encode(), b"tmpfs", MS_NOSUID | MS_NODEV, b"size=1g")
            if rc == 0:
                self.tmpfs.append(d)

    def _expose_python(self) -> None:
        """Let the unprivileged sandbox uids read Python (stdlib, site-packages) at its own
        paths when it sits under a directory they cannot enter (e.g. a pyenv in /root).

        Modules imported before the fork keep their original ``__path__``/``__file__``
        (``encodings``, ``json``, ``email``...), so their lazily imported parts must load
        from the original paths: exposing copies elsewhere is not enough. Inside our mount
        namespace the hidden directory is covered by an empty tmpfs and Python's own
        directories are bind-mounted back into it, read-only, at the same paths; nothing
        else of the hidden directory is visible. Without a mount namespace, programs keep
        CAP_DAC_READ_SEARCH instead (read, not write, access to every file)."""
        wanted = sorted({os.path.realpath(p) for p in [sys.prefix, *sys.path] if p})
        wanted = [p for p in wanted if os.path.isdir(p) and not _others_can_read(p)]
        outermost: list[str] = []
        for p in wanted:  # sorted: a parent comes before what it contains
            if not any(p.startswith(o + "/") for o in outermost):
                outermost.append(p)
        if not outermost:
            return
        hidden = {p: _hidden_ancestor(p) for p in outermost}
        if not self.private_tmp or any(a in (None, "/", "/tmp") for a in hidden.values()):
            self.keep_read_caps = True
            self.warnings.append(
                "the sandbox uid cannot read " + ", ".join(outermost) + " and they cannot be "
                "exposed here, so programs keep CAP_DAC_READ_SEARCH (they can read, not "
                "write, every file)"
            )
            return
        for ancestor in sorted(set(hidden.values())):
            inside = [p for p in outermost if hidden[p] == ancestor]
            if not self._cover_and_bind(ancestor, inside):
                self.keep_read_caps = True
                return
            self.exposed.extend(inside)

    def _cover_and_bind(self, ancestor: str, paths: list[str]) -> bool:
        staged = []
        for i, path in enumerate(paths):
            stage = f"/tmp/.ilf-expose-{i}"
            os.mkdir(stage, 0o700)
            if _LIBC.mount(path.encode(), stage.encode(), None, MS_BIND | MS_REC, None) != 0:
                self.warnings.append(f"could not expose {path} ({_errno_text()})")
                return False
            staged.append((stage, path))
        opts = b"mode=0755,size=1m"
        if _LIBC.mount(b"tmpfs", ancestor.encode(), b"tmpfs", MS_NOSUID | MS_NODEV, opts) != 0:
            self.warnings.append(f"could not cover {ancestor} ({_errno_text()})")
            return False
        ok = True
        for stage, path in staged:
            os.makedirs(path, 0o755, exist_ok=True)
            src, dst = stage.encode(), path.encode()
            if _LIBC.mount(src, dst, None, MS_BIND | MS_REC, None) != 0:
                self.warnings.append(f"could not expose {path} ({_errno_text()})")
                ok = False
            else:
                _LIBC.mount(None, dst, None, MS_BIND | MS_REMOUNT | MS_RDONLY, None)
            _LIBC.umount2(src, MNT_DETACH)
            os.rmdir(stage)
        return ok

    def _enter_new_pidns(self) -> None:
        # unshare(CLONE_NEWPID) only affects children forked afterwards, and may be called
        # again only from the active namespace, hence setns back to our own first.
        if _LIBC.setns(self.pidns_fd, CLONE_NEWPID) != 0 or _LIBC.unshare(CLONE_NEWPID) != 0:
            raise OSError(_errno_text())

    def _leave_pidns(self) -> None:
        _LIBC.setns(self.pidns_fd, CLONE_NEWPID)

    def _count_own_tasks(self) -> int:
        uid, n = os.getuid(), 0
        try:
            for pid in os.listdir("/proc"):
                if pid.isdigit():
                    try:
                        st = os.stat(f"/proc/{pid}")
                        if st.st_uid == uid:
                            n += len(os.listdir(f"/proc/{pid}/task"))
                    except OSError:
                        pass
        except OSError:
            return 4096
        return n + 64

    def uid_for(self, slot: int):
        return UID_BASE + slot if self.root else None

    def report(self) -> dict:
        return {
            "root": self.root,
            "namespaces": self.namespaces,
            "pid_namespace": self.pidns,
            "server_tmpfs": self.tmpfs,
            "private_tmp_per_program": self.private_tmp,
            "python_exposed": self.exposed,
            "uid_drop": self.root,
            "warnings": self.warnings,
        }


def _others_can_read(path: str) -> bool:
    """Whether a uid owning nothing can list ``path`` (every ancestor needs o+x)."""
    path = os.path.abspath(path)
    parts = path.split("/")
    for i in range(2, len(parts) + 1):
        try:
            mode = os.stat("/".join(parts[:i]) or "/").st_mode
        except OSError:
            return False
        if not mode & 0o001:
            return False
    return bool(os.stat(path).st_mode & 0o004)


def _hidden_ancestor(path: str):
    """The outermost directory on ``path`` that a uid owning nothing cannot enter, when
    ``path`` itself is readable and enterable by others; else None."""
    parts = os.path.abspath(path).split("/")
    for i in range(2, len(parts) + 1):
        current = "/".join(parts[:i]) or "/"
        if not os.stat(current).st_mode & 0o001:
            mode = os.stat(path).st_mode
            return current if mode & 0o005 == 0o005 else None
    return None


def _keep_only_read_caps() -> bool:
    """Make CAP_DAC_READ_SEARCH the only capability (effective and permitted)."""

    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class Data(ctypes.Structure):
        _fields_ = [
            ("effective", ctypes.c_uint32),
            ("permitted", ctypes.c_uint32),
            ("inheritable", ctypes.c_uint32),
        ]

    header = Header(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (Data * 2)()
    data[0].effective = data[0].permitted = 1 << CAP_DAC_READ_SEARCH
    return _LIBC.capset(ctypes.byref(header), data) == 0


def _kill_uid(uid: int) -> None:
    """Kill every process of ``uid`` (daemons that left the process group), from a helper
    that switches to that uid: kill(-1) then reaches exactly that uid's processes. kill(-1)
    reports success even when it signalled nothing, so it is simply repeated a few times
    (a process with SIGKILL pending cannot fork, so forks racing the first pass die too)."""
    pid = os.fork()
    if pid == 0:
        try:
            os.setgid(uid)
            os.setuid(uid)
            for _ in range(3):
                try:
                    os.kill(-1, signal.SIGKILL)
                except OSError:
                    break
        finally:
            os._exit(0)
    os.waitpid(pid, 0)


def _remove_leftovers(uid: int) -> None:
    """Without per-program mounts: delete what ``uid`` left in the shared temp dirs, so
    the next program of that slot (and every later one) does not find it."""
    for d in ("/tmp", "/var/tmp", "/dev/shm"):
        try:
            entries = list(os.scandir(d))
        except OSError:
            continue
        for entry in entries:
            try:
                if entry.stat(follow_symlinks=False).st_uid != uid:
                    continue
                if entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.path, ignore_errors=True)
                else:
                    os.unlink(entry.path)
            except OSError:
                pass


class _Running:
    __slots__ = (
        "job",
        "pid",
        "pidfd",
        "rfd",
        "reports",
        "report_bytes",
        "max_report_bytes",
        "start",
        "deadline",
        "slot",
        "scratch",
        "idle",
        "demote_at",
        "demoted",
        "cpu",
        "checked",
    )


class Server:
    def __init__(self, config: Config, tasks: dict, jobs: list) -> None:
        self.cfg = config
        self.iso = Isolation(config)
        # Checks are compiled on first use (parsing ~3000 up front delayed the first launch
        # by ~0.15 s); the compiled form is kept for the task's other programs.
        self.task_specs = tasks
        self.tasks: dict = {}
        self.jobs = deque(jobs)
        self.workers = max(1, config.workers)
        self.max_inflight = max(self.workers, config.max_inflight)
        self.free_slots = deque(range(self.max_inflight))
        self.running: dict[int, _Running] = {}
        self.by_pidfd: dict[int, _Running] = {}
        self.by_rfd: dict[int, _Running] = {}
        self.poller = select.poll()
        self.use_pidfd = hasattr(os, "pidfd_open")
        self.out = sys.stdout.buffer
        self.pending_out: list[bytes] = []
        self.last_flush = time.monotonic()
        self.base = None
        if not self.iso.private_tmp:  # scratch directories of the server's, one per program
            parent = "/tmp" if os.path.isdir("/tmp") else os.getcwd()
            self.base = os.path.join(parent, f"ilf-sandbox-{os.getpid()}-{os.urandom(6).hex()}")
            os.mkdir(self.base, 0o700)
            os.chmod(self.base, 0o711)  # children may enter their own dir, not list others
        mem = config.memory_mb * 1024 * 1024
        rlimits = [
            (resource.RLIMIT_AS, (mem, mem)),
            (resource.RLIMIT_FSIZE, (config.max_file_mb * 1024 * 1024,) * 2),
            (resource.RLIMIT_NOFILE, (256, 256)),
            (resource.RLIMIT_CORE, (0, 0)),
        ]
        n = config.max_processes + self.iso.nproc_base
        rlimits.append((resource.RLIMIT_NPROC, (n, n)))
        self.child_iso = ChildIsolation(rlimits, self.iso.keep_read_caps)
        self.clk_tck = os.sysconf("SC_CLK_TCK")

    def _prepare(self, spec: TaskSpec) -> CompiledTask:
        try:
            setup_code = compile(spec.setup or "", "<test_setup_code>", "exec", optimize=0)
        except SyntaxError:
            setup_code = compile(
                "raise SyntaxError('test_setup_code does not compile')", "<x>", "exec"
            )
        checks = []
        for i, (kind, source) in enumerate(spec.checks):
            name = f"<test {i}>"
            try:
                if kind == CALL:
                    code = compile(source, name, "eval", dont_inherit=True, optimize=0)
                else:
                    code = compile_test(source, name)
            except SyntaxError:
                kind, code = (
                    ASSERT,
                    compile("raise SyntaxError('the test does not compile')", name, "exec"),
                )
            checks.append((kind, code))
        return CompiledTask(setup_code, checks)

    # -- output
    def emit(self, obj, flush: bool = False) -> None:
        self.pending_out.append((json.dumps(obj) + "\n").encode())
        now = time.monotonic()
        if flush or len(self.pending_out) >= 64 or now - self.last_flush > 0.05:
            self.emit_flush()

    def emit_flush(self) -> None:
        if self.pending_out:
            self.out.write(b"".join(self.pending_out))
            self.out.flush()
            self.pending_out.clear()
        self.last_flush = time.monotonic()

    # -- lifecycle of one program
    def launch(self, job: Job) -> None:
        task = self.tasks.get(job.task_id)
        if task is None and job.task_id in self.task_specs:
            task = self.tasks[job.task_id] = self._prepare(self.task_specs[job.task_id])
        if task is None:
            self.emit(ProgramRun(job.row, "", "unknown_task", 0, 0.0, job.time_limit_s)._asdict())
            return
        slot = self.free_slots.popleft()
        uid = self.iso.uid_for(slot)
        scratch = None
        if self.base is not None:
            scratch = os.path.join(self.base, str(job.row))
            os.mkdir(scratch, 0o700)
            if uid is not None:
                os.chown(scratch, uid, uid)
        rfd, wfd = os.pipe()
        if self.iso.pidns:
            self.iso._enter_new_pidns()
        start = time.monotonic()
        pid = os.fork()
        if pid == 0:
            _child(job, task, self.cfg, self.child_iso, wfd, scratch, uid)
        if self.iso.pidns:
            self.iso._leave_pidns()
        os.close(wfd)
        os.set_blocking(rfd, False)
        r = _Running()
        r.job, r.pid, r.rfd, r.start, r.slot, r.scratch = job, pid, rfd, start, slot, scratch
        r.reports, r.report_bytes = [], 0
        n_checks = len(task.checks)
        r.max_report_bytes = (n_checks + 1) * (self.cfg.max_result_bytes + 4096) + (
            4 * self.cfg.max_output_chars + 4096
        )
        r.deadline = start + job.time_limit_s
        r.idle, r.cpu, r.checked = False, 0.0, start
        r.demoted = False
        r.demote_at = start + max(1.0, DEMOTE_FRACTION * job.time_limit_s)
        r.pidfd = -1
        if self.use_pidfd:
            try:
                r.pidfd = os.pidfd_open(pid)
            except OSError:
                self.use_pidfd = False
        if r.pidfd >= 0:
            self.poller.register(r.pidfd, select.POLLIN)
            self.by_pidfd[r.pidfd] = r
        self.poller.register(rfd, select.POLLIN)
        self.by_rfd[rfd] = r
        self.running[pid] = r

    def drain(self, r: _Running) -> None:
        """Read what the program wrote on its report pipe; keep at most its bound (an
        honest program stays far below it), discard the rest so the writer never blocks."""
        for _ in range(64):  # a flooding program must not hold up the server
            try:
                b = os.read(r.rfd, 65536)
            except (BlockingIOError, InterruptedError):
                return
            if not b:
                self._close_reports(r)
                return
            if r.report_bytes < r.max_report_bytes:
                r.reports.append(b[: r.max_report_bytes - r.report_bytes])
            r.report_bytes += len(b)

    def _close_reports(self, r: _Running) -> None:
        if r.rfd >= 0:
            self.poller.unregister(r.rfd)
            del self.by_rfd[r.rfd]
            os.close(r.rfd)
            r.rfd = -1

    def finish(self, r: _Running, status_word: int | None, timed_out: bool) -> None:
        now = time.monotonic()
        uid = self.iso.uid_for(r.slot)
        if not self.iso.pidns:
            with contextlib.suppress(OSError):
                os.killpg(r.pid, signal.SIGKILL)
            if uid is not None:
                _kill_uid(uid)
        if r.rfd >= 0:
            self.drain(r)
        self._close_reports(r)
        if timed_out:
            ended, code = "timeout", 0
        elif status_word is None:
            ended, code = "vanished", 0
        elif os.WIFSIGNALED(status_word):
            ended, code = "signaled", os.WTERMSIG(status_word)
        else:
            ended, code = "exited", os.WEXITSTATUS(status_word)
        reports = b"".join(r.reports).decode("utf-8", "replace")
        duration = round(now - r.start, 6)
        run = ProgramRun(r.job.row, reports, ended, code, duration, r.job.time_limit_s)
        self.emit(run._asdict())
        if r.pidfd >= 0:
            self.poller.unregister(r.pidfd)
            del self.by_pidfd[r.pidfd]
            os.close(r.pidfd)
        del self.running[r.pid]
        if r.scratch is not None:
            try:
                os.rmdir(r.scratch)  # the common case: the program wrote nothing
            except OSError:
                shutil.rmtree(r.scratch, ignore_errors=True)
            if uid is not None:
                _remove_leftovers(uid)
        self.free_slots.append(r.slot)

    def kill_timed_out(self, now: float) -> None:
        for r in [r for r in self.running.values() if now >= r.deadline]:
            with contextlib.suppress(OSError):
                os.kill(r.pid, signal.SIGKILL)
            os.waitpid(r.pid, 0)
            self.finish(r, None, timed_out=True)

    def reap(self, r: _Running, block: bool) -> bool:
        try:
            pid, status = os.waitpid(r.pid, 0 if block else os.WNOHANG)
        except ChildProcessError:
            self.finish(r, None, timed_out=False)
            return True
        if pid == 0:
            return False
        self.finish(r, status, timed_out=False)
        return True

    def update_idle(self, now: float) -> None:
        """Free the CPU slot of programs that cannot use it well, so that other programs
        keep flowing while these wait for their timeout:

        - idle: a program that used under 10% CPU over the last 50 ms (sleep, blocked read,
          deadlock) does not count as busy while it stays idle;
        - demoted: a program still running after ``DEMOTE_FRACTION`` of its time limit (and
          at least 1 s; a gold program needs at most 1/factor of it) is reniced and stops
          counting as busy. It keeps running until it finishes or hits its limit.
        """
        for r in self.running.values():
            if not r.demoted and now >= r.demote_at:
                r.demoted = True
                with contextlib.suppress(OSError):
                    os.setpriority(os.PRIO_PROCESS, r.pid, DEMOTE_NICE)
            if now - r.checked < 0.05:
                continue
            try:
                with open(f"/proc/{r.pid}/stat", "rb") as f:
                    fields = f.read().rsplit(b")", 1)[1].split()
                cpu = (int(fields[11]) + int(fields[12])) / self.clk_tck
            except (OSError, IndexError, ValueError):
                continue
            r.idle = (cpu - r.cpu) < 0.1 * (now - r.checked)
            r.cpu, r.checked = cpu, now

    def can_launch(self) -> bool:
        """Up to ``workers`` CPU-bound programs plus up to ``workers`` young ones (most
        programs finish within a few ms; letting them start while others run hides the
        server's own per-program work), never more than ``max_inflight`` in all."""
        if len(self.running) >= self.max_inflight:
            return False
        young_before = time.monotonic() - YOUNG_S
        busy = young = 0
        for r in self.running.values():
            if r.start > young_before:
                young += 1
            elif not (r.idle or r.demoted):
                busy += 1
        return busy < self.workers and young < self.workers

    def run(self) -> None:
        while self.jobs or self.running:
            while self.jobs and self.can_launch():
                self.launch(self.jobs.popleft())
            if not self.running:
                continue
            now = time.monotonic()
            wait = min(r.deadline for r in self.running.values()) - now
            saturated = bool(self.jobs) and len(self.running) < self.max_inflight
            if saturated:
                wait = min(wait, YOUNG_S, min(r.demote_at for r in self.running.values()) - now)
            if not self.use_pidfd:
                wait = min(wait, 0.002)
            if self.pending_out:
                wait = min(wait, 0.05)
            for fd, _ in self.poller.poll(max(0, int(wait * 1000) + 1)):
                r = self.by_rfd.get(fd)
                if r is not None:
                    self.drain(r)
                    continue
                r = self.by_pidfd.get(fd)
                if r is not None:
                    self.reap(r, block=True)
            if not self.use_pidfd:
                for r in list(self.running.values()):
                    self.reap(r, block=False)
            now = time.monotonic()
            self.kill_timed_out(now)
            if saturated:
                self.update_idle(now)
            if self.pending_out and now - self.last_flush > 0.05:
                self.emit_flush()
        self.emit_flush()

    def close(self) -> None:
        if self.base is not None:
            shutil.rmtree(self.base, ignore_errors=True)


def main(argv: list[str]) -> int:
    # Started with -S (site's .pth hooks import threading & co, which slow every fork);
    # add site-packages by hand so programs can still import installed packages.
    if sys.flags.no_site:
        import _sitebuiltins
        import builtins
        import site

        sys.path.extend(p for p in site.getsitepackages() if p not in sys.path)
        # site would define exit() and quit(); programs may call them.
        builtins.exit = _sitebuiltins.Quitter("exit", "Ctrl-D (i.e. EOF)")
        builtins.quit = _sitebuiltins.Quitter("quit", "Ctrl-D (i.e. EOF)")
    with open(argv[1], encoding="utf-8") as f:
        spec = json.load(f)
    with contextlib.suppress(OSError):
        os.unlink(argv[1])
    if _LIBC is not None:
        # Die with the harness even if it is killed without a chance to clean up.
        _LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() == 1:
            return 1
    _prepare_server_stdio()
    tasks = {
        tid: TaskSpec(t["setup"], [Check(**c) for c in t["checks"]])
        for tid, t in spec["tasks"].items()
    }
    server = Server(Config(**spec["config"]), tasks, [Job(**j) for j in spec["jobs"]])
    for name in PRELOAD:
        with contextlib.suppress(Exception):
            __import__(name)
    del spec
    gc.collect()
    gc.freeze()  # children then never touch (and copy) the server's pages during GC
    server.emit({"hello": server.iso.report()}, flush=True)
    try:
        server.run()
    finally:
        server.close()
    server.emit({"done": True}, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

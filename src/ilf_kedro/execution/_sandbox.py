"""Sandbox fork server: runs untrusted programs against unit tests, one forked child each.

This file is executed as a standalone script (``python -I _sandbox.py JOBFILE``) by
:mod:`ilf_kedro.execution.harness`; it imports only the standard library and nothing of the
programs it runs, so every child starts from the same clean, warm interpreter (a fork costs
about a millisecond, a fresh interpreter about 20 ms).

Input (JOBFILE, JSON, deleted once read)::

    {"config": {...limits...},
     "tasks": {"<task_id>": {"setup": str, "tests": [str, ...]}},
     "jobs": [[row, "<task_id>", program, time_limit_s], ...]}

Output (stdout, JSON lines): first ``{"hello": {...isolation report...}}``, then batches of
result lines ``[row, status, error_type, error_message, duration_s, output]``, finally
``{"done": true}``.

Isolation, strongest available first (each step degrades on its own, with a warning):

- the server enters new mount, network, IPC and UTS namespaces once (private tmpfs over
  /tmp, /var/tmp and /dev/shm, no network);
- each program is PID 1 of its own PID namespace, so when it exits or is killed the kernel
  kills every process it started, daemons included;
- as root, each running program gets its own unprivileged uid/gid (``uid_base + slot``), so
  it cannot signal the harness or touch root-owned files, and RLIMIT_NPROC is per program;
- rlimits for address space, CPU time, processes, file size, open files and core dumps;
- stdin is /dev/null, stdout/stderr are captured in memory up to a bound (fd 1 and 2 point
  at /dev/null), the working directory is a private scratch directory, the environment is
  rebuilt from scratch;
- the wall-clock limit is enforced by this server with SIGKILL, which no program can catch.

The helpers :func:`rewrite_asserts` and :func:`approx_eq` are importable (the benchmark's
baseline uses them) and define the test semantics: ``assert X == Y`` compares numbers with
a relative tolerance like ``pytest.approx`` (rel 1e-6, abs 1e-12).
"""

from __future__ import annotations

import ast
import contextlib
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

# clone(2) flags
CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
MS_NOSUID = 2
MS_NODEV = 4
MS_REC = 16384
MS_RDONLY = 1
MS_REMOUNT = 32
MS_BIND = 4096
MS_PRIVATE = 1 << 18
PR_SET_PDEATHSIG = 1
YOUNG_S = 0.01  # a program this young has not yet shown whether it is CPU-bound
PR_SET_KEEPCAPS = 8
PR_SET_NO_NEW_PRIVS = 38
CAP_DAC_READ_SEARCH = 2
_LINUX_CAPABILITY_VERSION_3 = 0x20080522


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


def _describe(exc: BaseException, filename: str, limit: int) -> str:
    """Exception message plus where it was raised (innermost line of the program, else of
    the given stage's file), bounded."""
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
    suffix = f" ({where})" if where else ""
    return _bounded(f"{msg}{suffix}", limit)


def _run_tests(program: str, setup_code, tests: list, msg_limit: int) -> tuple:
    """Run program, setup and each assert in one namespace; return (status, type, message)."""
    g: dict = {"__name__": "__main__", "__builtins__": __builtins__}
    stage, filename = "program", "<program>"
    try:
        code = compile(program, filename, "exec", dont_inherit=True, optimize=0)
        exec(code, g)
        stage, filename = "test_setup_code", "<test_setup_code>"
        exec(setup_code, g)
        g[APPROX_NAME] = approx_eq
        for i, (text, test_code) in enumerate(tests):
            stage, filename = f"test {i + 1}/{len(tests)}: {text}", f"<test {i}>"
            exec(test_code, g)
    except AssertionError as exc:
        if stage.startswith("test "):
            detail = _describe(exc, filename, msg_limit)
            suffix = f" -- {detail}" if str(exc) else ""
            return "failed", "AssertionError", _bounded(f"{stage}{suffix}", msg_limit)
        return (
            "error",
            "AssertionError",
            _bounded(f"in {stage}: {_describe(exc, filename, msg_limit)}", msg_limit),
        )
    except SystemExit as exc:
        return (
            "error",
            "SystemExit",
            _bounded(f"in {stage}: exit({exc.code!r}) before all asserts ran", msg_limit),
        )
    except BaseException as exc:
        return (
            "error",
            type(exc).__name__,
            _bounded(f"in {stage}: {_describe(exc, filename, msg_limit)}", msg_limit),
        )
    if not tests:
        return "error", "NoTests", "the task has no asserts"
    return "passed", None, None


# Signals whose default action kills the process. PID 1 of a namespace ignores them when
# they come from inside the namespace (e.g. os.kill(os.getpid(), SIGTERM)), so a program
# running as PID 1 gets handlers that emulate the default death instead.
_FATAL_SIGNALS = tuple(
    getattr(signal, name)
    for name in ("SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGALRM", "SIGVTALRM")
    if hasattr(signal, name)
)


def _emulate_fatal_signals(me: int, token: str) -> None:
    def die(signum, frame):
        if os.getpid() != me:  # a process forked by the program is not PID 1
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        name = signal.Signals(signum).name
        msg = f"killed by signal {name} before all asserts ran"
        record = {"t": token, "s": "crashed", "et": name, "em": msg, "o": ""}
        os.write(3, (json.dumps(record) + "\n").encode())
        os._exit(0)

    for sig in _FATAL_SIGNALS:
        if signal.getsignal(sig) == signal.SIG_DFL:
            signal.signal(sig, die)


# The environment every program gets, plus HOME and TMPDIR (its scratch directory). The
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


def _child(job, task, cfg, iso, result_fd: int, scratch: str, uid, token: str) -> None:
    """Body of a forked child. Never returns: always ends in os._exit."""
    me = os.getpid()
    try:
        os.setsid()
        devnull = _DEVNULL if _DEVNULL >= 0 else os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(devnull, fd)
        os.dup2(result_fd, 3)
        os.closerange(4, 1 << 16)
        cpu = int(math.ceil(float(job[3]))) + 1
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
        for res, value in iso["rlimits"]:
            resource.setrlimit(res, value)
        os.chdir(scratch)
        if _DEVNULL < 0:  # not started through main(): rebuild the environment here
            _set_base_environment()
        os.environ["HOME"] = scratch
        os.environ["TMPDIR"] = scratch
        if _LIBC is not None:
            # setuid binaries must not give the program privileges back.
            _LIBC.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
        if uid is not None:
            if iso["keep_read_caps"]:
                _LIBC.prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0)
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
            if iso["keep_read_caps"] and not _keep_only_read_caps():
                raise OSError("capset failed")
        if _LIBC is not None:
            # After setuid (which clears it): die with the server, whatever happens to it.
            _LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        out_limit = int(cfg["max_output_chars"])
        sink = _BoundedSink(out_limit)
        sys.stdout = sys.stderr = sink
        if _DEVNULL < 0:  # else sys.stdin already reads fd 0, which is /dev/null
            sys.stdin = open(os.devnull)  # noqa: SIM115 - lives until os._exit
        sys.argv = ["program.py"]
        if iso["path_alias"]:
            sys.path[:] = [iso["path_alias"].get(p, p) for p in sys.path]
        if me == 1:
            _emulate_fatal_signals(me, token)
        tests = task["compiled_tests"]
        status, etype, emsg = _run_tests(job[2], task["setup_code"], tests, cfg["max_message"])
        record = {"t": token, "s": status, "et": etype, "em": emsg, "o": sink.getvalue()}
        if os.getpid() == me:  # a fork made by the program must not report
            os.write(3, (json.dumps(record) + "\n").encode("utf-8", "replace"))
    except BaseException:
        pass
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

    def __init__(self, cfg: dict) -> None:
        self.warnings: list[str] = []
        self.root = os.geteuid() == 0
        self.uid_base = int(cfg["uid_base"])
        self.namespaces = False
        self.pidns = False
        self.tmpfs: list[str] = []
        self.path_alias: dict[str, str] = {}
        self.keep_read_caps = False
        self.pidns_fd = -1
        want_ns = bool(cfg["namespaces"])
        if not self.root:
            self.warnings.append(
                "not running as root: programs run under the harness's own uid (they could "
                "signal other processes of that uid or write where it can); no namespaces"
            )
        elif _LIBC is None:
            self.warnings.append("ctypes unavailable: no namespaces, no parent-death signal")
        elif want_ns:
            self._setup_namespaces()
        if self.root:
            self._make_imports_readable()
        # Non-root RLIMIT_NPROC counts all of the user's processes; allow for those.
        self.nproc = True
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
                self._private_tmp()
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

    def _private_tmp(self) -> None:
        used = [os.path.realpath(p) for p in [sys.prefix, sys.exec_prefix, *sys.path] if p]
        for d in ("/tmp", "/var/tmp", "/dev/shm"):
            if not os.path.isdir(d) or any(p == d or p.startswith(d + "/") for p in used):
                continue
            rc = _LIBC.mount(b"tmpfs", d.encode(), b"tmpfs", MS_NOSUID | MS_NODEV, b"size=1g")
            if rc == 0:
                self.tmpfs.append(d)

    def _make_imports_readable(self) -> None:
        """The unprivileged sandbox uid must read the stdlib and site-packages, which may sit
        under a directory only root can enter (e.g. pyenv in /root). Inside our mount
        namespace, bind-mount such sys.path entries read-only under /tmp and let children
        use those aliases; the rest of /root stays out of reach."""
        blocked = [p for p in sys.path if p and os.path.isdir(p) and not _others_can_read(p)]
        if not blocked:
            return
        if "/tmp" not in self.tmpfs:
            self.keep_read_caps = True
            self.warnings.append(
                "the sandbox uid cannot read " + ", ".join(blocked) + " and without a mount "
                "namespace they cannot be exposed, so programs keep CAP_DAC_READ_SEARCH "
                "(they can read, not write, every file)"
            )
            return
        top = "/tmp/.ilf-python-path"
        os.mkdir(top, 0o755)
        for i, path in enumerate(blocked):
            alias = os.path.join(top, str(i))
            os.mkdir(alias, 0o755)
            src, dst = path.encode(), alias.encode()
            if _LIBC.mount(src, dst, None, MS_BIND | MS_REC, None) != 0:
                self.warnings.append(f"could not expose {path} to programs ({_errno_text()})")
                continue
            _LIBC.mount(None, dst, None, MS_BIND | MS_REMOUNT | MS_RDONLY, None)
            self.path_alias[path] = alias

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
        return self.uid_base + slot if self.root else None

    def report(self) -> dict:
        return {
            "root": self.root,
            "namespaces": self.namespaces,
            "pid_namespace": self.pidns,
            "private_tmp": self.tmpfs,
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


class _Running:
    __slots__ = (
        "row",
        "pid",
        "pidfd",
        "rfd",
        "start",
        "deadline",
        "slot",
        "scratch",
        "token",
        "idle",
        "demote_at",
        "demoted",
        "cpu",
        "checked",
    )


class Server:
    def __init__(self, spec: dict) -> None:
        self.cfg = spec["config"]
        self.iso = Isolation(self.cfg)
        # Tests are compiled on first use (parsing ~3000 asserts up front delayed the first
        # launch by ~0.15 s); the compiled form is kept for the task's other programs.
        self.task_specs = spec["tasks"]
        self.tasks: dict = {}
        self.jobs = deque(spec["jobs"])
        self.workers = max(1, int(self.cfg["workers"]))
        self.max_inflight = max(self.workers, int(self.cfg["max_inflight"]))
        self.demote_fraction = float(self.cfg.get("demote_fraction", 0.5))
        self.demote_nice = int(self.cfg.get("demote_nice", 10))
        self.free_slots = deque(range(self.max_inflight))
        self.running: dict[int, _Running] = {}
        self.by_fd: dict[int, _Running] = {}
        self.poller = select.poll()
        self.use_pidfd = hasattr(os, "pidfd_open")
        self.out = sys.stdout.buffer
        self.pending_out: list[bytes] = []
        self.last_flush = time.monotonic()
        parent = "/tmp" if os.path.isdir("/tmp") else os.getcwd()
        self.base = os.path.join(parent, f"ilf-sandbox-{os.getpid()}-{os.urandom(6).hex()}")
        os.mkdir(self.base, 0o700)
        os.chmod(self.base, 0o711)  # children may enter their own dir, not list others
        mem = int(self.cfg["memory_mb"]) * 1024 * 1024
        rlimits = [
            (resource.RLIMIT_AS, (mem, mem)),
            (resource.RLIMIT_FSIZE, (int(self.cfg["max_file_mb"]) * 1024 * 1024,) * 2),
            (resource.RLIMIT_NOFILE, (256, 256)),
            (resource.RLIMIT_CORE, (0, 0)),
        ]
        if self.iso.nproc:
            n = int(self.cfg["max_processes"]) + self.iso.nproc_base
            rlimits.append((resource.RLIMIT_NPROC, (n, n)))
        self.child_iso = {
            "rlimits": rlimits,
            "path_alias": self.iso.path_alias,
            "keep_read_caps": self.iso.keep_read_caps,
        }
        self.clk_tck = os.sysconf("SC_CLK_TCK")

    def _prepare(self, task: dict) -> dict:
        setup = task.get("setup") or ""
        try:
            setup_code = compile(setup, "<test_setup_code>", "exec", optimize=0)
        except SyntaxError:
            setup_code = compile(
                "raise SyntaxError('test_setup_code does not compile')", "<x>", "exec"
            )
        tests = []
        for i, text in enumerate(task.get("tests") or []):
            try:
                code = compile_test(text, f"<test {i}>")
            except SyntaxError:
                code = compile(f"raise SyntaxError({text[:200]!r})", f"<test {i}>", "exec")
            tests.append((text[:200], code))
        return {"setup_code": setup_code, "compiled_tests": tests}

    # -- output
    def emit(self, obj, flush: bool = False) -> None:
        self.pending_out.append((json.dumps(obj) + "\n").encode())
        now = time.monotonic()
        if flush or len(self.pending_out) >= 64 or now - self.last_flush > 0.05:
            self.out.write(b"".join(self.pending_out))
            self.out.flush()
            self.pending_out.clear()
            self.last_flush = now

    # -- lifecycle of one program
    def launch(self, job: list) -> None:
        row, tid = job[0], str(job[1])
        task = self.tasks.get(tid)
        if task is None and tid in self.task_specs:
            task = self.tasks[tid] = self._prepare(self.task_specs[tid])
        if task is None:
            self.emit([row, "error", "UnknownTask", f"no task {tid}", 0.0, ""])
            return
        slot = self.free_slots.popleft()
        uid = self.iso.uid_for(slot)
        scratch = os.path.join(self.base, str(row))
        os.mkdir(scratch, 0o700)
        if uid is not None:
            os.chown(scratch, uid, uid)
        token = os.urandom(8).hex()
        rfd, wfd = os.pipe()
        if self.iso.pidns:
            self.iso._enter_new_pidns()
        start = time.monotonic()
        pid = os.fork()
        if pid == 0:
            _child(job, task, self.cfg, self.child_iso, wfd, scratch, uid, token)
        if self.iso.pidns:
            self.iso._leave_pidns()
        os.close(wfd)
        os.set_blocking(rfd, False)
        r = _Running()
        r.row, r.pid, r.rfd, r.start, r.slot, r.scratch, r.token = (
            row,
            pid,
            rfd,
            start,
            slot,
            scratch,
            token,
        )
        r.deadline = start + float(job[3])
        r.idle, r.cpu, r.checked = False, 0.0, start
        r.demoted = False
        r.demote_at = start + max(1.0, self.demote_fraction * float(job[3]))
        r.pidfd = -1
        if self.use_pidfd:
            try:
                r.pidfd = os.pidfd_open(pid)
            except OSError:
                self.use_pidfd = False
        if r.pidfd >= 0:
            self.poller.register(r.pidfd, select.POLLIN)
            self.by_fd[r.pidfd] = r
        self.running[pid] = r

    def _read_result(self, r: _Running):
        chunks, total = [], 0
        while total < 1 << 20:
            try:
                b = os.read(r.rfd, 65536)
            except (BlockingIOError, InterruptedError):
                break
            if not b:
                break
            chunks.append(b)
            total += len(b)
        data = b"".join(chunks)
        for line in data.splitlines():
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if isinstance(rec, dict) and rec.get("t") == r.token:
                return rec
        return None

    def finish(self, r: _Running, status_word: int | None, timed_out: bool) -> None:
        now = time.monotonic()
        if not self.iso.pidns:
            with contextlib.suppress(OSError):
                os.killpg(r.pid, signal.SIGKILL)
            uid = self.iso.uid_for(r.slot)
            if uid is not None:
                _kill_uid(uid)
        rec = None if timed_out else self._read_result(r)
        duration = round(now - r.start, 6)
        if timed_out:
            limit = r.deadline - r.start
            out = [r.row, "timeout", "Timeout", f"exceeded the time limit of {limit:.3g} s"]
        elif rec is not None:
            out = [r.row, rec["s"], rec["et"], rec["em"]]
        else:
            out = [r.row, *self._classify_exit(status_word)]
        out += [duration, (rec or {}).get("o", "")]
        self.emit(out)
        os.close(r.rfd)
        if r.pidfd >= 0:
            self.poller.unregister(r.pidfd)
            del self.by_fd[r.pidfd]
            os.close(r.pidfd)
        del self.running[r.pid]
        try:
            os.rmdir(r.scratch)  # the common case: the program wrote nothing
        except OSError:
            shutil.rmtree(r.scratch, ignore_errors=True)
        self.free_slots.append(r.slot)

    @staticmethod
    def _classify_exit(status_word: int | None) -> list:
        if status_word is None:
            return ["crashed", "Unknown", "the program vanished without a verdict"]
        if os.WIFSIGNALED(status_word):
            sig = os.WTERMSIG(status_word)
            name = signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else sig
            if sig == signal.SIGXCPU:
                return ["timeout", "CPUTimeLimit", "exceeded the CPU time limit (SIGXCPU)"]
            return ["crashed", str(name), f"killed by signal {name} before all asserts ran"]
        code = os.WEXITSTATUS(status_word) if os.WIFEXITED(status_word) else -1
        if code == 0:
            return ["crashed", "EarlyExit", "the process exited (code 0) before all asserts ran"]
        return ["crashed", f"ExitCode{code}", f"the process exited with code {code}"]

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
        - demoted: a program still running after ``demote_fraction`` of its time limit (and
          at least 1 s; a gold program needs at most 1/factor of it) is reniced and stops
          counting as busy. It keeps running until it finishes or hits its limit.
        """
        for r in self.running.values():
            if not r.demoted and now >= r.demote_at:
                r.demoted = True
                with contextlib.suppress(OSError):
                    os.setpriority(os.PRIO_PROCESS, r.pid, self.demote_nice)
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
            events = self.poller.poll(max(0, int(wait * 1000) + 1)) if self.use_pidfd else []
            if not self.use_pidfd and not events:
                time.sleep(max(0.0, wait))
            for fd, _ in events:
                r = self.by_fd.get(fd)
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

    def emit_flush(self) -> None:
        if self.pending_out:
            self.out.write(b"".join(self.pending_out))
            self.out.flush()
            self.pending_out.clear()
        self.last_flush = time.monotonic()

    def close(self) -> None:
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
    server = Server(spec)
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

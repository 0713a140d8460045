"""The sandbox fork server: runs each program in a forked, isolated child; judges nothing.

Started by the harness as ``python -I -S <this package>/__main__.py JOBFILE``: it imports
only the standard library and nothing of the programs it runs, so every child starts from
the same clean, warm interpreter (a fork costs about a millisecond, a fresh interpreter
about 20 ms). It reads the job file (:mod:`.records`), sets up isolation once
(:mod:`.linux`), then keeps up to ``workers`` CPU-bound programs running, each in a child
(:mod:`.child`), enforces their limits with SIGKILL (wall-clock time, less a lone
program's waits for a CPU others held: :meth:`Server.credit_waiting`), and reports one
:class:`~.records.ProgramRun` per job on stdout. The harness judges them.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import resource
import select
import shutil
import signal
import sys
import time
from collections import deque

from .child import compile_task, prepare_server_stdio, run_child
from .linux import LIBC, PR_SET_PDEATHSIG, Isolation, kill_uid, remove_leftovers
from .records import Check, Config, Job, ProgramRun, TaskSpec

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

YOUNG_S = 0.01  # a program this young has not yet shown whether it is CPU-bound
# A program still running after this fraction of its limit (and at least 1 s; the gold
# program needs at most 1/factor of it) stops counting as busy; once it has also had that
# much time besides its waits for a CPU, it is reniced.
DEMOTE_FRACTION = 0.5
DEMOTE_NICE = 10
# A program's limit counts the time it ran or chose to wait, not the time it was ready but
# waited for a CPU that other processes held (the machine's load): its deadline moves on
# by that wait, up to this many times its limit in all.
MAX_STRETCH = 10.0
# Signals a fresh interpreter ignores itself (Python's startup); any other that the
# harness's caller ignored or blocked is reset for the programs.
IGNORED_BY_PYTHON = {signal.SIGPIPE, signal.SIGXFSZ}


def run_delay(pid: int) -> float | None:
    """Seconds a process that is alone (one thread, no child process) has waited, ready to
    run, for a CPU (the kernel's schedstat ``run_delay``); None where the kernel does not
    say, or when the process is not alone: then it may be waiting for its own processes,
    which would stretch its limit at will."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            threads = int(f.read().rsplit(b")", 1)[1].split()[17])
        with open(f"/proc/{pid}/task/{pid}/children", "rb") as f:
            children = f.read().strip()
        if threads != 1 or children:
            return None
        with open(f"/proc/{pid}/schedstat", "rb") as f:
            return int(f.read().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return None


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
        "reniced",
        "cpu",
        "checked",
        "waited",
        "alone",
    )


class Server:
    def __init__(self, config: Config, tasks: dict, jobs: list) -> None:
        self.cfg = config
        self.workers = max(1, config.workers)
        self.max_inflight = max(self.workers, config.max_inflight)
        self.iso = Isolation(config.namespaces, self.max_inflight)
        # Checks are compiled on first use (parsing ~3000 up front delayed the first launch
        # by ~0.15 s); the compiled form is kept for the task's other programs.
        self.task_specs = tasks
        self.tasks: dict = {}
        self.jobs = deque(jobs)
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
        if not self.iso.namespaces:  # scratch directories of the server's, one per program
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
        self.child_iso = self.iso.for_children(rlimits)
        self.clk_tck = os.sysconf("SC_CLK_TCK")

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
            task = self.tasks[job.task_id] = compile_task(self.task_specs[job.task_id])
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
            self.iso.enter_new_pidns()
        start = time.monotonic()
        pid = os.fork()
        if pid == 0:
            run_child(job, task, self.cfg, self.child_iso, wfd, scratch, uid, slot)
        if self.iso.pidns:
            self.iso.leave_pidns()
        os.close(wfd)
        os.set_blocking(rfd, False)
        r = _Running()
        r.job, r.pid, r.rfd, r.start, r.slot, r.scratch = job, pid, rfd, start, slot, scratch
        r.reports, r.report_bytes = [], 0
        # the values of all checks together, each check's record and the output
        n_checks = len(task.checks)
        r.max_report_bytes = (
            self.cfg.max_result_bytes + (n_checks + 2) * 4096 + 4 * self.cfg.max_output_chars
        )
        r.deadline = start + job.time_limit_s
        r.idle, r.cpu, r.checked = False, 0.0, start
        r.demoted, r.reniced, r.waited, r.alone = False, False, 0.0, True
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
                kill_uid(uid)
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
                remove_leftovers(uid)
        self.free_slots.append(r.slot)

    def credit_waiting(self, r: _Running) -> float:
        """Move the program's deadline on by the time it has waited for a CPU so far; the
        seconds credited in all. Not once it is reniced (its waiting is then what the
        renice makes it do, not the machine's load), nor once it was seen with threads or
        processes of its own (see :func:`run_delay`)."""
        if r.alone and not r.reniced:
            waited = run_delay(r.pid)
            r.alone = waited is not None
            if waited is not None and waited > r.waited:
                waited = min(waited, (MAX_STRETCH - 1) * r.job.time_limit_s)
                r.deadline += waited - r.waited
                r.waited = waited
        return r.waited

    def kill_timed_out(self, now: float) -> None:
        due = [r for r in self.running.values() if now >= r.deadline]
        for r in due:
            self.credit_waiting(r)
        for r in [r for r in due if now >= r.deadline]:
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
          at least 1 s; a gold program needs at most 1/factor of it) stops counting as
          busy, by the wall clock, so that one spinning on a loaded machine soon stops
          holding up the others; it is reniced once that much time has passed besides its
          waits for a CPU (a gold program slowed by load is not starved by the renice). It
          keeps running until it finishes or hits its limit.
        """
        for r in self.running.values():
            if not r.reniced and now >= r.demote_at:
                r.demoted = True
                if now >= r.demote_at + self.credit_waiting(r):
                    r.reniced = True
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
                renice_at = min(
                    (r.demote_at + r.waited for r in self.running.values() if not r.reniced),
                    default=now + YOUNG_S,
                )
                wait = min(wait, YOUNG_S, renice_at - now)
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


def reset_signal_state() -> None:
    """Give the programs a fresh interpreter's signal state whatever the caller's: ignored
    dispositions and the signal mask pass through fork and exec, so a harness called from
    a process that ignores SIGHUP (nohup, a service manager) or blocks a signal in its
    thread would change what a program sees, and its verdict."""
    signal.pthread_sigmask(signal.SIG_SETMASK, ())
    for sig in signal.valid_signals() - IGNORED_BY_PYTHON:
        with contextlib.suppress(OSError, ValueError):  # SIGKILL, SIGSTOP, RT signals
            if signal.getsignal(sig) == signal.SIG_IGN:
                # Python raises KeyboardInterrupt on SIGINT unless it started ignoring it.
                fresh = signal.default_int_handler if sig == signal.SIGINT else signal.SIG_DFL
                signal.signal(sig, fresh)


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
    if LIBC is not None:
        # Die with the harness even if it is killed without a chance to clean up.
        LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() == 1:
            return 1
    prepare_server_stdio()
    reset_signal_state()
    tasks = {
        tid: TaskSpec(t["setup"], [Check(**c) for c in t["checks"]], t["tolerant"])
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

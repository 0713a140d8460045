"""Linux isolation: what the server sets up once, and what each program's process enters.

Once per server (:class:`Isolation`), strongest available first; each step degrades on its
own, with a warning the harness logs:

- a block of unprivileged uids locked for this server alone (``flock`` on
  ``/run/ilf-sandbox/uids-N``), so that two harnesses on one machine never share one;
- new mount, network, IPC and UTS namespaces for the server;
- a new root: a read-only tmpfs holding only what the interpreter needs, bind-mounted
  read-only at the same paths (``/usr``, ``/lib*``, ``/bin``, ``/sbin``, the Python
  installation with the packages beside it, ``/etc/ld.so.cache`` and ``/etc/localtime``),
  a minimal ``/dev`` (null, zero, full, random, urandom) and mount points for ``/proc``
  and ``/tmp``; ``pivot_root`` makes it the server's ``/``, and the host's tree is
  detached. The project, home directories, ``/var``, ``/run`` and every other file of
  the host are not there;
- one empty network namespace per program slot (only a loopback that is down): abstract
  Unix sockets live in the network namespace, so programs running at once cannot meet;
- per-program PID namespaces (each program is PID 1 of its own).

Each program's process (:func:`isolate_program`) then enters its slot's network
namespace and new mount and IPC namespaces (so SysV objects die with it), gets a fresh
tmpfs as ``/tmp`` (also ``/dev/shm``), owned by its uid, and a ``/proc`` of its own PID
namespace, showing its own processes only.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import platform
import shutil
import signal
import stat
import sys
from typing import NamedTuple

from .records import UID_BASE, UID_BLOCK, UID_BLOCKS

try:  # ctypes is only needed for namespaces and PDEATHSIG; degrade without it
    import ctypes

    LIBC = ctypes.CDLL(None, use_errno=True)
except Exception:  # pragma: no cover - exotic platforms
    ctypes = None  # type: ignore[assignment]
    LIBC = None

# clone(2), mount(2) and prctl(2) flags
CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
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
SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41, "ppc64le": 203, "s390x": 217}

# What the new root holds of the host, read-only at the same paths (a symlink such as a
# merged-/usr /lib is copied as a symlink). Python's own directories are added.
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
ETC_FILES = ("/etc/ld.so.cache", "/etc/localtime")
DEVICES = ("null", "zero", "full", "random", "urandom")
DEV_LINKS = {"fd": "/proc/self/fd", "stdin": "fd/0", "stdout": "fd/1", "stderr": "fd/2"}
UID_LOCK_DIRS = ("/run/ilf-sandbox", "/tmp/.ilf-sandbox-uids")


def errno_text() -> str:
    e = ctypes.get_errno() if ctypes is not None else 0
    return os.strerror(e) if e else "unknown error"


def _mount(src, dst, fstype, flags: int, data=None) -> None:
    enc = [x.encode() if isinstance(x, str) else x for x in (src, dst, fstype, data)]
    if LIBC.mount(enc[0], enc[1], enc[2], flags, enc[3]) != 0:
        raise OSError(f"mount {src or fstype} on {dst}: {errno_text()}")


def _bind_read_only(src: str, dst: str) -> None:
    _mount(src, dst, None, MS_BIND | MS_REC)
    _mount(None, dst, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV)


class ChildIsolation(NamedTuple):
    """What every forked child applies to itself before running the program."""

    rlimits: list  # of (resource, (soft, hard))
    keep_read_caps: bool  # keep CAP_DAC_READ_SEARCH (Python not otherwise readable)
    mount_ns: bool  # a mount and IPC namespace, /tmp and /dev/shm of its own
    proc: bool  # mount a /proc of its own PID namespace
    net_fds: tuple  # per slot: a network namespace to enter (empty: stay in the server's)


class Isolation:
    """Set up the strongest isolation available and report what was (not) possible."""

    def __init__(self, namespaces: bool, slots: int) -> None:
        self.warnings: list[str] = []
        self.root = os.geteuid() == 0
        self.namespaces = self.pidns = self.private_root = False
        self.net_fds: list[int] = []
        self.keep_read_caps = False
        self.pidns_fd = -1
        self.uid_base = None
        self.uid_lock = -1
        self.exposed: list[str] = []
        if not self.root:
            self.warnings.append(
                "not running as root, so nothing of the host is hidden: programs run under "
                "the harness's own uid and can read every file it can (the project, home "
                "directories, credentials such as conf/local/credentials.yml, the task "
                "files), use its network, see and signal its processes, and meet each "
                "other through /tmp, SysV IPC and abstract sockets"
            )
        elif LIBC is None:
            self.warnings.append("ctypes unavailable: no namespaces, no parent-death signal")
        if self.root:
            self._lock_uid_block(slots)
        if self.root and LIBC is not None and namespaces:
            self._setup_namespaces(slots)
        if self.root and not self.private_root:
            hidden = [p for p in python_dirs() if not _others_can_read(p)]
            if hidden:
                self.keep_read_caps = True
                self.warnings.append(
                    "the sandbox uids cannot read " + ", ".join(hidden) + " and there is no "
                    "private root to expose it in, so programs keep CAP_DAC_READ_SEARCH "
                    "(they can read, not write, every file)"
                )
        if self.root and not self.private_root:
            self.warnings.append(
                "no private root: programs see the host's world-readable files (the "
                "project, home directories, task files) and share its /tmp (what a "
                "program leaves there is removed when it ends)"
            )
        # Non-root RLIMIT_NPROC counts all of the user's processes; allow for those.
        self.nproc_base = 0 if self.root else _count_own_tasks()

    # -- uids
    def _lock_uid_block(self, slots: int) -> None:
        if slots > UID_BLOCK:
            raise ValueError(f"at most {UID_BLOCK} programs at once, got {slots}")
        for directory in UID_LOCK_DIRS:
            with contextlib.suppress(OSError):
                if os.path.isdir(os.path.dirname(directory)):
                    os.makedirs(directory, 0o700, exist_ok=True)
                    st = os.lstat(directory)
                    if stat.S_ISDIR(st.st_mode) and st.st_uid == 0 and not st.st_mode & 0o022:
                        break
        else:
            raise OSError(f"no private directory for uid locks among {UID_LOCK_DIRS}")
        flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
        for block in range(UID_BLOCKS):
            fd = os.open(os.path.join(directory, f"uids-{block}"), flags, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            self.uid_lock, self.uid_base = fd, UID_BASE + block * UID_BLOCK
            return  # held until this process exits, however it ends
        raise OSError(f"all {UID_BLOCKS} uid blocks are in use")

    def uid_for(self, slot: int):
        return None if self.uid_base is None else self.uid_base + slot

    # -- namespaces
    def _setup_namespaces(self, slots: int) -> None:
        if LIBC.unshare(CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS) != 0:
            self.warnings.append(
                f"unshare(mount/net/ipc/uts) failed ({errno_text()}): programs share the "
                "host's files, network, IPC objects and /tmp"
            )
            return
        self.namespaces = True
        try:
            _mount(None, "/", None, MS_REC | MS_PRIVATE)
            self._new_root()
            self.private_root = True
        except OSError as exc:
            self.warnings.append(f"could not build the programs' root ({exc})")
            self.namespaces = False  # no usable mount namespace for programs
        self._network_per_slot(slots)
        self._pid_namespaces()

    def _new_root(self) -> None:
        wanted = python_dirs()
        base = next(
            (
                d
                for d in ("/tmp", "/mnt", "/media", "/srv")
                if os.path.isdir(d) and not any(p == d or p.startswith(d + "/") for p in wanted)
            ),
            None,
        )
        if base is None:
            raise OSError("no directory to build the new root in")
        _mount("tmpfs", base, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=16m")
        new = base
        for d in SYSTEM_DIRS:
            if os.path.islink(d):
                os.symlink(os.readlink(d), new + d)
            elif os.path.isdir(d):
                os.mkdir(new + d, 0o755)
                _bind_read_only(d, new + d)
        for p in wanted:
            if not os.path.exists(new + p):  # not already under /usr & co
                os.makedirs(new + p, 0o755)
                _bind_read_only(p, new + p)
                self.exposed.append(p)
        os.mkdir(new + "/etc", 0o755)
        for f in ETC_FILES:
            if os.path.islink(f):
                os.symlink(os.readlink(f), new + f)
            elif os.path.isfile(f):
                open(new + f, "w").close()  # noqa: SIM115 - a mount point
                _bind_read_only(f, new + f)
        os.mkdir(new + "/dev", 0o755)
        for name in DEVICES:
            path = f"/dev/{name}"
            open(new + path, "w").close()  # noqa: SIM115 - a mount point
            _mount(path, new + path, None, MS_BIND)
            _mount(None, new + path, None, MS_REMOUNT | MS_BIND | MS_NOSUID | MS_NOEXEC)
        for name, target in DEV_LINKS.items():
            os.symlink(target, f"{new}/dev/{name}")
        for d in ("/dev/shm", "/proc", "/tmp"):
            os.mkdir(new + d, 0o755)
        _mount("proc", new + "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
        os.chdir(new)
        number = SYS_PIVOT_ROOT.get(platform.machine())
        if number is not None and LIBC.syscall(number, b".", b".") == 0:
            LIBC.umount2(b".", MNT_DETACH)  # the old root, stacked under the new one
        else:
            os.chroot(".")  # programs hold no capability that could leave it
        os.chdir("/")
        _mount(None, "/", None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV)

    def _network_per_slot(self, slots: int) -> None:
        own = os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        try:
            for _ in range(slots):
                if LIBC.unshare(CLONE_NEWNET) != 0:
                    raise OSError(errno_text())
                self.net_fds.append(os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC))
        except OSError as exc:
            self.warnings.append(
                f"no network namespace per program ({exc}): programs running at once share "
                "one (an abstract Unix socket one binds, another can reach)"
            )
            for fd in self.net_fds:
                os.close(fd)
            self.net_fds = []
        finally:
            LIBC.setns(own, CLONE_NEWNET)
            os.close(own)

    def _pid_namespaces(self) -> None:
        try:
            self.pidns_fd = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
            self.enter_new_pidns()
            pid = os.fork()
            if pid == 0:
                os._exit(0 if os.getpid() == 1 else 1)
            self.leave_pidns()
            _, status = os.waitpid(pid, 0)
            self.pidns = os.waitstatus_to_exitcode(status) == 0
            if not self.pidns:
                raise OSError("child was not PID 1")
        except OSError as exc:
            self.warnings.append(
                f"per-program PID namespaces unavailable ({exc}): falling back to killing the "
                "program's process group and every process of its uid; programs see the "
                "server's /proc"
            )
            self.pidns = False

    def enter_new_pidns(self) -> None:
        # unshare(CLONE_NEWPID) only affects children forked afterwards, and may be called
        # again only from the active namespace, hence setns back to our own first.
        if LIBC.setns(self.pidns_fd, CLONE_NEWPID) != 0 or LIBC.unshare(CLONE_NEWPID) != 0:
            raise OSError(errno_text())

    def leave_pidns(self) -> None:
        LIBC.setns(self.pidns_fd, CLONE_NEWPID)

    def for_children(self, rlimits: list) -> ChildIsolation:
        return ChildIsolation(
            rlimits,
            self.keep_read_caps,
            self.namespaces,
            self.namespaces and self.pidns,
            tuple(self.net_fds),
        )

    def report(self) -> dict:
        return {
            "root": self.root,
            "namespaces": self.namespaces,
            "private_root": self.private_root,
            "python_exposed": self.exposed,
            "pid_namespace": self.pidns,
            "network_per_program": bool(self.net_fds),
            "uid_base": self.uid_base,
            "warnings": self.warnings,
        }


def isolate_program(iso: ChildIsolation, slot: int, uid, tmp_mb: int) -> None:
    """In a forked child, before it runs the program: its slot's network namespace, its
    own mount and IPC namespaces, a fresh ``/tmp`` (and ``/dev/shm``) owned by ``uid``,
    and a ``/proc`` of its own PID namespace. Raises OSError naming a step that failed."""
    if iso.net_fds and LIBC.setns(iso.net_fds[slot], CLONE_NEWNET) != 0:
        raise OSError(f"setns(network): {errno_text()}")
    if not iso.mount_ns:  # no namespaces here: nothing more to enter
        return
    if LIBC.unshare(CLONE_NEWNS | CLONE_NEWIPC) != 0:
        raise OSError(f"unshare(mount, ipc): {errno_text()}")
    owner = f",uid={uid},gid={uid}" if uid is not None else ""
    _mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, f"size={tmp_mb}m,mode=0700{owner}")
    _mount("/tmp", "/dev/shm", None, MS_BIND)
    if iso.proc:
        _mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)


def python_dirs() -> list[str]:
    """The outermost directories of this Python installation and its packages, and the
    folder of ``sys.executable`` as programs call it."""
    paths = [sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix, *sys.path]
    paths.append(os.path.dirname(os.path.dirname(os.path.realpath(sys.executable))))
    # In a venv that folder is the venv (its bin/python links to the base interpreter),
    # which sys.prefix no longer names in the server: started with -S, it skips the site
    # module that sets it. Not under /tmp, which programs get a tmpfs of their own over.
    called = os.path.dirname(os.path.dirname(os.path.abspath(sys.executable)))
    if not called.startswith("/tmp/"):
        paths.append(called)
    wanted = sorted({os.path.realpath(p) for p in paths if p and os.path.isdir(p)})
    outermost: list[str] = []
    for p in wanted:  # sorted: a parent comes before what it contains
        if p != "/" and not any(p.startswith(o + "/") for o in outermost):
            outermost.append(p)
    return outermost


def _others_can_read(path: str) -> bool:
    """Whether a uid owning nothing can list ``path`` (every ancestor needs o+x)."""
    parts = os.path.abspath(path).split("/")
    for i in range(2, len(parts) + 1):
        try:
            mode = os.stat("/".join(parts[:i]) or "/").st_mode
        except OSError:
            return False
        if not mode & 0o001:
            return False
    return bool(os.stat(path).st_mode & 0o004)


def keep_only_read_caps() -> bool:
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
    return LIBC.capset(ctypes.byref(header), data) == 0


def kill_uid(uid: int) -> None:
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


def remove_leftovers(uid: int) -> None:
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


def _count_own_tasks() -> int:
    uid, n = os.getuid(), 0
    try:
        for pid in os.listdir("/proc"):
            if pid.isdigit():
                try:
                    if os.stat(f"/proc/{pid}").st_uid == uid:
                        n += len(os.listdir(f"/proc/{pid}/task"))
                except OSError:
                    pass
    except OSError:
        return 4096
    return n + 64

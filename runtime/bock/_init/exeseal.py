"""CVE-2019-5736 for containers that may hold CAP_SYS_PTRACE: a sealed interpreter.

Between ``create`` and ``start`` the container's init is a host Python process, so
``/proc/<init>/exe`` is the host's interpreter. By default nothing in the container can
open that link: the init is non-dumpable (``PR_SET_DUMPABLE 0``) until it execs, and
opening the exe of a non-dumpable process needs CAP_SYS_PTRACE in the user namespace
that owns the init's memory map (``mm->user_ns``) — the host's, because the init was
forked, never exec'd, after the runtime entered any new user namespace. A container
process gets CAP_SYS_PTRACE there only when the config grants it (without a new user
namespace), and another process can see the init only through a pid namespace it
shares with it. Before ``start`` that is a process of ``bock exec`` (which gets the
container's capabilities unless told otherwise), another container that joins the pid
namespace, or anything in a pid namespace that is the host's or joined by path. When
one of them may hold CAP_SYS_PTRACE (:func:`needs_seal`), the init's first stage
re-executes the interpreter from a file that cannot be written (runc 1.2's "exeseal"):

* an overlayfs made with the new mount API (``fsopen``/``fsmount``), read-only, with no
  upper layer: the lower layers are the interpreter's directory and an empty detached
  tmpfs (Linux 6.1 needs two lower layers without an upper one). Neither mount is ever
  attached anywhere, so nothing shows in any mount table and nothing propagates; the
  open file is all that keeps them alive. Opening ``/proc/<pid>/exe`` for writing then
  fails with EROFS.
* where overlayfs cannot be used (no overlay module, no CAP_SYS_ADMIN): a memfd copy of
  the interpreter, sealed against writes, growing, shrinking and further seals (runc's
  older answer). Opening ``/proc/<pid>/exe`` for writing fails with ETXTBSY while the
  init runs it, and writing through a handle kept until after its exec with EPERM.

A process that may hold CAP_SYS_PTRACE and would join the pid namespace of an init that
decided it needed no seal is refused instead (:func:`check_ptrace_joiner`): ``exec
--cap CAP_SYS_PTRACE`` into a created container, a container that joins its pid namespace.

The new image is the same interpreter (same pid, same fds), so the init's parent sees
nothing: :func:`resume` loads the init's context (bock._init.ctxcodec) from an inherited
memfd, imports every module of the runtime's that the init may use (the host's library is
out of reach once the init enters the container's mount namespace), and calls the same
stage function again. The cost is about one interpreter start (~18 ms of CPU), paid only
when :func:`needs_seal` says so; ``bock exec`` seals its helper (a host Python in the
container's pid namespace until it execs) by the same rule.
"""

from __future__ import annotations

import os
import sys

PTRACE = "CAP_SYS_PTRACE"

MOUNT_ATTR_RDONLY = 0x1
MOUNT_ATTR_NOSUID = 0x2
MOUNT_ATTR_NODEV = 0x4
MOUNT_ATTR_NOEXEC = 0x8
MFD_CLOEXEC = 0x1
MFD_ALLOW_SEALING = 0x2
MFD_EXEC = 0x10
F_SEAL_SEAL = 0x1
F_SEAL_SHRINK = 0x2
F_SEAL_GROW = 0x4
F_SEAL_WRITE = 0x8

# The new interpreter's first words: the runtime's own sys.path, then resume().
BOOT = "import sys; sys.path[:] = sys.argv[3:]; from bock._init.exeseal import resume; resume()"


# -- when ----------------------------------------------------------------------------------


def may_hold_ptrace(capabilities: object) -> bool:
    """Whether a process with these capabilities (a spec ``Capabilities`` or its JSON) may
    hold CAP_SYS_PTRACE. None means the process keeps every capability it has (runc too)."""
    if capabilities is None:
        return True
    get = capabilities.get if isinstance(capabilities, dict) else lambda kind: getattr(capabilities, kind)
    return any(PTRACE in (get(kind) or ()) for kind in _CAP_SETS)


_CAP_SETS = ("bounding", "effective", "permitted", "inheritable", "ambient")


def own_user_ns(linux: object) -> bool:
    user = linux.namespace("user")
    return user is not None and not user.path


def needs_seal(linux: object, *capabilities: object) -> bool:
    """Whether a runtime process waiting in the container (its init, an exec helper) must
    run a sealed interpreter. ``capabilities``: the sets of the processes that will share
    the container's namespaces (the container's process; for ``exec`` also the new one).

    * the pid namespace is the host's or joined by path: other processes there, with
      capabilities we know nothing about, can see the init;
    * or one of those processes may hold CAP_SYS_PTRACE (in its bounding set is enough: a
      setuid binary can gain it) in the host's user namespace, i.e. the container has no
      user namespace of its own (a new one makes every capability it holds one in a child
      of the namespace that owns the init's memory map, which does not count). With the
      container's own capabilities this covers ``bock exec`` too, the usual way a process
      joins a created container; a process given more is checked by
      :func:`check_ptrace_joiner`.
    """
    pid = linux.namespace("pid")
    if pid is None or pid.path:
        return True
    if own_user_ns(linux):
        return False
    return any(may_hold_ptrace(c) for c in capabilities)


def check_joined(spec: object) -> str | None:
    """``create``: the error text when the container joins a pid namespace by path where it
    must not (see :func:`check_ptrace_joiner`)."""
    pid = spec.linux.namespace("pid")
    if pid is None or not pid.path:
        return None
    return check_ptrace_joiner(pid.path, own_user_ns(spec.linux), spec.process.capabilities)


# -- what a process that joins a pid namespace checks ----------------------------------------


def unsealed_in_pid_ns(pid_ns: os.stat_result) -> list[int]:
    """The pids in that pid namespace that run the runtime's own interpreter, unsealed: the
    init of a container created without the seal, waiting for ``start``."""
    ours = os.stat("/proc/self/exe")
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            ns = os.stat(f"/proc/{name}/ns/pid")
            if (ns.st_dev, ns.st_ino) != (pid_ns.st_dev, pid_ns.st_ino):
                continue
            exe = os.stat(f"/proc/{name}/exe")
        except OSError:
            continue  # gone, or a kernel thread
        if (exe.st_dev, exe.st_ino) == (ours.st_dev, ours.st_ino):
            found.append(int(name))
    return found


def check_ptrace_joiner(pid_ns_path: str, own_user_ns: bool, capabilities: object) -> str | None:
    """The error text when a process that may hold CAP_SYS_PTRACE (in the host's user
    namespace) would join a pid namespace where a container's init waits unsealed.

    That init decided at its ``create`` that it needed no seal; a later process cannot
    change it, so it is refused instead (runc seals every init and has no such case). The
    host's own pid namespace is not checked: CAP_SYS_PTRACE there reaches every process."""
    if own_user_ns or not may_hold_ptrace(capabilities):
        return None
    try:
        target = os.stat(pid_ns_path)
        mine = os.stat("/proc/self/ns/pid")
    except OSError:
        return None  # reported where the namespace is opened
    if (target.st_dev, target.st_ino) == (mine.st_dev, mine.st_ino):
        return None
    pids = unsealed_in_pid_ns(target)
    if not pids:
        return None
    return (
        f"refusing a process that may hold {PTRACE} in pid namespace {pid_ns_path}: process {pids[0]} "
        "there is a container init waiting for start that runs the host's interpreter "
        "(CVE-2019-5736); start that container first"
    )


# -- what the new image imports ------------------------------------------------------------

# The runtime's side (command line, state, cgroup manager, schema): the init never uses them.
RUNTIME_SIDE = (
    "bock._args",
    "bock._cgroups",
    "bock._commands_extra",
    "bock._lifecycle",
    "bock._main",
    "bock._schema",
    "bock._state",
)
# Standard-library modules that the init's code imports inside functions: loaded in the new
# image when the runtime had them loaded (after pivot_root nothing more can be imported).
LAZY_STDLIB = ("_sha256", "_socket", "ctypes", "fcntl", "hashlib", "io", "shutil", "tempfile", "time")


def init_modules(loaded: object) -> list[str]:
    """What the new image imports before it resumes: the runtime's loaded modules that the
    init may use (every bock module but the runtime side's, and LAZY_STDLIB). A bock module
    imports its own dependencies; importing the rest (re, the CLI) would cost ~10 ms."""
    return [
        name
        for name in loaded
        if ((name == "bock" or name.startswith("bock.")) and not name.startswith(RUNTIME_SIDE))
        or name in LAZY_STDLIB
    ]


# -- how -----------------------------------------------------------------------------------


def _escape(path: str) -> str:
    """overlayfs option syntax: ``\\``, ``:`` and ``,`` in a layer path are escaped."""
    return path.replace("\\", "\\\\").replace(":", "\\:").replace(",", "\\,")


def _close(fd: int) -> None:
    try:
        os.close(fd)
    except OSError:
        pass


def overlay_copy(sys_: object, path: str) -> int:
    """A read-only fd of ``path`` through a detached, upper-less overlayfs."""
    directory, name = os.path.split(path)
    fs = sys_.fsopen("tmpfs")
    try:
        sys_.fsconfig(fs, "size", "4k")
        sys_.fsconfig(fs, "mode", "0500")
        sys_.fsconfig(fs, "create", None)
        empty = sys_.fsmount(fs, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC)
    finally:
        _close(fs)
    try:
        fs = sys_.fsopen("overlay")
        try:
            sys_.fsconfig(fs, "lowerdir", f"{_escape(directory)}:/proc/self/fd/{empty}")
            sys_.fsconfig(fs, "create", None)
            mnt = sys_.fsmount(fs, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV)
        finally:
            _close(fs)
    finally:
        _close(empty)
    try:
        return sys_.openat(mnt, name, os.O_RDONLY | os.O_CLOEXEC)
    finally:
        _close(mnt)


def memfd_copy(sys_: object, path: str) -> int:
    """A sealed memfd copy of ``path``: no write, grow, shrink or new seal."""
    flags = MFD_CLOEXEC | MFD_ALLOW_SEALING
    try:
        fd = sys_.memfd_create("bock-init", flags | MFD_EXEC)  # executable even with vm.memfd_noexec
    except OSError:  # EINVAL before Linux 6.3: memfds are executable there anyway
        fd = sys_.memfd_create("bock-init", flags)
    try:
        src = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            size = os.fstat(src).st_size
            offset = 0
            while offset < size:
                sent = os.sendfile(fd, src, offset, size - offset)
                if sent == 0:
                    raise OSError(5, f"copy of {path}: short read")
                offset += sent
        finally:
            os.close(src)
        sys_.add_seals(fd, F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE)
    except BaseException:
        _close(fd)
        raise
    return fd


def sealed_copy(sys_: object, path: str) -> tuple[int, str]:
    """(fd, "overlay" or "memfd"): the interpreter, from a source that cannot be written."""
    try:
        return overlay_copy(sys_, path), "overlay"
    except OSError:
        pass  # no overlayfs, no CAP_SYS_ADMIN over our mount namespace: the older way
    try:
        return memfd_copy(sys_, path), "memfd"
    except OSError as err:  # fail closed: the init never waits unsealed where it must not
        raise OSError(err.errno, f"cannot seal the interpreter (CVE-2019-5736): {err.strerror}") from None


def _payload_fds(ctx: object) -> list[int]:
    """The fds a stage needs across the re-exec (everything else stays close-on-exec)."""
    fds = [ctx.sync.fileno()]
    for name in ("fifo_fd", "console_fd", "join_user", "user_fd"):
        fd = getattr(ctx, name, None)
        if fd is not None:
            fds.append(fd)
    for name in ("join", "ns_fds"):
        fds.extend(fd for fd, _ in getattr(ctx, name, None) or ())
    security = getattr(ctx, "security", None)
    if security is not None:
        fds.extend(security.mount_fds.values())
    from bock._log import log

    if log.fd > 2:
        fds.append(log.fd)
    return fds


def reexec(ctx: object, entry: object) -> None:
    """Re-execute the interpreter sealed, then run ``entry(ctx)`` in the new image.

    Returns only with ``ctx.sys`` a recording seam (the unit tests); raises OSError when
    neither copy could be made or the exec failed (the caller reports it)."""
    sys_ = getattr(ctx, "sys", None)
    if sys_ is None:
        from bock._syscalls import LinuxSyscalls

        sys_ = LinuxSyscalls()
    interpreter = os.readlink("/proc/self/exe")
    host = os.stat("/proc/self/exe")
    fd, how = sealed_copy(sys_, interpreter)
    ctx.seal = None  # the new image runs the stage itself
    fds = _payload_fds(ctx)
    preserved = [n for n in range(3, 3 + (getattr(ctx, "preserve_fds", 0) or 0)) if _is_open(n)]
    from bock._log import log

    payload = {
        "ctx": ctx,
        "entry": entry,
        "fds": fds,
        "host": (host.st_dev, host.st_ino),
        "how": how,
        "log": (log.fd, log.fmt, log.debug_on),
        "modules": init_modules(sys.modules),
    }
    data = os.memfd_create("bock-init-ctx", 0)  # inherited by the new image, which closes it
    try:
        from bock._init import ctxcodec

        _write_all(data, ctxcodec.dumps(payload))
        os.lseek(data, 0, os.SEEK_SET)
        for n in fds + preserved:
            os.set_inheritable(n, True)
        program = sys.executable or interpreter  # argv[0]: where Python finds its library
        # the package's own directory first: an editable install finds it by a meta-path hook
        paths = [os.path.dirname(os.path.dirname(os.path.dirname(__file__))), *sys.path]
        argv = [program, "-IS", "-c", BOOT, str(data), str(ctx.sync.fileno()), *paths]
        sys_.execveat(fd, argv, os.environ)
    finally:
        _close(data)
        _close(fd)


def _is_open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _import(name: str) -> object:
    __import__(name)
    return sys.modules[name]


def resume() -> None:
    """The sealed image's entry (see BOOT): finish the stage that was interrupted."""
    data_fd, sync_fd = int(sys.argv[1]), int(sys.argv[2])
    try:
        chunks = []
        while chunk := os.read(data_fd, 1 << 20):
            chunks.append(chunk)
        os.close(data_fd)
        from bock._init import ctxcodec

        payload = ctxcodec.loads(b"".join(chunks))
        for name in payload["modules"]:
            if name not in sys.modules:
                try:
                    _import(name)
                except Exception:  # a module that only the parent could load
                    pass
        from bock._init import process
        from bock._log import log

        log.fd, log.fmt, log.debug_on = payload["log"]
        process.host_interpreter = payload["host"]
        for fd in payload["fds"]:
            os.set_inheritable(fd, False)
        entry, ctx = payload["entry"], payload["ctx"]
    except BaseException as err:
        msg = f"error sealed interpreter: {type(err).__name__}: {err}"
        try:
            os.write(sync_fd, msg.encode())  # a sync message: "error <text>"
        except OSError:
            pass
        os._exit(1)
    entry(ctx)
    os._exit(1)  # a stage never returns

"""``bock exec``: run one more process inside a running container.

The process joins every namespace and the cgroups of the container's init and gets
the container's (or the given) capabilities, seccomp filter, rlimits, user and LSM
label. The pid bock reports (pid file) is the real process: bock forks a child that
enters the namespaces and forks the grandchild that execs, then the child exits; so the
process ends up a child of the caller's subreaper (containerd's shim, conmon) — or of
``bock exec`` itself in the foreground, where bock waits for it and exits with its
status (128+signal when killed).
"""

from __future__ import annotations

import os

from bock._init import setns_exec, sync
from bock._spec.config import Process, Spec
from bock._state import SECCOMP_CACHE, Container
from bock.errors import BadState, ConfigError, ExecError, UsageError

PR_SET_CHILD_SUBREAPER = 36
# namespace types in the order they are joined: user (separately, first), ..., mount last
_NS_ORDER = ("cgroup", "ipc", "uts", "network", "pid", "time", "mount")
_NS_FILES = {
    "pid": "pid",
    "network": "net",
    "mount": "mnt",
    "ipc": "ipc",
    "uts": "uts",
    "user": "user",
    "cgroup": "cgroup",
    "time": "time",
}


class ExecOptions:
    __slots__ = (
        "cgroup",
        "console_socket",
        "detach",
        "ignore_paused",
        "pid_file",
        "pidfd_socket",
        "preserve_fds",
    )

    def __init__(self, **kw: object) -> None:
        self.cgroup = kw.pop("cgroup", None) or []
        self.console_socket = kw.pop("console_socket", None)
        self.detach = bool(kw.pop("detach", False))
        self.ignore_paused = bool(kw.pop("ignore_paused", False))
        self.pid_file = kw.pop("pid_file", None)
        self.pidfd_socket = kw.pop("pidfd_socket", None)
        self.preserve_fds = int(kw.pop("preserve_fds", 0) or 0)
        if kw:
            raise TypeError(f"unknown options {sorted(kw)}")


# -- the process description --------------------------------------------------------------


def process_from_file(path: str) -> Process:
    from bock import _jsonlite

    try:
        with open(path, "rb") as f:
            doc = _jsonlite.loads(f.read())
    except OSError as err:
        raise ConfigError(f"open {path}: {err.strerror.lower()}") from None
    except (_jsonlite.JSONError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path}: invalid JSON: {err}") from None
    if not isinstance(doc, dict):
        raise ConfigError(f"{path}: the process must be a JSON object")
    try:
        process = Process.from_json(doc)
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        raise ConfigError(f"{path}: invalid process: {err}") from None
    check_process(process)
    return process


def check_process(process: Process) -> None:
    """runc's validateProcessSpec."""
    if not process.args:
        raise ConfigError("args must not be empty")
    if not process.cwd.startswith("/"):
        raise ConfigError(f"cwd property must be an absolute path: {process.cwd!r}")
    if not all(isinstance(a, str) for a in process.args):
        raise ConfigError("args must be strings")


def _parse_id(value: str, what: str) -> int:
    try:
        num = int(value, 10)
    except ValueError:
        raise UsageError(f"parsing {value} as int for {what} failed") from None
    if num < 0:
        raise UsageError(f"parsing {value} as int for {what} failed")
    return num


def process_from_args(config: dict, args: list[str], **flags: object) -> Process:
    """runc's getProcess: the container's process with the command line's overrides."""
    process = Process.from_json(dict(config.get("process") or {}))
    process.env = list(process.env)  # the lists are shared with the container's config
    process.user.additional_gids = list(process.user.additional_gids)
    if process.capabilities is not None:
        from bock._spec.config import Capabilities

        c = process.capabilities
        process.capabilities = Capabilities(
            **{
                k: list(getattr(c, k))
                for k in ("bounding", "effective", "inheritable", "permitted", "ambient")
            }
        )
    process.args = list(args)
    process.terminal = bool(flags.get("tty"))
    if flags.get("cwd"):
        process.cwd = flags["cwd"]
    for item in flags.get("env") or ():
        process.env.append(item)
    if flags.get("apparmor"):
        process.apparmor_profile = flags["apparmor"]
    if flags.get("process_label"):
        process.selinux_label = flags["process_label"]
    if flags.get("no_new_privs"):
        process.no_new_privileges = True
    caps = flags.get("cap") or []
    if caps:
        from bock._spec.config import Capabilities

        c = process.capabilities or Capabilities()
        for cap in caps:
            for name in ("bounding", "effective", "permitted"):
                getattr(c, name).append(cap)
            if c.inheritable:
                c.inheritable.append(cap)
                c.ambient.append(cap)
        process.capabilities = c
    user = flags.get("user")
    if user:
        uid, _, gid = user.partition(":")
        process.user.uid = _parse_id(uid, "uid")
        if gid:
            process.user.gid = _parse_id(gid, "gid")
    gids = flags.get("additional_gids") or []
    if gids:
        process.user.additional_gids = [_parse_id(g, "additional gid") for g in gids]
    check_process(process)
    return process


# -- where the process goes ---------------------------------------------------------------


def _namespace_fds(container: Container) -> tuple[int | None, list[tuple[int, str]]]:
    """Open /proc/<init>/ns/* for every namespace the container has (skip ours)."""
    listed = {ns.get("type") for ns in (container.config.get("linux") or {}).get("namespaces") or []}
    pid = container.pid
    user_fd = None
    fds: list[tuple[int, str]] = []

    def open_ns(kind: str) -> int | None:
        name = _NS_FILES[kind]
        path = f"/proc/{pid}/ns/{name}"
        try:
            target = os.stat(path)
        except FileNotFoundError:
            if kind == "time":
                return None
            raise BadState("cannot exec in a stopped container") from None
        try:
            mine = os.stat(f"/proc/self/ns/{name}")
            if (mine.st_dev, mine.st_ino) == (target.st_dev, target.st_ino):
                return None
        except FileNotFoundError:
            pass
        return os.open(path, os.O_RDONLY | os.O_CLOEXEC)

    try:
        if "user" in listed:
            user_fd = open_ns("user")
        for kind in _NS_ORDER:
            if kind in listed:
                fd = open_ns(kind)
                if fd is not None:
                    fds.append((fd, kind))
    except BaseException:
        for fd, _ in fds:
            os.close(fd)
        if user_fd is not None:
            os.close(user_fd)
        raise
    return user_fd, fds


def _parse_cgroup_flags(values: list[str]) -> dict[str, str]:
    """``--cgroup path`` (every controller) or ``--cgroup ctrl[,ctrl]:path`` (repeatable)."""
    out: dict[str, str] = {}
    for value in values:
        ctrls, sep, path = value.rpartition(":")
        if not sep:
            if "" in out:
                raise UsageError("--cgroup: only one path for all controllers may be given")
            out[""] = value
            continue
        if not path or not ctrls:
            raise UsageError(f"invalid --cgroup argument: {value}")
        for ctrl in ctrls.split(","):
            out[ctrl] = path
    return out


def cgroup_procs_paths(pid: int, sub: dict[str, str]) -> list[str]:
    """The cgroup.procs files of the init's cgroups (v1: every hierarchy; + cgroup2)."""
    from bock._init.cgroupfs import host_hierarchies

    mounts_v1: dict[frozenset, str] = {}
    mount_v2 = None
    for point, fstype, superopts in host_hierarchies():
        if fstype == "cgroup2":
            mount_v2 = point
        else:
            opts = [o for o in superopts.split(",") if o not in ("rw", "ro")]
            mounts_v1[frozenset(opts)] = point
    out: list[str] = []
    with open(f"/proc/{pid}/cgroup") as f:
        lines = f.read().splitlines()
    used: set[str] = set()
    for line in lines:
        _n, ctrls, path = line.split(":", 2)
        if not ctrls:
            if mount_v2 is None:
                continue
            base = mount_v2
            names = [""]
        else:
            names = ctrls.split(",")
            base = None
            for opts, point in mounts_v1.items():
                if set(names) <= opts:
                    base = point
                    break
            if base is None:
                continue
        extra = None
        for name in names:
            if name in sub:
                extra = sub[name]
                used.add(name)
        if extra is None and "" in sub:
            extra = sub[""]
            used.add("")
        directory = base + path.rstrip("/")
        if extra:
            directory = os.path.normpath(directory + "/" + extra.lstrip("/"))
            if not os.path.isdir(directory):
                raise ConfigError(f"cgroup sub-path {extra!r} does not exist: {directory}")
        out.append(directory + "/cgroup.procs")
    unknown = set(sub) - used
    if unknown:
        raise ConfigError(f"--cgroup: unknown controller(s) {', '.join(sorted(unknown))}")
    return out


def _security_for(container: Container, process: Process):
    from bock._init.security import Security
    from bock._spec.config import Hooks

    spec = Spec.from_json(container.config)
    object.__setattr__(spec, "process", process)
    object.__setattr__(spec, "hooks", Hooks())
    # the same compiled-program cache as create's: a hit for the container's own profile
    return Security(spec, seccomp_cache=os.path.join(container.root, SECCOMP_CACHE))


def _sealer(container: Container, status: str, linux, process: Process):
    """exeseal.reexec when the exec helper (a host Python in the container's pid namespace
    until it execs) must run a sealed interpreter; refuses a process that may hold
    CAP_SYS_PTRACE next to an init that waits unsealed. See bock._init.exeseal."""
    from bock._init import exeseal

    if status == "created":
        refused = exeseal.check_ptrace_joiner(
            f"/proc/{container.pid}/ns/pid", exeseal.own_user_ns(linux), process.capabilities
        )
        if refused:
            raise BadState(refused)
    own = (container.config.get("process") or {}).get("capabilities")
    return exeseal.reexec if exeseal.needs_seal(linux, own, process.capabilities) else None


def _console(opts: ExecOptions, process: Process):
    """(fd for the grandchild, our end for a foreground terminal or None)."""
    if opts.detach and process.terminal and not opts.console_socket:
        raise UsageError("cannot allocate tty if runc will detach without setting console socket")
    if opts.console_socket and (not opts.detach or not process.terminal):
        raise UsageError("cannot use console socket if runc will not detach or allocate tty")
    if not process.terminal:
        return None, None
    import _socket

    if opts.console_socket:
        from bock._lifecycle.create import connect_console_socket

        return connect_console_socket(opts.console_socket, ExecError), None
    mine, theirs = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_STREAM | _socket.SOCK_CLOEXEC)
    return theirs.detach(), mine


# -- the operation ------------------------------------------------------------------------


def exec_process(container: Container, process: Process, opts: ExecOptions) -> int:
    status = container.status()
    if status == "stopped":
        raise BadState("cannot exec in a stopped container")
    if status == "paused" and not opts.ignore_paused:
        raise BadState("cannot exec in a paused container (use --ignore-paused to override)")
    from bock._libc import libc

    security = _security_for(container, process)
    seal = _sealer(container, status, security.spec.linux, process)
    cgroup_procs = cgroup_procs_paths(container.pid, _parse_cgroup_flags(opts.cgroup))
    console_fd, console_end = _console(opts, process)
    user_fd, ns_fds = _namespace_fds(container)
    if not container.init_alive():
        raise BadState("cannot exec in a stopped container")
    console_mod = None
    if process.terminal:
        from bock._init import console as console_mod
    from bock._init.process import env_dict

    parent_sock, child_sock = sync.socketpair()
    ctx = setns_exec.ExecContext(
        cgroup_procs=cgroup_procs,
        console_fd=console_fd,
        console_mod=console_mod,
        env=env_dict(process.env),
        ns_fds=ns_fds,
        preserve_fds=opts.preserve_fds,
        process=process,
        seal=seal,
        security=security,
        sync=child_sock,
        user_fd=user_fd,
    )
    if not opts.detach:
        libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)  # the grandchild becomes our child
    from bock._warm import warmer

    warmer.wait()  # never fork with a live thread (started by bock._main for exec)
    child = os.fork()
    if child == 0:
        parent_sock.close()
        setns_exec.child(ctx)
    child_sock.close()
    for fd, _ in ns_fds:
        os.close(fd)
    if user_fd is not None:
        os.close(user_fd)
    if console_fd is not None:
        os.close(console_fd)
    pid = 0
    error = None
    try:
        while True:
            verb, payload, fds = sync.recv(parent_sock, want_fds=1)
            if not verb:
                break
            if verb == "pid":
                pid = int(payload)
            elif verb == "error":
                error = payload
            elif verb == "seccomp":
                _send_notify(container, fds, pid)
                sync.send(parent_sock, "ok")
    finally:
        parent_sock.close()
        os.waitpid(child, 0)
    if error is not None or not pid:
        if pid:
            from bock._lifecycle.wait import reap_if_child

            reap_if_child(pid)
        if console_end is not None:
            console_end.close()
        raise ExecError(f"unable to start container process: {error or 'exec child exited unexpectedly'}")
    master = None
    if console_end is not None:
        from bock._lifecycle.run import _receive_master

        master = _receive_master(console_end)
    if opts.pidfd_socket:
        from bock._lifecycle.create import send_pidfd

        send_pidfd(opts.pidfd_socket, pid, "setns")  # runc's name for an exec'd process
    if opts.pid_file:
        from bock._lifecycle.create import write_pid_file

        write_pid_file(opts.pid_file, pid)
    if opts.detach:
        return 0
    from bock._lifecycle.run import _wait

    return _wait(pid, master)


def _send_notify(container: Container, fds: list[int], pid: int) -> None:
    from bock._security.seccomp import send_notify_fd

    seccomp = (container.config.get("linux") or {}).get("seccomp") or {}
    state = container.oci_state()
    try:
        send_notify_fd(seccomp["listenerPath"], fds[0], state, seccomp.get("listenerMetadata", ""))
    finally:
        for fd in fds:
            os.close(fd)

"""``bock create``: build the container and leave its init waiting on exec.fifo."""

from __future__ import annotations

import os

from bock import _syscalls as s
from bock._init import sync
from bock._init.stages import HookState, InitContext, stage1
from bock._spec.config import Spec
from bock._state import FIFO, SECCOMP_CACHE, Container, proc_start_time, rfc3339_now, validate_id
from bock.errors import BockError, ConfigError, ContainerExists, ExecError

PR_SET_CHILD_SUBREAPER = 36


class CreateOptions:
    __slots__ = (
        "bundle",
        "cid",
        "console_fd",
        "console_socket",
        "no_new_keyring",
        "no_pivot",
        "pid_file",
        "pidfd_socket",
        "preserve_fds",
        "root",
        "rootless",
        "systemd",
    )

    def __init__(self, root: str, cid: str, bundle: str, **kw: object) -> None:
        self.root = root
        self.cid = cid
        self.bundle = bundle
        self.pid_file = kw.pop("pid_file", None)
        self.console_socket = kw.pop("console_socket", None)
        self.pidfd_socket = kw.pop("pidfd_socket", None)
        self.console_fd = kw.pop("console_fd", None)  # `run` hands its own socket end
        self.no_pivot = bool(kw.pop("no_pivot", False))
        self.no_new_keyring = bool(kw.pop("no_new_keyring", False))
        self.preserve_fds = int(kw.pop("preserve_fds", 0) or 0)
        self.systemd = bool(kw.pop("systemd", False))
        self.rootless = kw.pop("rootless", "auto")
        if kw:
            raise TypeError(f"unknown options {sorted(kw)}")


def write_pid_file(path: str, pid: int) -> None:
    """runc's createPidFile: ``.<name>`` with O_EXCL|O_SYNC, then rename; digits only."""
    directory, name = os.path.split(path)
    tmp = os.path.join(directory, "." + name)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_SYNC | os.O_CLOEXEC, 0o666)
    try:
        os.write(fd, str(pid).encode())
    finally:
        os.close(fd)
    os.rename(tmp, path)


def _namespaces(spec: Spec) -> tuple[int, list[tuple[int, int]], int | None, bool]:
    """(flags of new namespaces but user, [(fd, type) to join], user fd to join, new user?)"""
    new = 0
    join: list[tuple[int, int]] = []
    join_user = None
    new_user = False
    mount_join = None
    try:
        for ns in spec.linux.namespaces:
            flag = s.NAMESPACE_FLAGS[ns.type]
            if ns.path:
                try:
                    fd = os.open(ns.path, os.O_RDONLY | os.O_CLOEXEC)
                except OSError as err:
                    raise ConfigError(f"open {ns.path}: {err.strerror.lower()}") from None
                if ns.type == "user":
                    join_user = fd
                elif ns.type == "mount":
                    mount_join = (fd, flag)
                else:
                    join.append((fd, flag))
            elif ns.type == "user":
                new_user = True
            else:
                new |= flag
    except BaseException:
        for fd, _ in join:
            os.close(fd)
        raise
    if mount_join is not None:
        join.append(mount_join)  # the mount namespace last: it changes what paths mean
    return new, join, join_user, new_user


def _console_fd(opts: CreateOptions, spec: Spec) -> int | None:
    terminal = spec.process.terminal
    if opts.console_fd is not None:
        return opts.console_fd
    if opts.console_socket and not terminal:
        raise ConfigError("cannot use console socket if runc will not detach or allocate tty")
    if terminal and not opts.console_socket:
        raise ConfigError("cannot allocate tty if runc will detach without setting console socket")
    if not terminal:
        return None
    return connect_console_socket(opts.console_socket, BockError)


def connect_console_socket(path: str, error: type[BockError]) -> int:
    """Connect to the caller's --console-socket (in the host's context, as runc does)."""
    import _socket

    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM | _socket.SOCK_CLOEXEC)
    try:
        sock.connect(path)
    except OSError as err:
        sock.close()
        raise error(f"failed to connect to console socket {path}: {err.strerror}") from None
    return sock.detach()


def create(opts: CreateOptions, doc: dict, spec: Spec) -> Container:
    validate_id(opts.cid)
    from bock._init.security import Security

    # compiles seccomp (or finds it in the root's cache), parses capabilities: errors before anything exists
    security = Security(spec, seccomp_cache=os.path.join(opts.root, SECCOMP_CACHE))
    from bock._init import exeseal

    refused = exeseal.check_joined(spec)  # CAP_SYS_PTRACE next to an unsealed waiting init
    if refused:
        raise ConfigError(refused)
    if security.warnings:  # what runc only warns about (personality flags, a userns path with maps)
        from bock import _log

        for warning in security.warnings:
            _log.log.warning(warning)
    bundle = opts.bundle
    rootfs = spec.root.path
    if not rootfs.startswith("/"):
        rootfs = os.path.join(bundle, rootfs)
    rootfs = os.path.realpath(rootfs)
    if not os.path.isdir(rootfs):
        raise ConfigError(f'rootfs ("{rootfs}") does not exist')
    os.makedirs(opts.root, 0o711, exist_ok=True)
    state_dir = os.path.join(opts.root, opts.cid)
    try:
        os.mkdir(state_dir, 0o711)
    except FileExistsError:
        raise ContainerExists(opts.cid) from None
    cleanup = _Cleanup(state_dir)
    try:
        return _create(opts, doc, spec, security, rootfs, state_dir, cleanup)
    except BaseException:
        cleanup.run()
        raise


class _Cleanup:
    """Undo a half-done create: kill the init, remove the cgroup and the state directory."""

    __slots__ = ("cgroup", "pids", "state_dir")

    def __init__(self, state_dir: str) -> None:
        self.state_dir = state_dir
        self.cgroup = None
        self.pids: list[int] = []

    def run(self) -> None:
        from bock._lifecycle.wait import kill_and_wait

        for pid in self.pids:
            kill_and_wait(pid, None)
        if self.cgroup is not None:
            try:
                self.cgroup.destroy()  # also the parents its create() made
            except (OSError, BockError):
                pass  # the error being reported is the create's, not this one
        from bock._fsutil import rmtree

        try:
            rmtree(self.state_dir)
        except OSError:
            pass


def _create(
    opts: CreateOptions, doc: dict, spec: Spec, security, rootfs: str, state_dir: str, cleanup: _Cleanup
) -> Container:
    from bock._libc import libc

    fifo_path = os.path.join(state_dir, FIFO)
    old = os.umask(0)  # runc: the fifo is 0622 whatever the caller's umask
    try:
        os.mkfifo(fifo_path, 0o622)
    finally:
        os.umask(old)
    fifo_fd = os.open(fifo_path, os.O_PATH | os.O_CLOEXEC)
    console_fd = _console_fd(opts, spec)
    new_flags, join, join_user, new_user = _namespaces(spec)

    if new_user and spec.linux.uid_mappings:
        _chown_to_container_root(fifo_path, spec)
    cgroup = _cgroup_manager(opts, spec)
    cleanup.cgroup = cgroup
    parent_sock, child_sock = sync.socketpair()
    created = rfc3339_now()

    state_for_hooks = HookState(opts.cid, opts.bundle, spec.annotations)
    ctx = InitContext(
        spec=spec,
        bundle=opts.bundle,
        rootfs=rootfs,
        sync=child_sock,
        fifo_fd=fifo_fd,
        console_fd=console_fd,
        no_pivot=opts.no_pivot,
        keyring=None if opts.no_new_keyring else "_ses." + opts.cid,
        preserve_fds=opts.preserve_fds,
        new_flags=new_flags,
        join=join,
        join_user=join_user,
        new_user=new_user,
        parent_hooks=bool(spec.hooks.prestart or spec.hooks.create_runtime),
        sys=s.LinuxSyscalls(),
        security=security,
        state_for_hooks=state_for_hooks,
        console_mod=_console_module(spec),
        seal=_sealer(spec),
    )
    security.prepare_mounts(opts.bundle)  # idmapped mounts: made in the host namespaces
    libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    from bock._warm import warmer

    warmer.wait()  # never fork with a live thread
    try:
        pid1 = os.fork()
        if pid1 == 0:
            parent_sock.close()
            stage1(ctx)
    finally:
        security.close_mount_fds()  # the init has its copies
    cleanup.pids.append(pid1)
    child_sock.close()
    os.close(fifo_fd)
    for fd, _ in join:
        os.close(fd)
    if join_user is not None:
        os.close(join_user)
    if console_fd is not None and opts.console_fd is None:
        os.close(console_fd)
    init_pid = 0
    try:
        if new_user:
            sync.expect(parent_sock, "userns")
            _write_id_maps(pid1, spec)
        if cgroup is not None:
            cgroup.apply(pid1)
        if spec.process.oom_score_adj is not None:
            # runc: written before the init exists (it inherits it) and by the runtime, whose
            # privileges count: lowering it needs CAP_SYS_RESOURCE in the host's user namespace
            from bock._security.process_attrs import set_oom_score_adj

            set_oom_score_adj(spec.process.oom_score_adj, pid1)
        sync.send(parent_sock, "go")
        while True:
            verb, payload, fds = sync.recv(parent_sock, want_fds=1)
            if verb == "pid":
                init_pid = int(payload)
                cleanup.pids.append(init_pid)
            elif verb == "hooks":
                _run_parent_hooks(spec, state_for_hooks("creating", init_pid), parent_sock)
            elif verb == "seccomp":
                _send_notify(spec, fds, state_for_hooks("creating", init_pid), opts)
                sync.send(parent_sock, "ok")
            elif verb == "rlimits":
                _set_rlimits(init_pid, spec.process.rlimits, parent_sock)
            elif verb == "ready":
                break
            elif verb == "error":
                raise ExecError(f"unable to start container process: {payload}")
            else:
                raise ExecError("unable to start container process: container init exited unexpectedly")
    finally:
        parent_sock.close()
        os.waitpid(pid1, 0)
    start_time = proc_start_time(init_pid)
    if start_time is None:
        raise ExecError("unable to start container process: container init exited unexpectedly")
    container = Container(
        opts.root,
        opts.cid,
        {
            "ociVersion": spec.oci_version,
            "pid": init_pid,
            "start_time": start_time,
            "bundle": opts.bundle,
            "rootfs": rootfs,
            "created": created,
            "owner": "",
            "config": doc,
            "cgroup": cgroup.to_state() if cgroup is not None else None,
            "systemd": opts.systemd,
        },
    )
    container.save()
    if opts.pidfd_socket:
        send_pidfd(opts.pidfd_socket, init_pid, "standard")
    if opts.pid_file:
        write_pid_file(opts.pid_file, init_pid)
    return container


def _sealer(spec: Spec):
    """exeseal.reexec when the waiting init must run from a sealed interpreter, else None.

    The default (a new pid namespace, and a container without CAP_SYS_PTRACE or with a user
    namespace of its own) needs nothing more than the init being non-dumpable: opening the
    exe of a non-dumpable process takes CAP_SYS_PTRACE in the host's user namespace, which
    nothing in the container has. See bock._init.exeseal."""
    from bock._init import exeseal

    return exeseal.reexec if exeseal.needs_seal(spec.linux, spec.process.capabilities) else None


def send_pidfd(path: str, pid: int, name: str) -> None:
    """--pidfd-socket (runc >= 1.2): a pidfd of the process, SCM_RIGHTS, the name as data."""
    import _socket

    from bock._lifecycle.wait import pidfd_open

    fd = pidfd_open(pid)
    if fd is None:
        raise ExecError(f"pidfd_open {pid}: the process is gone")
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM | _socket.SOCK_CLOEXEC)
    try:
        sock.connect(path)
        sock.sendmsg([name.encode()], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, fd.to_bytes(4, "little"))])
    except OSError as err:
        raise BockError(f"failed to send pidfd to {path}: {err.strerror}") from None
    finally:
        sock.close()
        os.close(fd)


def _console_module(spec: Spec):
    if not spec.process.terminal:
        return None
    from bock._init import console

    return console


def _cgroup_manager(opts: CreateOptions, spec: Spec):
    from bock._cgroups import CgroupManager

    manager = CgroupManager.for_container(
        opts.cid, spec.linux.cgroups_path, systemd=opts.systemd, rootless=opts.rootless == "true"
    )
    resources = None
    if spec.linux.resources is not None:
        from bock._spec.resources import LinuxResources

        resources = LinuxResources.from_json(spec.linux.resources)
    manager.create(resources, device_paths=[d.path for d in spec.linux.devices])
    return manager


def _write_id_maps(pid: int, spec: Spec) -> None:
    from bock._security.idmap import write_id_maps

    write_id_maps(pid, spec.linux.uid_mappings, spec.linux.gid_mappings)


def _chown_to_container_root(path: str, spec: Spec) -> None:
    """runc chowns the exec fifo to the container's root (the host ids its 0 maps to)."""
    from bock._security.idmap import host_id

    os.chown(path, host_id(spec.linux.uid_mappings, 0) or 0, host_id(spec.linux.gid_mappings, 0) or 0)


def _set_rlimits(pid: int, rlimits: list, sock) -> None:
    """As runc: from the runtime, by prlimit on the init, which asks for them once set up and
    before it drops its credentials. Raising a hard limit needs CAP_SYS_RESOURCE in the host's
    user namespace, which the init of a user-namespaced container never has."""
    from bock._security.process_attrs import apply_rlimits

    try:
        apply_rlimits(rlimits, pid)
    except BockError as err:
        msg = f"error setting rlimits for ready process: {err}"
        sync.send(sock, "error", msg)
        raise ExecError(f"unable to start container process: {msg}") from None
    sync.send(sock, "ok")


def _run_parent_hooks(spec: Spec, state: dict, sock) -> None:
    from bock._security.hooks import run_hooks

    try:
        run_hooks(spec.hooks.prestart, state, kind="prestart")
        run_hooks(spec.hooks.create_runtime, state, kind="createRuntime")
    except BockError as err:
        sync.send(sock, "error", str(err))
        raise
    sync.send(sock, "ok")


def _send_notify(spec: Spec, fds: list[int], state: dict, opts: CreateOptions) -> None:
    from bock._security.seccomp import send_notify_fd

    seccomp = spec.linux.seccomp or {}
    try:
        send_notify_fd(seccomp["listenerPath"], fds[0], state, seccomp.get("listenerMetadata", ""))
    finally:
        for fd in fds:
            os.close(fd)

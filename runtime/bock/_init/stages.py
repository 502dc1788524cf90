"""The two forked stages of ``bock create``.

stage 1 (a child of ``bock create``) joins namespaces given by path, creates the
new ones (a user namespace first, so that it owns the others), then forks stage 2
and exits. stage 2 is the container's init: pid 1 in a new pid namespace. It sets up
the rootfs, reports "ready", blocks on exec.fifo until ``bock start``, and execs the
user process. Nothing here returns: each stage ends in ``os._exit`` or ``execve``.
"""

from __future__ import annotations

import _signal
import os

from bock import _syscalls as s
from bock._init import rootfs as rfs
from bock._init import sync
from bock._init.cgroupfs import mount_cgroups  # here, not in the init: an import there costs it ~0.5 ms
from bock._init.context import ContextRecord, failure_text
from bock._init.mountopts import PROPAGATION
from bock._init.process import close_fds_from, env_dict, home_of, look_path, refuse_runtime_exe
from bock._libc import libc
from bock._spec.config import Spec

PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4


class InitContext(ContextRecord):
    """Everything the children need, built by the parent before fork (children inherit it)."""

    __slots__ = (
        "bundle",
        "console_fd",
        "console_mod",
        "fifo_fd",
        "join",
        "join_user",
        "keyring",
        "new_flags",
        "new_user",
        "no_pivot",
        "parent_hooks",
        "preserve_fds",
        "rootfs",
        "seal",
        "security",
        "spec",
        "state_for_hooks",
        "sync",
        "sys",
    )


class HookState:
    """The state document handed to hooks (a class, not a closure: the init's context may
    cross a re-exec as data, see bock._init.exeseal and bock._init.ctxcodec)."""

    __slots__ = ("annotations", "bundle", "cid")

    def __init__(self, cid: str, bundle: str, annotations: dict) -> None:
        self.cid = cid
        self.bundle = bundle
        self.annotations = annotations

    def __call__(self, status: str, pid: int) -> dict:
        from bock import SPEC_VERSION

        return {
            "ociVersion": SPEC_VERSION,
            "id": self.cid,
            "status": status,
            "pid": pid,
            "bundle": self.bundle,
            "annotations": self.annotations,
        }


def _fail(ctx: InitContext, err: BaseException) -> None:
    try:
        sync.send(ctx.sync, "error", failure_text(err))
    except OSError:
        pass
    os._exit(1)


def stage1(ctx: InitContext) -> None:
    try:
        sys = ctx.sys
        if ctx.seal is not None:  # CVE-2019-5736 with CAP_SYS_PTRACE: see bock._init.exeseal
            ctx.seal(ctx, stage1)  # before any namespace: the new image's mm is the host's
        if ctx.join_user is not None:
            sys.setns(ctx.join_user, s.CLONE_NEWUSER)
        if ctx.new_user:
            sys.unshare(s.CLONE_NEWUSER)
            sync.send(ctx.sync, "userns")
        sync.expect(ctx.sync, "go")
        if ctx.new_user or ctx.join_user is not None:
            os.setresgid(0, 0, 0)
            os.setresuid(0, 0, 0)
        for fd, nstype in ctx.join:
            sys.setns(fd, nstype)
            os.close(fd)
        if ctx.new_flags:
            sys.unshare(ctx.new_flags)
        if ctx.new_flags & s.CLONE_NEWTIME and ctx.spec.linux.time_offsets:
            _write_time_offsets(ctx.spec)
        # stage 2 says nothing on the shared socket before stage 1 has sent its pid (the
        # parent would otherwise see "hooks"/"ready" with no pid): it waits for EOF on a
        # pipe whose write end only stage 1 holds.
        hold_r, hold_w = os.pipe2(os.O_CLOEXEC)
        pid = os.fork()
        if pid == 0:
            os.close(hold_w)
            os.read(hold_r, 1)
            os.close(hold_r)
            stage2(ctx)
        os.close(hold_r)
        sync.send(ctx.sync, "pid", str(pid))
        # EOF now, not when this process is torn down (exiting a forked interpreter's
        # copy of the address space takes about half a millisecond the init need not wait)
        os.close(hold_w)
        os._exit(0)
    except BaseException as err:
        _fail(ctx, err)


def _write_time_offsets(spec: Spec) -> None:
    # after unshare(CLONE_NEWTIME), before the init is forked into the namespace
    from bock._security.idmap import write_time_offsets

    write_time_offsets("self", spec.linux.time_offsets)


def _keep_only_fds(ctx: InitContext) -> None:
    """Close every inherited fd that the container must not get (containerd leaks fd 3)."""
    from bock._log import log

    keep = {ctx.sync.fileno(), ctx.fifo_fd, log.for_container_init()}
    if ctx.console_fd is not None:
        keep.add(ctx.console_fd)
    if ctx.security is not None:
        keep.update(ctx.security.mount_fds.values())  # idmapped mounts, attached by mount_all
    first_free = 3 + (ctx.preserve_fds or 0)
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd >= first_free and fd not in keep:
            try:
                os.close(fd)
            except OSError:
                pass


def _cgroup_mounter(ctx: InitContext):
    cgroupns = bool(ctx.new_flags & s.CLONE_NEWCGROUP) or ctx.spec.linux.namespace("cgroup") is not None

    def mount(sys, rootfs, dest, opts):
        mount_cgroups(sys, rootfs, dest, opts, cgroupns)

    return mount


def _join_session_keyring(name: str, userns: bool) -> None:
    """runc's: a session keyring of the container's own, not the caller's; searchable by
    the possessor's uid (or by 'other' in a user namespace). Best effort without keyrings."""
    import ctypes

    from bock._libc import syscall

    try:
        key = syscall("keyctl", 1, name.encode(), None, None, None)  # KEYCTL_JOIN_SESSION_KEYRING
    except OSError as err:
        if err.errno == 38:  # ENOSYS
            return
        raise OSError(err.errno, f"unable to join session keyring: {os.strerror(err.errno)}") from None
    buf = ctypes.create_string_buffer(512)
    syscall("keyctl", 6, key, buf, len(buf), None)  # KEYCTL_DESCRIBE: type;uid;gid;perm;desc
    perm = int(buf.value.split(b";")[3], 16) | (0x8 if userns else 0x80000)
    syscall("keyctl", 5, key, perm, None, None)  # KEYCTL_SETPERM


def _exit_on_signal(signum: int, _frame: object) -> None:
    os._exit(128 + signum)


def stage2(ctx: InitContext) -> None:
    try:
        _init(ctx)
    except BaseException as err:
        _fail(ctx, err)


def _init(ctx: InitContext) -> None:
    # Everything used after pivot_root must be imported by now: the host's Python library
    # is out of reach from inside the rootfs.
    sys = ctx.sys
    spec = ctx.spec
    process = spec.process
    # Non-dumpable until execve: nothing in the container can open /proc/<pid>/exe (the
    # host's python) or our fds while we run (CVE-2019-5736). execve resets it.
    libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    # Like runc's Go init, exit on SIGTERM/SIGHUP while waiting (pid 1 of a pid namespace
    # ignores signals without a handler, even from the host). execve resets handlers.
    for signum in (_signal.SIGTERM, _signal.SIGHUP):
        _signal.signal(signum, _exit_on_signal)
    os.setsid()
    if ctx.keyring:
        _join_session_keyring(ctx.keyring, ctx.new_user or ctx.join_user is not None)
    if process.terminal:
        null = os.open("/dev/null", os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        os.close(null)
    _keep_only_fds(ctx)
    linux = spec.linux
    userns = ctx.new_user or ctx.join_user is not None
    rootfs = ctx.rootfs
    os.umask(0)  # mount points and device nodes get exactly the modes asked for (as runc)
    rfs.prepare_root(sys, spec, rootfs)
    rfs.mount_all(sys, spec, rootfs, ctx.bundle, _cgroup_mounter(ctx), ctx.security.mount_fds)
    if not any(m.destination.rstrip("/") == "/dev" and m.type == "bind" for m in spec.mounts):
        rfs.setup_dev(sys, spec, rootfs, userns)
    if ctx.parent_hooks:
        sync.send(ctx.sync, "hooks")
        sync.expect(ctx.sync, "ok")
    sec = ctx.security
    if spec.hooks.create_container:
        sec.run_hooks(
            spec.hooks.create_container, ctx.state_for_hooks("creating", os.getpid()), "createContainer"
        )
    if ctx.no_pivot:
        rfs.move_root(sys, rootfs)
    else:
        rfs.pivot_root(sys, rootfs)
    if linux.sysctl:
        sec.apply_sysctl(linux.sysctl)
    if process.terminal:
        console = ctx.console_mod
        master, slave, path = console.open_pty()
        if process.console_size:
            console.set_size(slave, process.console_size.height, process.console_size.width)
        console.setup_console(sys, path)
        console.send_master(ctx.console_fd, master)
        os.close(master)
        os.close(ctx.console_fd)
        console.make_controlling(slave)
        os.close(slave)
    if process.cwd:
        cwd = process.cwd
        try:
            os.makedirs(cwd, 0o755, exist_ok=True)
        except OSError:
            pass
    rfs.readonly_paths(sys, linux.readonly_paths)
    rfs.mask_paths(sys, linux.masked_paths)
    if spec.root.readonly:
        rfs.readonly_root(sys)
    if spec.hostname is not None:
        sys.sethostname(spec.hostname)
    if spec.domainname is not None:
        sys.setdomainname(spec.domainname)
    if linux.rootfs_propagation:
        sys.mount(None, "/", None, PROPAGATION[linux.rootfs_propagation], None)
    sec.apply_process_attrs(process)
    try:
        os.chdir(process.cwd)
        chdir_later = False
    except PermissionError:
        chdir_later = True
    except OSError as err:
        raise OSError(err.errno, f'chdir to cwd ("{process.cwd}") set in config.json failed: {err.strerror}')
    os.umask(process.user.umask if process.user.umask is not None else 0o022)
    if process.rlimits:
        # runc: the runtime sets them (prlimit) while the init is still root, before it
        # drops its credentials; raising a hard limit counts the runtime's privileges.
        sync.send(ctx.sync, "rlimits")
        sync.expect(ctx.sync, "ok")
    sec.finalize_credentials(process)
    if chdir_later:
        os.chdir(process.cwd)
    env = env_dict(process.env)
    if "HOME" not in env:
        env["HOME"] = home_of(process.user.uid)
    exe = look_path(process.args[0], env)
    refuse_runtime_exe(exe)
    sec.before_ready(ctx.sync)
    sync.send(ctx.sync, "ready")
    ctx.sync.close()
    # Blocks until `bock start` opens the fifo for reading. The fd stays open (close-on-exec):
    # `start` reads until EOF, which comes exactly when execve succeeds.
    fifo = os.open(f"/proc/self/fd/{ctx.fifo_fd}", os.O_WRONLY | os.O_CLOEXEC)
    os.close(ctx.fifo_fd)
    os.write(fifo, b"0")
    try:
        if spec.hooks.start_container:
            sec.run_hooks(
                spec.hooks.start_container, ctx.state_for_hooks("created", os.getpid()), "startContainer"
            )
        sec.before_exec(process)  # (the init: execCPUAffinity does not apply, see Security)
        close_fds_from(3 + (ctx.preserve_fds or 0))
        for signum in (_signal.SIGPIPE, _signal.SIGXFSZ):  # Python ignores these; runc's child does not
            _signal.signal(signum, _signal.SIG_DFL)
        os.execve(exe, process.args, env)
    except BaseException as err:
        msg = err.strerror if isinstance(err, OSError) and err.strerror else str(err)
        try:
            os.write(fifo, f"\nexec {process.args[0]}: {msg}".encode())
        except OSError:
            pass
        os._exit(127)

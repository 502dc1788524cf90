"""What runs in the forked children of ``bock exec`` (runc's "setns init").

child (a child of ``bock exec``): non-dumpable, joins the container's cgroups (still
with the host's view of /sys/fs/cgroup), then every namespace of the container's init
(user first, mount last), forks the grandchild and exits at once. The grandchild is
born in the container's pid namespace; it sets up the terminal, rlimits, LSM label,
cwd, credentials, seccomp and execs. Nothing here imports: after ``setns`` into the
mount namespace the host's Python library is out of reach, so the parent builds an
:class:`ExecContext` holding every module and value needed, and the children inherit it.
"""

from __future__ import annotations

import _signal
import os

from bock._init import sync
from bock._init.context import ContextRecord, failure_text
from bock._init.process import close_fds_from, env_dict, home_of, look_path, refuse_runtime_exe
from bock._libc import libc, syscall

PR_SET_DUMPABLE = 4


class ExecContext(ContextRecord):
    """Everything the children need, prepared before fork."""

    __slots__ = (
        "cgroup_procs",
        "console_fd",
        "console_mod",
        "env",
        "ns_fds",
        "preserve_fds",
        "process",
        "seal",
        "security",
        "sync",
        "user_fd",
    )


def _fail(ctx: ExecContext, err: BaseException) -> None:
    try:
        sync.send(ctx.sync, "error", failure_text(err))
    except OSError:
        pass
    os._exit(1)


def _host_side_attrs(ctx: ExecContext) -> None:
    """What needs the host's user namespace (as runc's parent does with prlimit): rlimits,
    oom_score_adj; and execCPUAffinity.initial, before joining the cgroup. Inherited by
    the grandchild across fork."""
    process = ctx.process
    pa = ctx.security.pa
    if pa is None:
        return
    if process.rlimits:
        pa.apply_rlimits(process.rlimits)
    if process.oom_score_adj is not None:
        pa.set_oom_score_adj(process.oom_score_adj)
    aff = process.exec_cpu_affinity
    if aff is not None and aff.initial:
        pa.apply_cpu_affinity(aff.initial, which="initial")


def child(ctx: ExecContext) -> None:
    """The first child: cgroups, setns, fork; reports the grandchild's host pid."""
    try:
        if ctx.seal is not None:  # CVE-2019-5736 with CAP_SYS_PTRACE: see bock._init.exeseal
            ctx.seal(ctx, child)  # before any namespace: the new image's mm is the host's
        libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)  # CVE-2019-5736: until execve
        _host_side_attrs(ctx)
        for path in ctx.cgroup_procs:
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
            except OSError as err:
                raise OSError(err.errno, f"failed to join cgroup {os.path.dirname(path)}: {err.strerror}")
            try:
                os.write(fd, b"0")
            except OSError as err:
                raise OSError(
                    err.errno, f"failed to join cgroup {os.path.dirname(path)}: {err.strerror}"
                ) from None
            finally:
                os.close(fd)
        if ctx.user_fd is not None:
            syscall("setns", ctx.user_fd, 0)
            os.setresgid(0, 0, 0)
            os.setresuid(0, 0, 0)
        for fd, kind in ctx.ns_fds:  # the mount namespace is last
            try:
                syscall("setns", fd, 0)
            except OSError as err:
                raise OSError(err.errno, f"failed to join {kind} namespace: {err.strerror}") from None
        pid = os.fork()
        if pid == 0:
            grandchild(ctx)
        sync.send(ctx.sync, "pid", str(pid))
        os._exit(0)
    except BaseException as err:
        _fail(ctx, err)


def grandchild(ctx: ExecContext) -> None:
    """The process that becomes the user's command, inside the container."""
    try:
        process = ctx.process
        sec = ctx.security
        if process.terminal:
            console = ctx.console_mod
            os.setsid()
            master, slave, _path = console.open_pty()
            if process.console_size:
                console.set_size(slave, process.console_size.height, process.console_size.width)
            console.send_master(ctx.console_fd, master)
            os.close(master)
            os.close(ctx.console_fd)
            console.make_controlling(slave)
            os.close(slave)
        sec.apply_process_attrs(process)  # LSM exec labels, personality, I/O priority, scheduler
        try:
            os.chdir(process.cwd)
            chdir_later = False
        except PermissionError:
            chdir_later = True
        except OSError as err:
            raise OSError(
                err.errno, f'chdir to cwd ("{process.cwd}") set in config.json failed: {err.strerror.lower()}'
            ) from None
        os.umask(process.user.umask if process.user.umask is not None else 0o022)
        sec.finalize_credentials(process)
        if chdir_later:
            os.chdir(process.cwd)
        env = ctx.env if ctx.env is not None else env_dict(process.env)
        if "HOME" not in env:
            env["HOME"] = home_of(process.user.uid)  # the container's /etc/passwd, as runc
        exe = look_path(process.args[0], env)
        refuse_runtime_exe(exe)  # /proc/self/exe here is the host's python (CVE-2019-5736)
        sec.before_ready(ctx.sync)
        first = 3 + (ctx.preserve_fds or 0)
        own = ctx.sync.fileno()
        for fd in range(3, first):
            if fd == own:
                continue
            try:
                os.set_inheritable(fd, True)
            except OSError:
                pass
        close_fds_from(first)
        sec.before_exec(process, exec_process=True)
        for signum in (_signal.SIGPIPE, _signal.SIGXFSZ):  # Python ignores these; runc's child does not
            _signal.signal(signum, _signal.SIG_DFL)
        os.execve(exe, process.args, env)
    except BaseException as err:
        _fail(ctx, err)

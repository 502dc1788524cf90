"""`tty: true`: the monitor's side of the runtime's --console-socket, and a holder for the pty master.

The runtime (bock or runc) connects to the socket during `create` and sends the master of the
container's pty (SCM_RIGHTS). The monitor copies the master's output into the container's log.
Closing the last copy of a master hangs up the container's terminal, so a tiny holder process
(`sleep infinity` under another name, its own session) keeps a copy as its fd 3: a monitor that
was killed and started again takes the master back from it with pidfd_getfd(2)."""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import socket
import tempfile

from .errors import MonitorError

HOLDER_FD = 3
HOLDER_NAME = "bockrose-console-holder"
SYS_PIDFD_GETFD = 438  # x86_64, aarch64 and the other asm-generic tables alike


class ConsoleSocket:
    """A listening unix socket in a short private directory (socket paths are limited to 108 bytes)."""

    def __init__(self) -> None:
        self.dir = tempfile.mkdtemp(prefix="bockrose-console-")
        self.path = os.path.join(self.dir, "sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        self.sock.bind(self.path)
        self.sock.listen(1)

    def receive(self, timeout: float = 10.0) -> int:
        """The pty master the runtime sent (it connects and sends before `create` returns)."""
        self.sock.settimeout(timeout)
        try:
            conn, _ = self.sock.accept()
            with conn:
                conn.settimeout(timeout)
                _msg, fds, _flags, _addr = socket.recv_fds(conn, 4096, 1)
        except TimeoutError:
            raise MonitorError(
                "the runtime did not send the container's terminal on --console-socket"
            ) from None
        except OSError as exc:
            raise MonitorError(f"receiving the container's terminal on --console-socket: {exc}") from None
        if not fds:
            raise MonitorError("the runtime's --console-socket message carried no file descriptor")
        os.set_inheritable(fds[0], False)
        return fds[0]

    def close(self) -> None:
        self.sock.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def start_holder(master: int) -> int:
    """Fork `sleep infinity` (argv[0] HOLDER_NAME) holding master as its fd 3; returns its pid.
    The caller's reaper reaps it (the monitor is a subreaper and waits for every child)."""
    sleep = shutil.which("sleep") or "/bin/sleep"
    pid = os.fork()
    if pid == 0:  # child: only dup2 and exec
        try:
            os.setsid()
            os.dup2(master, HOLDER_FD, inheritable=True)
            null = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(null, fd)
            os.closerange(HOLDER_FD + 1, 65536)
            os.execv(sleep, [HOLDER_NAME, "infinity"])
        finally:
            os._exit(127)
    return pid


def is_holder(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().split(b"\0", 1)[0] == HOLDER_NAME.encode()
    except OSError:
        return False


def take_from_holder(pid: int) -> int | None:
    """A copy of the master the holder keeps (pidfd_getfd), or None when it is gone."""
    if not pid or not is_holder(pid):
        return None
    try:
        pidfd = os.pidfd_open(pid)
    except OSError:
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fd = libc.syscall(SYS_PIDFD_GETFD, pidfd, HOLDER_FD, 0)
        if fd < 0:
            return None
        os.set_inheritable(fd, False)
        return fd
    finally:
        os.close(pidfd)


def stop_holder(pid: int) -> None:
    if pid and is_holder(pid):
        with contextlib.suppress(OSError):
            fd = os.pidfd_open(pid)
            try:
                import signal

                signal.pidfd_send_signal(fd, signal.SIGKILL)
            finally:
                os.close(fd)

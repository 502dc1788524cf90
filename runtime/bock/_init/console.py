"""The container's terminal: a pty from the container's devpts, its master handed over
``--console-socket`` (SCM_RIGHTS, one fd, the name as data) exactly as runc does."""

from __future__ import annotations

import _socket
import fcntl
import os
import termios

from bock import _syscalls as s

TIOCGPTN = 0x80045430
TIOCSPTLCK = 0x40045431
TIOCGPTPEER = 0x5441


def open_pty() -> tuple[int, int, str]:
    """Open /dev/ptmx inside the container; return (master, slave, slave path)."""
    master = os.open("/dev/ptmx", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    fcntl.ioctl(master, TIOCSPTLCK, b"\0\0\0\0")
    num = int.from_bytes(fcntl.ioctl(master, TIOCGPTN, b"\0\0\0\0"), "little")
    path = f"/dev/pts/{num}"
    slave = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    return master, slave, path


def set_size(fd: int, height: int, width: int) -> None:
    fcntl.ioctl(
        fd, termios.TIOCSWINSZ, (height).to_bytes(2, "little") + (width).to_bytes(2, "little") + b"\0" * 4
    )


def setup_console(sys: s.LinuxSyscalls, slave_path: str) -> None:
    """Bind the pty slave over /dev/console (creating the mount point if needed)."""
    if not os.path.lexists("/dev/console"):
        os.close(os.open("/dev/console", os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o600))
    sys.mount(slave_path, "/dev/console", "bind", s.MS_BIND, None)


def send_master(sock_fd: int, master: int) -> None:
    sock = _socket.socket(fileno=os.dup(sock_fd))
    try:
        sock.sendmsg([b"/dev/ptmx"], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, master.to_bytes(4, "little"))])
    finally:
        sock.close()


def make_controlling(slave: int) -> None:
    for fd in (0, 1, 2):
        os.dup2(slave, fd)
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)

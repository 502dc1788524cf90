"""The caller's side of the ``--console-socket`` protocol (as go-runc and conmon implement it)."""

from __future__ import annotations

import array
import fcntl
import os
import socket
import struct
import termios
from dataclasses import dataclass
from pathlib import Path

TIOCGPTN = 0x80045430


@dataclass
class Received:
    name: bytes
    fds: list[int]

    def close(self) -> None:
        for fd in self.fds:
            os.close(fd)


class ConsoleSocket:
    """A listening AF_UNIX stream socket; :meth:`receive` accepts one connection and takes its fds."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(str(path))
        self.sock.listen(4)

    def receive(self, timeout: float = 10.0) -> Received:
        self.sock.settimeout(timeout)
        conn, _ = self.sock.accept()
        with conn:
            conn.settimeout(timeout)
            fds = array.array("i")
            name, ancdata, _flags, _addr = conn.recvmsg(4096, socket.CMSG_SPACE(16 * fds.itemsize))
            for level, kind, data in ancdata:
                if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                    fds.frombytes(data[: len(data) - (len(data) % fds.itemsize)])
            return Received(name, list(fds))

    def close(self) -> None:
        self.sock.close()


def pty_number(fd: int) -> int:
    """The pts number of a pty master (raises OSError when *fd* is no pty master)."""
    buf = fcntl.ioctl(fd, TIOCGPTN, b"\0\0\0\0")
    return struct.unpack("I", buf)[0]


def read_until(fd: int, needle: bytes, timeout: float = 10.0) -> bytes:
    import select
    import time

    deadline = time.monotonic() + timeout
    data = b""
    while needle not in data and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            data += chunk
    return data


def window_size(fd: int) -> tuple[int, int]:
    rows, cols, _, _ = struct.unpack("HHHH", fcntl.ioctl(fd, termios.TIOCGWINSZ, b"\0" * 8))
    return rows, cols

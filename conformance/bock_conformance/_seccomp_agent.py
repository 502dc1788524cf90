"""A tiny seccomp user-notification agent (the listenerPath side of SCMP_ACT_NOTIFY).

It accepts one connection on a unix socket, takes the notify fd passed with SCM_RIGHTS together with the
container process state JSON, and answers every notification with a fixed errno.
"""

from __future__ import annotations

import array
import contextlib
import fcntl
import json
import os
import select
import socket
import struct
import threading
from pathlib import Path
from typing import Any

NOTIF_SIZE = 80
NOTIF_RECV = 0xC0502100  # _IOWR('!', 0, struct seccomp_notif)
NOTIF_SEND = 0xC0182101  # _IOWR('!', 1, struct seccomp_notif_resp)


class NotifyAgent:
    def __init__(self, path: Path, errno: int) -> None:
        self.path = path
        self.errno = errno
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(str(path))
        self.sock.listen(4)
        self.state: dict[str, Any] | None = None
        self.nfds = 0
        self.handled: list[int] = []  # syscall numbers answered
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        self.sock.settimeout(30)
        try:
            conn, _ = self.sock.accept()
        except OSError:
            return
        with conn:
            fds = array.array("i")
            data, anc, _f, _a = conn.recvmsg(65536, socket.CMSG_SPACE(8 * fds.itemsize))
            for level, kind, raw in anc:
                if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                    fds.frombytes(raw[: len(raw) - len(raw) % fds.itemsize])
        self.nfds = len(fds)
        with contextlib.suppress(ValueError):
            self.state = json.loads(data.decode())
        if not fds:
            return
        fd = fds[0]
        try:
            while not self._stop.is_set():
                ready, _, _ = select.select([fd], [], [], 0.1)
                if not ready:
                    continue
                buf = bytearray(NOTIF_SIZE)
                try:
                    fcntl.ioctl(fd, NOTIF_RECV, buf)
                except OSError:
                    continue
                notif_id, _pid, _flags, nr = struct.unpack_from("=QIIi", buf)
                self.handled.append(nr)
                resp = bytearray(struct.pack("=QqiI", notif_id, 0, -self.errno, 0))
                with contextlib.suppress(OSError):
                    fcntl.ioctl(fd, NOTIF_SEND, resp)
        finally:
            for f in fds:
                os.close(f)

    def close(self) -> None:
        self._stop.set()
        self.sock.close()
        self._thread.join(timeout=5)

"""Messages between ``bock create`` and its children over a SOCK_SEQPACKET pair.

One message is one datagram: a short ASCII verb, a space, an optional payload.
File descriptors travel as SCM_RIGHTS with the message (the console master, the
seccomp notify fd).
"""

from __future__ import annotations

import _socket
import os


class SyncError(Exception):
    pass


def socketpair() -> tuple[_socket.socket, _socket.socket]:
    return _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_SEQPACKET | _socket.SOCK_CLOEXEC, 0)


def send(sock: _socket.socket, verb: str, payload: str = "", fds: list[int] | None = None) -> None:
    data = (verb + (" " + payload if payload else "")).encode()
    if fds:
        raw = b"".join(fd.to_bytes(4, "little", signed=True) for fd in fds)
        sock.sendmsg([data], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, raw)])
    else:
        # write(2), not send(2): after the init loads a seccomp filter, write is what every
        # profile allows (runc talks to its parent over a pipe)
        os.write(sock.fileno(), data)


def recv(sock: _socket.socket, want_fds: int = 0) -> tuple[str, str, list[int]]:
    """Receive one message; ``("", "", [])`` on EOF."""
    if want_fds:
        data, anc, _flags, _addr = sock.recvmsg(65536, _socket.CMSG_SPACE(4 * want_fds))
    else:
        data, anc = sock.recv(65536), []
    fds: list[int] = []
    for level, kind, raw in anc:
        if level == _socket.SOL_SOCKET and kind == _socket.SCM_RIGHTS:
            fds.extend(
                int.from_bytes(raw[i : i + 4], "little", signed=True) for i in range(0, len(raw) - 3, 4)
            )
    for fd in fds:
        os.set_inheritable(fd, False)
    text = data.decode("utf-8", "replace")
    verb, _, payload = text.partition(" ")
    return verb, payload, fds


def expect(sock: _socket.socket, verb: str) -> str:
    got, payload, _ = recv(sock)
    if got == verb:
        return payload
    if got == "error":
        raise SyncError(payload)
    if not got:
        raise SyncError("the other side exited")
    raise SyncError(f"unexpected message {got!r} (wanted {verb!r})")

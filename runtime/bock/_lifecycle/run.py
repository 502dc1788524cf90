"""``bock run``: create, start and (unless --detach) wait, exiting with the container's status."""

from __future__ import annotations

import os

from bock._lifecycle.create import CreateOptions, create
from bock._lifecycle.delete import destroy, kill_everything
from bock._lifecycle.start import start
from bock._spec.config import Spec

# every catchable signal is forwarded to the container, like runc's signal handler
_FORWARD = (1, 2, 3, 10, 12, 14, 15, 18, 20, 21, 22, 23, 24, 25, 26, 27, 29, 30, 31)


def run(opts: CreateOptions, doc: dict, spec: Spec, *, detach: bool, keep: bool = False) -> int:
    terminal = spec.process.terminal
    console_end = None
    if terminal and not detach and not opts.console_socket:
        import _socket

        mine, theirs = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_STREAM | _socket.SOCK_CLOEXEC)
        opts.console_fd = theirs.fileno()
        console_end = mine
        keep_theirs = theirs
    container = create(opts, doc, spec)
    if console_end is not None:
        keep_theirs.close()
    if not detach:  # before start: a signal may come as soon as the process runs
        _forward_signals(container.pid)
    try:
        master = _receive_master(console_end) if console_end is not None else None
        start(container)
    except BaseException:
        kill_everything(container)
        destroy(container)
        raise
    if detach:
        return 0
    status = _wait(container.pid, master)
    if not keep:
        kill_everything(container)
        destroy(container)
    return status


def _receive_master(sock) -> int:
    import _socket

    _data, anc, _f, _a = sock.recvmsg(4096, _socket.CMSG_SPACE(4))
    sock.close()
    for level, kind, raw in anc:
        if level == _socket.SOL_SOCKET and kind == _socket.SCM_RIGHTS:
            return int.from_bytes(raw[:4], "little")
    raise OSError("the container did not send a terminal")


def _forward_signals(pid: int) -> None:
    import _signal

    def forward(signum: int, _frame: object) -> None:
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass

    for sig in _FORWARD:
        try:
            _signal.signal(sig, forward)
        except (OSError, ValueError):
            pass


def _wait(pid: int, master: int | None) -> int:
    if master is not None:
        from bock._lifecycle.tty import proxy

        proxy(master, pid)
    while True:
        _got, status = os.waitpid(pid, 0)
        if os.WIFEXITED(status):
            return os.WEXITSTATUS(status)
        if os.WIFSIGNALED(status):
            return 128 + os.WTERMSIG(status)

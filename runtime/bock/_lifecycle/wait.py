"""Waiting for processes we may not be the parent of: pidfds, with a /proc fallback."""

from __future__ import annotations

import _signal
import os
import select

# The interpreter's own wrappers (Python 3.9+ on Linux): importing ctypes for them costs
# about 2 ms of every start, kill and delete.
_pidfd_open = getattr(os, "pidfd_open", None)
_pidfd_send_signal = getattr(_signal, "pidfd_send_signal", None)


def pidfd_open(pid: int) -> int | None:
    try:
        if _pidfd_open is not None:
            return _pidfd_open(pid)
        from bock._libc import syscall

        return syscall("pidfd_open", pid, 0)
    except OSError:
        return None


def pidfd_send_signal(pidfd: int, sig: int) -> None:
    """Signal the process behind ``pidfd``; OSError (ProcessLookupError once it is gone)."""
    if _pidfd_send_signal is None:
        from bock._libc import syscall

        syscall("pidfd_send_signal", pidfd, sig, None, 0)
        return
    try:
        _pidfd_send_signal(pidfd, sig)
    except OSError as err:  # the wording of bock._libc.syscall's errors
        raise OSError(err.errno, f"pidfd_send_signal: {os.strerror(err.errno)}") from None


def wait_exit(pid: int, timeout: float | None, pidfd: int | None = None) -> bool:
    """Wait until ``pid`` has exited (a zombie counts); True if it did within ``timeout``."""
    own = pidfd is None
    if pidfd is None:
        pidfd = pidfd_open(pid)
        if pidfd is None:
            return True  # already gone
    try:
        poller = select.poll()
        poller.register(pidfd, select.POLLIN)
        return bool(poller.poll(None if timeout is None else int(timeout * 1000)))
    finally:
        if own:
            os.close(pidfd)


def reap_if_child(pid: int) -> int | None:
    """waitpid without blocking; the raw status if ``pid`` was our child and has exited."""
    try:
        got, status = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return None
    return status if got == pid else None


def kill_and_wait(pid: int, pidfd: int | None, timeout: float = 10.0) -> None:
    """SIGKILL ``pid`` and wait for it to die (no 100 ms polling, unlike runc)."""
    own = pidfd is None
    if pidfd is None:
        pidfd = pidfd_open(pid)
    try:
        if pidfd is not None:
            try:
                pidfd_send_signal(pidfd, 9)
            except OSError:
                pass
            wait_exit(pid, timeout, pidfd)
        else:
            try:
                os.kill(pid, 9)
            except ProcessLookupError:
                pass
        reap_if_child(pid)
    finally:
        if own and pidfd is not None:
            os.close(pidfd)

"""Waiting for processes we may not be the parent of: pidfds, with a /proc fallback."""

from __future__ import annotations

import os
import select

from bock._libc import syscall


def pidfd_open(pid: int) -> int | None:
    try:
        return syscall("pidfd_open", pid, 0)
    except OSError:
        return None


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
                syscall("pidfd_send_signal", pidfd, 9, None, 0)
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

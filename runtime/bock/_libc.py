"""The one ctypes handle on libc, and raw syscall numbers for what glibc 2.36 lacks a wrapper for.

Everything that makes a syscall goes through here (directly, or through the
``bock._syscalls`` seam), so errors come back as ``OSError`` with the errno and a
description of what was attempted.
"""

from __future__ import annotations

import ctypes
import os

libc = ctypes.CDLL(None, use_errno=True)

_MACHINE = os.uname().machine

# Syscalls with no glibc 2.36 wrapper (x86_64, aarch64).
_NR = {
    "x86_64": {
        "pivot_root": 155,
        "setns": 308,
        "pidfd_open": 434,
        "pidfd_send_signal": 424,
        "open_tree": 428,
        "move_mount": 429,
        "mount_setattr": 442,
        "fsopen": 430,
        "fsconfig": 431,
        "fsmount": 432,
        "close_range": 436,
        "seccomp": 317,
        "bpf": 321,
        "ioprio_set": 251,
        "sched_setattr": 314,
        "capget": 125,
        "capset": 126,
        "clone3": 435,
        "openat2": 437,
        "memfd_create": 319,
        "execveat": 322,
        "keyctl": 250,
    },
    "aarch64": {
        "pivot_root": 41,
        "setns": 268,
        "pidfd_open": 434,
        "pidfd_send_signal": 424,
        "open_tree": 428,
        "move_mount": 429,
        "mount_setattr": 442,
        "fsopen": 430,
        "fsconfig": 431,
        "fsmount": 432,
        "close_range": 436,
        "seccomp": 277,
        "bpf": 280,
        "ioprio_set": 30,
        "sched_setattr": 274,
        "capget": 90,
        "capset": 91,
        "clone3": 435,
        "openat2": 437,
        "memfd_create": 279,
        "execveat": 281,
        "keyctl": 219,
    },
}[_MACHINE]

_syscall = libc.syscall
_syscall.restype = ctypes.c_long


def nr(name: str) -> int:
    return _NR[name]


def syscall(name: str, *args: object) -> int:
    """Make the raw syscall ``name``; raise OSError on failure."""
    ret = _syscall(_NR[name], *args)
    if ret < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{name}: {os.strerror(err)}")
    return ret


def check(ret: int, what: str) -> int:
    """Turn a libc ``-1`` return into an OSError naming ``what``."""
    if ret < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")
    return ret


def fsencode(path: str | bytes | None) -> bytes | None:
    if path is None:
        return None
    return path if isinstance(path, bytes) else os.fsencode(path)

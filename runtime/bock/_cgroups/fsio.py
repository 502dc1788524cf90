"""Reading and writing cgroupfs files, with runc's error wording.

runc reports ``failed to write "<data>": write <path>: <strerror>``; callers (and
users) see the file and the value that the kernel refused.
"""

from __future__ import annotations

import errno
import os

_WR = os.O_WRONLY | os.O_TRUNC | os.O_CLOEXEC  # O_TRUNC: a no-op on cgroupfs
_RD = os.O_RDONLY | os.O_CLOEXEC


class CgroupFileError(OSError):
    """An OSError whose text names the cgroup file (and value) like runc's."""


def quote(text: str) -> str:
    """Go's ``%q`` for the ASCII text cgroup files take."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def write(dirpath: str, name: str, data: str) -> None:
    path = f"{dirpath}/{name}"
    try:
        fd = os.open(path, _WR)
    except OSError as e:
        raise CgroupFileError(e.errno, f"open {path}: {os.strerror(e.errno)}") from None
    try:
        os.write(fd, data.encode())
    except OSError as e:
        raise CgroupFileError(
            e.errno, f"failed to write {quote(data)}: write {path}: {os.strerror(e.errno)}"
        ) from None
    finally:
        os.close(fd)


def write_or_defer(dirpath: str, name: str, data: str, can_defer: bool) -> str:
    """Write now; on EINVAL return ``data`` to write again later if ``can_defer``.

    Some pairs only validate together (cfs period vs quota, rt period vs runtime,
    burst vs quota): runc writes one, then the other, then retries the first.
    """
    try:
        write(dirpath, name, data)
        return ""
    except OSError as e:
        if e.errno != errno.EINVAL or not can_defer:
            raise
        return data


def read(dirpath: str, name: str) -> str:
    path = f"{dirpath}/{name}"
    try:
        fd = os.open(path, _RD)
    except OSError as e:
        raise CgroupFileError(e.errno, f"open {path}: {os.strerror(e.errno)}") from None
    try:
        chunks = []
        while True:
            b = os.read(fd, 65536)
            if not b:
                break
            chunks.append(b)
        return b"".join(chunks).decode()
    except OSError as e:
        raise CgroupFileError(e.errno, f"read {path}: {os.strerror(e.errno)}") from None
    finally:
        os.close(fd)


def read_uint(dirpath: str, name: str) -> int:
    """A single unsigned value; ``max`` reads as 2**64-1 (runc's convention)."""
    text = read(dirpath, name).strip()
    if text == "max":
        return (1 << 64) - 1
    return int(text)


def read_kv(dirpath: str, name: str) -> dict[str, int]:
    """A flat-keyed file (``memory.stat``, ``cpu.stat``, ``memory.events``...)."""
    out = {}
    for line in read(dirpath, name).splitlines():
        key, _, value = line.partition(" ")
        if value:
            try:
                out[key] = int(value)
            except ValueError:
                continue
    return out


def exists(dirpath: str, name: str) -> bool:
    return os.path.exists(f"{dirpath}/{name}")

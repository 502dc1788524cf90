"""The last steps of the init: find the executable, switch credentials, exec.

Error text follows runc (callers match on it): ``exec: "X": executable file not
found in $PATH`` and ``exec: "X": stat X: no such file or directory``.
"""

from __future__ import annotations

import os
import stat

from bock.errors import ExecError


def env_dict(env: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in env:
        key, sep, value = item.partition("=")
        if sep:
            out[key] = value
    return out


def _executable(path: str) -> str | None:
    """None when ``path`` is an executable regular file, else the Go-style error text."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return "no such file or directory"
    except NotADirectoryError:
        return "not a directory"
    except PermissionError:
        return "permission denied"
    if stat.S_ISDIR(st.st_mode) or not st.st_mode & 0o111:
        return "permission denied"
    return None


def look_path(name: str, env: dict[str, str]) -> str:
    """Go's exec.LookPath, with the container's PATH."""
    if "/" in name:
        err = _executable(name)
        if err:
            raise ExecError(f'exec: "{name}": stat {name}: {err}')
        return name
    for directory in env.get("PATH", "").split(":"):
        candidate = os.path.join(directory or ".", name)
        if _executable(candidate) is None:
            return candidate
    raise ExecError(f'exec: "{name}": executable file not found in $PATH')


def close_fds_from(first: int) -> None:
    """Mark every fd >= first close-on-exec (close_range(2) with CLOSE_RANGE_CLOEXEC)."""
    from bock._libc import syscall

    try:
        syscall("close_range", first, 0xFFFFFFFF, 4)  # CLOSE_RANGE_CLOEXEC
    except OSError:
        for name in os.listdir("/proc/self/fd"):
            fd = int(name)
            if fd >= first:
                try:
                    os.set_inheritable(fd, False)
                except OSError:
                    pass

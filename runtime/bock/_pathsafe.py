"""Resolve a path inside a root directory without ever leaving it (like Go's securejoin).

Every component is looked at with lstat; a symlink is followed by hand and re-rooted
at ``root`` (an absolute target means the root, not the host's /), and ``..`` stops at
``root``. The result is a host path under ``root``. Because a path can change between
resolution and use (CVE-2021-30465), :func:`open_in_root` also opens the result with
O_PATH|O_NOFOLLOW and checks where the descriptor really points.
"""

from __future__ import annotations

import os
import stat

from bock.errors import BockError

_MAX_LINKS = 255


class PathEscape(BockError):
    pass


def _clean(path: str) -> list[str]:
    return [p for p in path.split("/") if p and p != "."]


def resolve_in_root(root: str, unsafe: str) -> str:
    """Return ``root``-joined ``unsafe`` with symlinks and ``..`` resolved inside ``root``."""
    root = os.path.abspath(root)
    parts = _clean(unsafe)
    done: list[str] = []
    links = 0
    while parts:
        part = parts.pop(0)
        if part == "..":
            if done:
                done.pop()
            continue
        current = os.path.join(root, *done, part)
        try:
            st = os.lstat(current)
        except FileNotFoundError:
            done.append(part)
            continue
        if stat.S_ISLNK(st.st_mode):
            links += 1
            if links > _MAX_LINKS:
                raise PathEscape(f"too many levels of symbolic links resolving {unsafe} in {root}")
            target = os.readlink(current)
            if target.startswith("/"):
                done = []
            parts = _clean(target) + parts
            continue
        done.append(part)
    return os.path.join(root, *done) if done else root


def is_within(root: str, path: str) -> bool:
    root = root.rstrip("/") or "/"
    return path == root or path.startswith(root + "/") or root == "/"


def fd_path(fd: int) -> str:
    return os.readlink(f"/proc/self/fd/{fd}")


def open_in_root(root: str, resolved: str) -> int:
    """Open ``resolved`` (from :func:`resolve_in_root`) O_PATH and prove it is inside ``root``."""
    fd = os.open(resolved, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC)
    real = fd_path(fd)
    if not is_within(os.path.realpath(root), real):
        os.close(fd)
        raise PathEscape(f"{resolved} escapes the container root {root} (it is {real})")
    return fd


def mkdir_all_in_root(root: str, unsafe: str, mode: int = 0o755) -> str:
    """Create every missing directory of ``unsafe`` inside ``root``; return the resolved path."""
    path = resolve_in_root(root, unsafe)
    rel = _clean(path[len(root.rstrip("/")) :])
    current = root.rstrip("/") or "/"
    for part in rel:
        current = os.path.join(current, part)
        try:
            os.mkdir(current, mode)
        except FileExistsError:
            st = os.lstat(current)
            if stat.S_ISLNK(st.st_mode):  # raced with a new symlink: resolve again, never follow
                return mkdir_all_in_root(root, unsafe, mode)
            if not stat.S_ISDIR(st.st_mode):
                raise NotADirectoryError(20, f"{current}: not a directory")
    return path

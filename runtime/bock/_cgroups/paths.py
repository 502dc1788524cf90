"""runc's ``linux.cgroupsPath`` rules (libcontainer/specconv and cgroups/fs{,2}/paths).

- cgroupfs driver: the path is cleaned (``..`` cannot climb out); an absolute path is
  taken from each hierarchy's mount point; a relative one from the caller's own
  cgroup in that hierarchy (v2: from its parent, since the caller's own cgroup has
  processes in it); an empty one defaults to the container ID, relative.
- systemd driver (``--systemd-cgroup``): see ``systemd_props`` (``slice:prefix:name``).
"""

from __future__ import annotations

import os

from bock._cgroups.layout import V2, Layout


def clean_path(path: str) -> str:
    """runc's ``utils.CleanPath``: lexical clean; relative paths cannot escape with ``..``."""
    if not path:
        return ""
    if path.startswith("/"):
        cleaned = os.path.normpath(path)
        return "/" + cleaned.lstrip("/")  # Go's Clean folds a leading "//"
    return os.path.relpath(os.path.normpath("/" + path), "/")


def _join(*parts: str) -> str:
    return os.path.normpath("/".join(p for p in parts if p and p != "/"))


def inner_path(cid: str, cgroups_path: str | None) -> str:
    """The cgroup path inside each hierarchy (absolute) or relative to the caller's cgroup."""
    return clean_path(cgroups_path or "") or cid


def v1_path(layout: Layout, subsystem: str, inner: str) -> str | None:
    """The directory of ``inner`` in one v1 hierarchy, or None when it is not mounted."""
    mount = layout.mounts.get(subsystem)
    if mount is None:
        return None
    mountpoint, root = mount
    if inner.startswith("/"):
        return _join(mountpoint, inner)
    own = layout.own.get(subsystem, "/")
    return _join(mountpoint, os.path.relpath(own, root) if own.startswith(root) else own, inner)


def unified_path(layout: Layout, inner: str) -> str | None:
    """The directory of ``inner`` in the cgroup2 hierarchy (v2 or the hybrid one)."""
    if layout.unified is None:
        return None
    if inner.startswith("/"):
        return _join(layout.unified, inner)
    own = layout.own.get("", "/")
    if layout.mode == V2:
        # The caller's own cgroup holds processes: a child of it could not get
        # controllers ("no internal processes"), so runc starts from its parent.
        own = os.path.dirname(own.rstrip("/")) or "/"
    root = layout.unified_root
    rel = os.path.relpath(own, root) if own.startswith(root) else own
    return _join(layout.unified, rel, inner)

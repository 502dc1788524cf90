"""Reading an image's file system from its layer snapshots without mounting (lookups for COPY
destinations and --chown names), and overlay mounts: a read-only merged view, or a RUN rootfs with
a fresh upper dir."""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterator
from pathlib import Path

from ._store_adapter import mount_overlay, umount
from .errors import BuildError

MNT_DETACH = 2
MS_BIND = 4096
MS_REC = 16384


def _is_whiteout(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def lookup(snaps: list[Path], rel: str) -> tuple[str, os.stat_result] | None:
    """The topmost (path, lstat) of ``rel`` in the stack of snapshot dirs, honouring whiteouts and
    opaque directories. Symlinks are not followed (see resolve)."""
    parts = [p for p in rel.split("/") if p]
    for layer in reversed(snaps):
        blocked = False
        cur = str(layer)
        for i, part in enumerate(parts):
            cur = os.path.join(cur, part)
            try:
                st = os.lstat(cur)
            except (FileNotFoundError, NotADirectoryError):
                break
            if _is_whiteout(st):
                return None
            if i == len(parts) - 1:
                return cur, st
            if not stat.S_ISDIR(st.st_mode):
                return None  # a file here hides everything below in lower layers
            try:
                if os.getxattr(cur, "trusted.overlay.opaque", follow_symlinks=False) == b"y":
                    blocked = True
            except OSError:
                pass
        if blocked:
            return None
        if not parts:
            return str(layer), os.lstat(layer)
    return None


def resolve(snaps: list[Path], rel: str, *, follow_last: bool = True) -> str:
    """``rel`` with every symlink in the stack resolved, clamped to the image root (never escapes)."""
    todo = [p for p in rel.split("/") if p not in ("", ".")]
    done: list[str] = []
    hops = 0
    while todo:
        part = todo.pop(0)
        if part == "..":
            if done:
                done.pop()
            continue
        found = lookup(snaps, "/".join([*done, part]))
        if found and stat.S_ISLNK(found[1].st_mode) and (todo or follow_last):
            hops += 1
            if hops > 40:
                raise BuildError(f"too many levels of symbolic links in {rel!r}")
            target = os.readlink(found[0])
            if target.startswith("/"):
                done = []
            todo = [t for t in target.split("/") if t not in ("", ".")] + todo
            continue
        done.append(part)
    return "/" + "/".join(done)


def read_file(snaps: list[Path], rel: str, limit: int = 1 << 22) -> bytes | None:
    found = lookup(snaps, resolve(snaps, rel))
    if not found or not stat.S_ISREG(found[1].st_mode):
        return None
    with open(found[0], "rb") as f:
        return f.read(limit)


def _mount(snaps: list[Path], target: Path, upper: Path | None = None, work: Path | None = None) -> None:
    """Overlay ``snaps`` (lowest first) at ``target``; read-only without an upper directory."""
    lowers = [str(s) for s in reversed(snaps)]
    try:
        if upper is None:
            mount_overlay(lowers, str(target), readonly=True)
        else:
            mount_overlay(lowers, str(target), str(upper), str(work))
    except OSError as exc:
        raise BuildError(f"overlay mount of {len(snaps)} layers at {target} failed: {exc}") from None


@contextlib.contextmanager
def rw_rootfs(snaps: list[Path], base: Path) -> Iterator[tuple[Path, Path]]:
    """Mount snaps + a fresh upper dir at base/rootfs. Yields (rootfs, upper); unmounts on exit."""
    rootfs, upper, work = base / "rootfs", base / "upper", base / "work"
    for d in (rootfs, upper, work):
        d.mkdir()
    lowers = snaps or [_empty(base)]
    _mount(lowers, rootfs, upper, work)
    try:
        yield rootfs, upper
    finally:
        umount(str(rootfs), MNT_DETACH)


@contextlib.contextmanager
def ro_view(snaps: list[Path], base: Path) -> Iterator[Path]:
    """A read-only merged view of snaps (for COPY --from and RUN --mount=from=)."""
    if not snaps:
        yield _empty(base)
        return
    if len(snaps) == 1:
        yield snaps[0]
        return
    target = base / f"view-{os.urandom(4).hex()}"
    target.mkdir()
    _mount(snaps, target)
    try:
        yield target
    finally:
        umount(str(target), MNT_DETACH)
        target.rmdir()


def _empty(base: Path) -> Path:
    p = base / "empty"
    p.mkdir(exist_ok=True)
    return p

"""Safe layer extraction, without tarfile's extraction filters (absent from Python 3.11.2).

Every path is resolved by us, one component at a time with ``lstat`` (never following a
symlink we did not vet), and every final write uses O_NOFOLLOW / ``follow_symlinks=False``.
Refused (UnsafeLayer): absolute entry names, ``..`` components, a write through a symlink
whose target is absolute or climbs above the root, hardlinks whose target is outside the
root or missing. Relative symlinks that stay inside the root are followed the way the
kernel would, inside the root.

Two modes:
 * ``overlay``: the target is one layer's own snapshot directory (an overlay lower dir).
   Whiteouts become 0/0 character devices, opaque directories get ``trusted.overlay.opaque=y``.
   ``lowers`` (top first) are consulted to resolve parents and hardlinks into lower layers.
 * ``apply``: the target already holds the lower layers; whiteouts delete, opaque dirs are emptied
   of what this layer did not itself write.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
from collections.abc import Sequence
from typing import BinaryIO

from ._tarstream import Member, TarStream
from .errors import UnsafeLayer

WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"
OVERLAY_OPAQUE_XATTR = "trusted.overlay.opaque"
_MAX_HOPS = 40


def _split(name: str, what: str = "entry") -> list[str]:
    if name.startswith("/"):
        raise UnsafeLayer(f"{what} {name!r} has an absolute path")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise UnsafeLayer(f"{what} {name!r} contains '..'")
    return parts


def is_whiteout_device(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


class Extractor:
    def __init__(
        self, root: str, *, mode: str = "apply", lowers: Sequence[str] = (), same_owner: bool = True
    ) -> None:
        if mode not in ("apply", "overlay"):
            raise ValueError(mode)
        self.root = os.path.abspath(root)
        self.mode = mode
        self.lowers = [os.path.abspath(p) for p in lowers]
        self.same_owner = same_owner and os.geteuid() == 0
        self.created: set[str] = set()  # relative paths this layer wrote (apply mode, for opaque dirs)
        self.dir_times: list[tuple[str, int]] = []
        self._dirs: dict[tuple[str, ...], str] = {}  # resolved parent directories; cleared on removals
        self._setgid: dict[str, bool] = {}  # parent directory -> has S_ISGID (new entries inherit its gid)
        self.umask = _current_umask()

    # -- path resolution -------------------------------------------------------------------
    def _lower_lstat(self, rel: str) -> tuple[str, os.stat_result] | None:
        for lower in self.lowers:
            p = f"{lower}/{rel}"
            try:
                st = os.lstat(p)
            except (FileNotFoundError, NotADirectoryError):
                continue
            if is_whiteout_device(st):
                return None
            return p, st
        return None

    def resolve_dir(self, parts: list[str], create: bool = True, entry: str = "") -> str:
        """Resolve directory components to a real directory under root; returns its relative path."""
        key = tuple(parts)
        cached = self._dirs.get(key)
        if cached is not None:
            return cached
        resolved = self._resolve_dir(parts, create, entry)
        self._dirs[key] = resolved
        return resolved

    def _resolve_dir(self, parts: list[str], create: bool, entry: str) -> str:
        todo = list(parts)
        done: list[str] = []
        hops = 0
        while todo:
            c = todo.pop(0)
            rel = "/".join([*done, c])
            p = f"{self.root}/{rel}"
            try:
                st = os.lstat(p)
            except FileNotFoundError:
                st = None
            source = "layer"
            if st is None and self.lowers:
                found = self._lower_lstat(rel)
                if found is not None:
                    lower_path, st = found
                    source = lower_path
            if st is None:
                if not create:
                    raise UnsafeLayer(f"{entry!r}: {rel} does not exist")
                os.mkdir(p, 0o755)
                done.append(c)
                continue
            if stat.S_ISDIR(st.st_mode):
                if source != "layer":  # copy the directory up from the lower layer
                    os.mkdir(p, stat.S_IMODE(st.st_mode))
                    self._chown(p, st.st_uid, st.st_gid)
                    os.chmod(p, stat.S_IMODE(st.st_mode))
                done.append(c)
                continue
            if stat.S_ISLNK(st.st_mode):
                target = os.readlink(p if source == "layer" else source)
                hops += 1
                if hops > _MAX_HOPS:
                    raise UnsafeLayer(f"{entry!r}: too many levels of symbolic links at {rel}")
                if target.startswith("/"):
                    raise UnsafeLayer(
                        f"{entry!r} would be written through symlink {rel} -> {target} (absolute target)"
                    )
                base = list(done)
                for t in target.split("/"):
                    if t in ("", "."):
                        continue
                    if t == "..":
                        if not base:
                            raise UnsafeLayer(
                                f"{entry!r} would be written through symlink {rel} -> {target}"
                                " (climbs out of the root)"
                            )
                        base.pop()
                    else:
                        base.append(t)
                todo = base + todo
                done = []
                continue
            raise UnsafeLayer(f"{entry!r}: {rel} is not a directory")
        return "/".join(done)

    # -- entries ---------------------------------------------------------------------------
    def _chown(self, path: str, uid: int, gid: int) -> None:
        if self.same_owner:
            os.chown(path, uid, gid, follow_symlinks=False)

    def _clear(self, path: str, keep_dir: bool) -> None:
        """Remove whatever is at path (no following), unless it is a directory and keep_dir."""
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return
        if stat.S_ISDIR(st.st_mode) and keep_dir:
            return
        self._dirs.clear()  # a removed directory or symlink may sit under cached resolutions
        self._setgid.clear()
        if stat.S_ISDIR(st.st_mode):
            shutil.rmtree(path)
        else:
            os.unlink(path)

    def _create(self, path: str, make) -> object:
        """Create with ``make(path)``; on EEXIST remove what is there (never following it) and retry.
        A fresh snapshot rarely has conflicts, so this saves an lstat per entry."""
        try:
            return make(path)
        except FileExistsError:
            self._clear(path, keep_dir=False)
            return make(path)

    def extract(self, tar: TarStream) -> None:
        for member in tar:
            self.entry(tar, member)
        self.finish()

    def finish(self) -> None:
        for path, mtime in reversed(self.dir_times):
            with contextlib.suppress(FileNotFoundError):
                os.utime(path, ns=(mtime, mtime), follow_symlinks=False)

    def entry(self, tar: TarStream, m: Member) -> None:
        parts = _split(m.name)
        if not parts:
            return  # the root itself
        name = parts[-1]
        parent_rel = self.resolve_dir(parts[:-1], entry=m.name)
        parent = f"{self.root}/{parent_rel}" if parent_rel else self.root
        rel = f"{parent_rel}/{name}" if parent_rel else name
        if name.startswith(WHITEOUT):
            self._whiteout(parent, parent_rel, name, m.name)
            return
        path = f"{parent}/{name}"
        self.created.add(rel)
        perm = m.mode & 0o7777
        # Create with the final permissions when the umask leaves them intact (saves a chmod).
        initial = perm if not perm & 0o7000 and perm & ~self.umask == perm else 0o600
        if m.isreg():
            fd = self._create(path, lambda p: _open_new(p, initial))
            try:
                tar.copy_to(fd)
                self._metadata(fd, m, parent, initial)
            finally:
                os.close(fd)
            return
        if m.isdir():
            try:
                os.mkdir(path, initial)
            except FileExistsError:
                self._clear(path, keep_dir=True)  # removes anything but a directory
                if os.path.lexists(path):
                    initial = -1  # an existing directory: its mode and owner are not ours yet
                else:
                    os.mkdir(path, initial)
        elif m.issym():
            self._create(path, lambda p: os.symlink(m.linkname, p))
        elif m.islnk():
            self._hardlink(m, path)
            return  # a hard link shares its target's metadata
        elif m.ischr() or m.isblk():
            kind = stat.S_IFCHR if m.ischr() else stat.S_IFBLK
            self._create(path, lambda p: os.mknod(p, kind | 0o600, os.makedev(m.devmajor, m.devminor)))
            initial = 0o600
        elif m.isfifo():
            self._create(path, lambda p: os.mkfifo(p, 0o600))
            initial = 0o600
        else:
            raise UnsafeLayer(f"{m.name!r}: unsupported tar entry type {m.type!r}")
        self._metadata(path, m, parent, initial)

    def _parent_setgid(self, parent: str) -> bool:
        flag = self._setgid.get(parent)
        if flag is None:
            flag = self._setgid[parent] = bool(os.lstat(parent).st_mode & stat.S_ISGID)
        return flag

    def _metadata(self, path: str | int, m: Member, parent: str, initial: int) -> None:
        """Owner, xattrs, mode, mtime; ``path`` may be an open fd (regular files: no path lookups).
        ``initial`` is the mode the entry was created with (-1: not created by us). A fresh entry
        made by root is already 0:0, so chown (and the chmod it would force) is skipped when the
        tar says 0:0 and the parent is not setgid."""
        is_fd = isinstance(path, int)  # an fd: the *_symlinks flags do not apply
        chowned = False
        if self.same_owner and (m.uid or m.gid or initial == -1 or self._parent_setgid(parent)):
            os.chown(path, m.uid, m.gid, follow_symlinks=is_fd)
            chowned = True
        for key, value in (m.pax_headers or {}).items():
            if key.startswith("SCHILY.xattr."):
                attr = key[len("SCHILY.xattr.") :]
                raw = value.encode("utf-8", "surrogateescape")
                try:
                    os.setxattr(path, attr, raw, follow_symlinks=is_fd)
                except OSError as exc:
                    if not attr.startswith(("security.", "trusted.")) and exc.errno != errno.EOPNOTSUPP:
                        raise
        if not m.issym() and (chowned or initial != m.mode & 0o7777):
            os.chmod(path, m.mode & 0o7777)
        mtime = int(m.mtime * 1_000_000_000)
        if m.isdir():
            self.dir_times.append((path, mtime))  # type: ignore[arg-type]
        else:
            os.utime(path, ns=(mtime, mtime), follow_symlinks=is_fd)

    def _hardlink(self, m: Member, path: str) -> None:
        tparts = _split(m.linkname, "hardlink target")
        if not tparts:
            raise UnsafeLayer(f"{m.name!r}: hardlink to the root directory")
        trel_parent = self.resolve_dir(tparts[:-1], create=False, entry=m.name)
        trel = f"{trel_parent}/{tparts[-1]}" if trel_parent else tparts[-1]
        target = f"{self.root}/{trel}"
        try:
            st = os.lstat(target)
        except FileNotFoundError:
            found = self._lower_lstat(trel) if self.lowers else None
            if found is None:
                raise UnsafeLayer(f"{m.name!r}: hardlink target {m.linkname!r} does not exist in the layer")
            lower_path, st = found
            if stat.S_ISDIR(st.st_mode):
                raise UnsafeLayer(f"{m.name!r}: hardlink to a directory")
            # copy the lower file up so the link stays inside this snapshot
            if stat.S_ISLNK(st.st_mode):
                os.symlink(os.readlink(lower_path), target)
            else:
                shutil.copy2(lower_path, target, follow_symlinks=False)
            self._chown(target, st.st_uid, st.st_gid)
            if not stat.S_ISLNK(st.st_mode):
                os.chmod(target, stat.S_IMODE(st.st_mode))
            st = os.lstat(target)
        if stat.S_ISDIR(st.st_mode):
            raise UnsafeLayer(f"{m.name!r}: hardlink to a directory")
        if os.path.samefile(os.path.dirname(target), os.path.dirname(path)) and os.path.basename(
            target
        ) == os.path.basename(path):
            return
        self._create(path, lambda p: os.link(target, p, follow_symlinks=False))

    def _whiteout(self, parent: str, parent_rel: str, name: str, entry: str) -> None:
        if name == OPAQUE:
            if self.mode == "overlay":
                os.setxattr(parent, OVERLAY_OPAQUE_XATTR, b"y")
            else:
                prefix = f"{parent_rel}/" if parent_rel else ""
                for child in os.listdir(parent):
                    if f"{prefix}{child}" not in self.created:
                        self._clear(f"{parent}/{child}", keep_dir=False)
            return
        target = name[len(WHITEOUT) :]
        if not target or target in (".", "..") or "/" in target:
            raise UnsafeLayer(f"invalid whiteout entry {entry!r}")
        path = f"{parent}/{target}"
        self._clear(path, keep_dir=False)
        if self.mode == "overlay":
            os.mknod(path, stat.S_IFCHR | 0o600, 0)


def _open_new(path: str, mode: int = 0o600) -> int:
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode)


def _current_umask() -> int:
    """The process umask, read without changing it (os.umask would, for every thread)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def extract_stream(stream: BinaryIO, root: str, *, mode: str = "apply", lowers: Sequence[str] = ()) -> None:
    """Extract one uncompressed layer tar stream into root (see module doc)."""
    Extractor(root, mode=mode, lowers=lowers).extract(TarStream(stream))

"""COPY and ADD into a fresh layer directory, without a container: modes, owners, symlinks kept;
sources never leave their root and destinations never leave the image (symlinks in the destination
path are resolved inside the image's layers)."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

from ._context import Source
from ._rootfs import lookup, read_file, resolve
from ._store_adapter import extract_tar
from .errors import BuildError, ContextError

TAR_MAGICS = (b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00", b"\x28\xb5\x2f\xfd")


def parse_chown(spec: str | None, snaps: list[Path]) -> tuple[int, int] | None:
    if not spec:
        return None
    user, _, group = spec.partition(":")

    def find(db: str, name: str, field: int) -> int:
        if name.isdigit():
            return int(name)
        for line in (read_file(snaps, db) or b"").decode(errors="replace").splitlines():
            parts = line.split(":")
            if len(parts) > field and parts[0] == name:
                return int(parts[field])
        raise BuildError(
            f"--chown: unable to find {'user' if db == '/etc/passwd' else 'group'} {name} in the image"
        )

    uid = find("/etc/passwd", user, 2)
    if group:
        gid = find("/etc/group", group, 2)
    elif user.isdigit():
        gid = uid
    else:
        gid = find("/etc/passwd", user, 3)
    return uid, gid


def parse_chmod(spec: str | None) -> int | None:
    if not spec:
        return None
    try:
        mode = int(spec, 8)
    except ValueError:
        raise BuildError(f"--chmod={spec}: expected an octal mode such as 0755") from None
    if mode > 0o7777:
        raise BuildError(f"--chmod={spec}: mode out of range")
    return mode


class LayerWriter:
    """Materialises files under ``layer`` (a fresh dir) as they must appear at image paths."""

    def __init__(
        self, layer: Path, snaps: list[Path], owner: tuple[int, int] | None, chmod: int | None
    ) -> None:
        self.layer, self.snaps, self.owner, self.chmod = layer, snaps, owner, chmod

    def _parent_dirs(self, image_dir: str) -> str:
        """Create image_dir (and parents) in the layer, copying metadata of dirs the image has."""
        parts = [p for p in image_dir.split("/") if p]
        cur = str(self.layer)
        rel = ""
        for p in parts:
            rel = f"{rel}/{p}"
            cur = os.path.join(cur, p)
            if os.path.isdir(cur) and not os.path.islink(cur):
                continue
            found = lookup(self.snaps, rel)
            os.mkdir(cur)
            if found and stat.S_ISDIR(found[1].st_mode):
                st = found[1]
                os.chown(cur, st.st_uid, st.st_gid)
                os.chmod(cur, stat.S_IMODE(st.st_mode))
                os.utime(cur, ns=(st.st_atime_ns, st.st_mtime_ns))
            else:
                os.chmod(cur, 0o755)
                if self.owner:
                    os.chown(cur, *self.owner)
        return cur

    def exists_dir(self, image_path: str) -> bool:
        found = lookup(self.snaps, resolve(self.snaps, image_path))
        return bool(found and stat.S_ISDIR(found[1].st_mode))

    def put(self, src: str, st: os.stat_result, image_path: str, keep_owner: bool) -> None:
        parent, _, name = image_path.rstrip("/").rpartition("/")
        parent = resolve(self.snaps, parent or "/")
        target = os.path.join(self._parent_dirs(parent), name)
        mode = st.st_mode
        if os.path.lexists(target) and not (stat.S_ISDIR(mode) and os.path.isdir(target)):
            if os.path.isdir(target) and not os.path.islink(target):
                shutil.rmtree(target)
            else:
                os.unlink(target)
        if stat.S_ISDIR(mode):
            if not os.path.isdir(target):
                os.mkdir(target)
        elif stat.S_ISLNK(mode):
            os.symlink(os.readlink(src), target)
        elif stat.S_ISREG(mode):
            shutil.copyfile(src, target, follow_symlinks=False)
        else:
            return  # devices, fifos and sockets are not copied from a context
        uid, gid = self.owner or ((st.st_uid, st.st_gid) if keep_owner else (0, 0))
        os.chown(target, uid, gid, follow_symlinks=False)
        if not stat.S_ISLNK(mode):
            os.chmod(target, self.chmod if self.chmod is not None else stat.S_IMODE(mode))
        os.utime(target, ns=(st.st_mtime_ns, st.st_mtime_ns), follow_symlinks=False)

    def put_bytes(self, data: bytes, image_path: str, mode: int) -> None:
        parent, _, name = image_path.rpartition("/")
        target = os.path.join(self._parent_dirs(resolve(self.snaps, parent or "/")), name)
        with open(target, "wb") as f:
            f.write(data)
        os.chown(target, *(self.owner or (0, 0)))
        os.chmod(target, self.chmod if self.chmod is not None else mode)

    def extract(self, src: str, image_dir: str) -> None:
        target = self._parent_dirs(resolve(self.snaps, image_dir))
        with open(src, "rb") as f:
            extract_tar(f, target)


def is_archive(path: str) -> bool:
    with open(path, "rb") as f:
        head = f.read(512)
    if any(head.startswith(m) for m in TAR_MAGICS):
        return True
    return len(head) >= 262 and head[257:262] == b"ustar"


def copy_sources(
    writer: LayerWriter,
    sources: list[Source],
    dest: str,
    *,
    keep_owner: bool,
    add: bool,
) -> None:
    """Docker's rules: a directory source copies its contents; several sources or a dest ending in
    '/' (or an existing directory) means dest is a directory; ADD extracts local tarballs."""
    dest_is_dir = dest.endswith("/") or len(sources) > 1 or writer.exists_dir(dest)
    if len(sources) > 1 and not dest.endswith("/") and not writer.exists_dir(dest):
        raise BuildError(
            f"when copying several sources, the destination {dest!r} must be a directory (end it with /)"
        )
    base = dest.rstrip("/") or "/"
    for s in sources:
        if s.is_dir:
            writer._parent_dirs(resolve(writer.snaps, base))
            for e in s.entries:
                writer.put(e.path, e.st, f"{base.rstrip('/')}/{e.rel}", keep_owner)
            continue
        e = s.entries[0]
        st = os.stat(e.path)  # a top-level symlink source is followed (it was checked to stay inside)
        if add and stat.S_ISREG(st.st_mode) and is_archive(e.path):
            writer.extract(e.path, base)
            continue
        target = f"{base.rstrip('/')}/{s.name}" if dest_is_dir else base
        writer.put(e.path, st, target, keep_owner)


def fetch_url(url: str, tmpdir: Path) -> tuple[Path, str]:
    """ADD https://...: downloaded as is (no extraction), mode 0600, named after the URL path."""
    import urllib.parse
    import urllib.request

    name = os.path.basename(urllib.parse.urlparse(url).path) or "download"
    out = tmpdir / f"url-{os.urandom(4).hex()}"
    try:
        with urllib.request.urlopen(url, timeout=60) as resp, open(out, "wb") as f:
            shutil.copyfileobj(resp, f)
    except OSError as exc:
        raise ContextError(f"ADD {url}: download failed: {exc}") from None
    os.chmod(out, 0o600)
    return out, name

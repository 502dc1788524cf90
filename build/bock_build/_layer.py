"""Layers from directories: an overlay upper dir (or a COPY layer dir) becomes a deterministic tar
(sorted entries, numeric owners, no uname/gname, mtimes clamped to SOURCE_DATE_EPOCH, whiteout
devices -> ``.wh.NAME``, opaque dirs -> ``.wh..wh..opq``), compressed with fixed settings, stored as
a blob; the directory itself becomes the layer's snapshot in the store (no re-extraction)."""

from __future__ import annotations

import contextlib
import hashlib
import os
import queue
import stat
import threading
from pathlib import Path

OPAQUE = "trusted.overlay.opaque"
GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
PLAIN = "application/vnd.oci.image.layer.v1.tar"


def _compressor(kind: str):
    if kind == "gzip":
        try:
            from isal import isal_zlib

            return isal_zlib.compressobj(1, isal_zlib.DEFLATED, 31)
        except ImportError:  # pragma: no cover
            import zlib

            return zlib.compressobj(1, zlib.DEFLATED, 31)
    if kind == "zstd":
        import zstandard

        return zstandard.ZstdCompressor(level=3).compressobj()
    return None


class _Sink:
    """File-like: hashes the tar stream (diff_id); a helper thread compresses, hashes and writes."""

    def __init__(self, out, compression: str) -> None:
        self.out = out
        self.diff = hashlib.sha256()
        self.blob = hashlib.sha256()
        self.size = 0
        self.written = 0  # uncompressed bytes (tell() for tarfile)
        self.comp = _compressor(compression)
        self.q: queue.Queue[bytes | None] = queue.Queue(maxsize=16)
        self.buf: list[bytes] = []
        self.buffered = 0
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._work, daemon=True)
        self.thread.start()

    def _emit(self, data: bytes) -> None:
        if data:
            self.blob.update(data)
            self.out.write(data)
            self.size += len(data)

    def _work(self) -> None:
        try:
            while (chunk := self.q.get()) is not None:
                self.diff.update(chunk)  # large buffers: hashlib and the compressor release the GIL
                self._emit(self.comp.compress(chunk) if self.comp else chunk)
            if self.comp:
                self._emit(self.comp.flush())
        except BaseException as exc:
            self.error = exc
            while self.q.get() is not None:
                pass

    def tell(self) -> int:
        return self.written

    def write(self, data) -> int:
        data = bytes(data)
        self.written += len(data)
        self.buf.append(data)
        self.buffered += len(data)
        if self.buffered >= 1 << 20:
            self.q.put(b"".join(self.buf))
            self.buf, self.buffered = [], 0
        return len(data)

    def close(self) -> None:
        if self.buf:
            self.q.put(b"".join(self.buf))
        self.q.put(None)
        self.thread.join()
        if self.error:
            raise self.error


def _entries_sub(rel: str, d: str):
    for name in sorted(os.listdir(d)):
        full = os.path.join(d, name)
        r = f"{rel}/{name}"
        st = os.lstat(full)
        yield r, full, st
        if stat.S_ISDIR(st.st_mode):
            yield from _entries_sub(r, full)


def iter_tree(root: str):
    for name in sorted(os.listdir(root)):
        full = os.path.join(root, name)
        st = os.lstat(full)
        yield name, full, st
        if stat.S_ISDIR(st.st_mode):
            yield from _entries_sub(name, full)


def _is_opaque(path: str) -> bool:
    try:
        return os.getxattr(path, OPAQUE, follow_symlinks=False) == b"y"
    except OSError:
        return False


def write_tar(root: str, fileobj, epoch: int | None) -> None:
    import tarfile

    def clamp(t: float) -> int:
        t = int(t)
        return min(t, epoch) if epoch is not None else t

    links: dict[tuple[int, int], str] = {}
    with tarfile.TarFile(fileobj=fileobj, mode="w", format=tarfile.PAX_FORMAT, copybufsize=1 << 20) as tar:
        for rel, full, st in iter_tree(root):
            mode = st.st_mode
            if stat.S_ISCHR(mode) and st.st_rdev == 0:  # overlay whiteout
                d, _, name = rel.rpartition("/")
                info = tarfile.TarInfo(f"{d}/.wh.{name}" if d else f".wh.{name}")
                info.mtime = clamp(st.st_mtime)
                tar.addfile(info)
                continue
            info = tarfile.TarInfo(rel + "/" if stat.S_ISDIR(mode) else rel)
            info.mode = stat.S_IMODE(mode)
            info.uid, info.gid = st.st_uid, st.st_gid
            info.uname = info.gname = ""
            info.mtime = clamp(st.st_mtime)
            if stat.S_ISDIR(mode):
                info.type = tarfile.DIRTYPE
                info.name = rel
                tar.addfile(info)
                if _is_opaque(full):
                    opq = tarfile.TarInfo(f"{rel}/.wh..wh..opq")
                    opq.mtime = info.mtime
                    tar.addfile(opq)
            elif stat.S_ISLNK(mode):
                info.type = tarfile.SYMTYPE
                info.linkname = os.readlink(full)
                tar.addfile(info)
            elif stat.S_ISREG(mode):
                key = (st.st_dev, st.st_ino)
                if st.st_nlink > 1 and key in links:
                    info.type = tarfile.LNKTYPE
                    info.linkname = links[key]
                    tar.addfile(info)
                    continue
                links[key] = rel
                info.size = st.st_size
                with open(full, "rb") as f:
                    tar.addfile(info, f)
            elif stat.S_ISFIFO(mode):
                info.type = tarfile.FIFOTYPE
                tar.addfile(info)
            elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
                info.type = tarfile.CHRTYPE if stat.S_ISCHR(mode) else tarfile.BLKTYPE
                info.devmajor, info.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
                tar.addfile(info)
            # sockets are skipped, as docker does


def commit_layer(store, directory: Path, *, epoch: int | None, compression: str = "gzip") -> tuple[dict, str]:
    """Tar+compress ``directory`` into a blob. Returns (descriptor dict, diff_id). Nothing is left
    behind on failure. The caller installs the directory as the layer's snapshot."""
    media = {"gzip": GZIP, "zstd": ZSTD, "none": PLAIN}[compression]
    tmp = store.temp_path("build-layer")
    try:
        with open(tmp, "xb") as out:
            sink = _Sink(out, compression)
            try:
                write_tar(str(directory), sink, epoch)
            finally:
                sink.close()
            out.flush()
            os.fsync(out.fileno())
        digest = f"sha256:{sink.blob.hexdigest()}"
        store.commit_file(tmp, digest)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    return {"mediaType": media, "digest": digest, "size": sink.size}, f"sha256:{sink.diff.hexdigest()}"

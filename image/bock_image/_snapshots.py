"""Per-layer snapshots (unpacked once, content-addressed by the layer digest) and rootfs assembly:
an overlay mount of the snapshots plus a private upper directory, or a plain copy as fallback."""

from __future__ import annotations

import contextlib
import errno
import os
from pathlib import Path
from typing import TYPE_CHECKING

import attrs

from . import _media
from ._compress import open_decompressed
from ._digest import HashingReader, check_digest
from ._fsutil import flocked, mark_topdir, remove_tree
from ._models import Descriptor, Platform
from ._mount import mount_overlay, umount
from ._unpack import extract_stream
from .errors import DigestMismatch, ImageError, StoreError

if TYPE_CHECKING:
    from ._store import Store


@attrs.frozen
class Rootfs:
    path: Path
    mode: str  # "overlay" or "copy"
    upper: Path | None = None
    work: Path | None = None


def _snapshot_dir(store: Store, digest: str) -> Path:
    alg, hexpart = check_digest(digest)
    return store._meta / "snapshots" / f"{alg}-{hexpart}"


def make_tmp_dir(path: Path) -> Path:
    """Create and return a temporary directory beside a snapshot ``path`` (renamed to it once complete).
    The snapshots directory is flagged as a top of hierarchies first, so ext4 gives each snapshot a
    block group of its own, chosen by a hash of its (random) name (mark_topdir)."""
    mark_topdir(path.parent)
    tmp = path.with_name(f".tmp-{path.name}-{os.getpid()}-{os.urandom(4).hex()}")
    tmp.mkdir(mode=0o755)
    return tmp


def commit_tmp_dir(tmp: Path, path: Path) -> None:
    """Rename a finished snapshot into place (under its lock). Should another process have put the
    same snapshot there first (a lock file unlinked by a failed holder lets two in), theirs stays;
    the caller removes ours."""
    try:
        os.rename(tmp, path)
    except OSError as exc:
        if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST) or not path.is_dir():
            raise


def apply_layer(
    store: Store, layer: Descriptor, dest: str, *, mode: str, lowers=(), diff_id: str | None = None
) -> None:
    """Decompress a stored layer blob and extract it into dest, checking the diff_id if given."""
    compression = _media.layer_compression(layer.mediaType)
    with store.open_blob(layer.digest) as raw:
        plain = open_decompressed(raw, compression)
        try:
            reader = HashingReader(plain, (diff_id or "sha256").partition(":")[0])
            extract_stream(reader, dest, mode=mode, lowers=lowers)
            reader.drain()
        finally:
            plain.close()
    if diff_id is not None and reader.digest() != diff_id:
        raise DigestMismatch(
            f"layer {layer.digest}: uncompressed content hashes to {reader.digest()}, config says {diff_id}"
        )


def snapshot(
    store: Store, layer: str | Descriptor, *, parents: list[Descriptor], diff_id: str | None = None
) -> Path:
    """The unpacked (overlay-format) directory of one layer, made once and reused."""
    if isinstance(layer, str):
        layer = Descriptor(_media.OCI_LAYER_GZIP, layer, store.blob_path(layer).stat().st_size)
    path = _snapshot_dir(store, layer.digest)
    if path.is_dir():
        return path
    lowers = [str(snapshot(store, p, parents=parents[:i])) for i, p in enumerate(parents)][::-1]
    try:
        with flocked(f"{path}.lock"):
            if path.is_dir():
                return path
            tmp = make_tmp_dir(path)
            try:
                apply_layer(store, layer, str(tmp), mode="overlay", lowers=lowers, diff_id=diff_id)
                commit_tmp_dir(tmp, path)
            finally:
                remove_tree(tmp)  # nothing left there after a successful rename
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(f"{path}.lock")
    return path


def make_rootfs(
    store: Store, ref: str, dest: Path, *, mode: str = "auto", platform: Platform | None = None
) -> Rootfs:
    """Assemble the image's root filesystem at ``dest`` (created; must not exist or be empty).

    mode ``overlay``: overlay mount of the layer snapshots, upper/work dirs beside dest
    (``.DEST.upper``/``.DEST.work``); ``copy``: layers extracted in order into dest;
    ``auto``: overlay, else copy. Undo an overlay rootfs with release_rootfs()."""
    if mode not in ("auto", "overlay", "copy"):
        raise ImageError(f"unknown rootfs mode {mode!r} (auto, overlay, copy)")
    manifest_desc = store.manifest_descriptor(ref, platform)
    manifest = store.read_json(manifest_desc)
    _media.check_manifest_type(manifest.get("mediaType", manifest_desc.mediaType))
    from ._models import descriptor

    layers = [descriptor(d) for d in manifest.get("layers", [])]
    for layer in layers:
        _media.layer_compression(layer.mediaType)  # unknown media types fail before any work
    config = store.read_json(descriptor(manifest["config"]))
    diff_ids = (config.get("rootfs") or {}).get("diff_ids") or []
    if len(diff_ids) != len(layers):
        diff_ids = [None] * len(layers)
    dest = Path(dest).absolute()
    dest.mkdir(parents=True, exist_ok=True)
    if any(dest.iterdir()):
        raise StoreError(f"rootfs destination {dest} is not empty")
    with store.using():
        if mode in ("auto", "overlay") and layers:
            snaps = [
                str(snapshot(store, layer, parents=layers[:i], diff_id=diff_ids[i]))
                for i, layer in enumerate(layers)
            ]
            upper = dest.with_name(f".{dest.name}.upper")
            work = dest.with_name(f".{dest.name}.work")
            upper.mkdir(exist_ok=True)
            work.mkdir(exist_ok=True)
            try:
                mount_overlay(list(reversed(snaps)), str(dest), str(upper), str(work))
                return Rootfs(dest, "overlay", upper, work)
            except OSError as exc:
                remove_tree(upper)
                remove_tree(work)
                # EINVAL also stands for a kernel without lowerdir+ (before 6.8) when the layers
                # do not fit one mount(2) call, and for more than overlayfs's 500 layers
                if mode == "overlay" or exc.errno not in (
                    errno.EPERM,
                    errno.EINVAL,
                    errno.ENODEV,
                    errno.ENOTSUP,
                    errno.ENOSYS,
                ):
                    raise ImageError(f"overlay mount of {len(layers)} layers failed: {exc}") from None
        try:
            for i, layer in enumerate(layers):
                apply_layer(store, layer, str(dest), mode="apply", diff_id=diff_ids[i])
        except BaseException:
            remove_tree(dest)
            raise
    return Rootfs(dest, "copy")


def release_rootfs(dest: str | os.PathLike, *, remove: bool = True) -> None:
    """Unmount an overlay rootfs made by make_rootfs (if mounted) and remove it with its upper/work."""
    dest = Path(dest).absolute()
    if os.path.ismount(dest):
        umount(str(dest))
    if remove:
        for p in (dest.with_name(f".{dest.name}.upper"), dest.with_name(f".{dest.name}.work"), dest):
            remove_tree(p)

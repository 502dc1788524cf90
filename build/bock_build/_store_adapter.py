"""The few places bock-build relies on bock-image internals, kept in one adapter.

bock-image keeps one unpacked, overlay-format directory per layer under ``ROOT/.bock/snapshots``
(``Store.snapshot``). A RUN step's overlay upper dir (and a COPY layer dir) is already in that
format, so bock-build moves it there instead of unpacking the layer it just wrote. Wanted from
bock-image: a public ``Store.adopt_snapshot(digest, directory)``."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any


def snapshot_path(store, digest: str) -> Path:
    alg, _, hexpart = digest.partition(":")
    return store.root / ".bock" / "snapshots" / f"{alg}-{hexpart}"


def install_snapshot(store, digest: str, directory: Path) -> Path:
    dest = snapshot_path(store, digest)
    if dest.is_dir():
        shutil.rmtree(directory, ignore_errors=True)
        return dest
    try:
        os.rename(directory, dest)
    except OSError:
        if not dest.is_dir():
            raise
        shutil.rmtree(directory, ignore_errors=True)
    return dest


def layer_snapshots(store, layers: list) -> list[Path]:
    """Snapshot dirs (bottom to top) for image layers, unpacking the ones not yet unpacked."""
    paths = [snapshot_path(store, d["digest"] if isinstance(d, dict) else d.digest) for d, _ in layers]
    if all(p.is_dir() for p in paths):
        return paths  # already unpacked: no need to load bock-image's unpacker
    from bock_image import Descriptor

    descs = [
        d if isinstance(d, Descriptor) else Descriptor(d["mediaType"], d["digest"], d["size"])
        for d, _ in layers
    ]
    return [
        store.snapshot(desc, parents=descs[:i], diff_id=diff_id)
        for i, (desc, (_, diff_id)) in enumerate(zip(descs, layers, strict=True))
    ]


def extract_tar(stream, dest: str) -> None:
    """Safe extraction of an ADD tarball (any compression) onto dest (bock-image's hardened unpacker)."""
    from bock_image._compress import open_decompressed
    from bock_image._unpack import extract_stream

    plain = open_decompressed(stream)
    try:
        extract_stream(plain, dest, mode="apply")
    finally:
        plain.close()


def mount_overlay(*args: Any, **kw: Any) -> None:
    """bock_image._mount.mount_overlay (imported on first use: it loads ctypes)."""
    from bock_image._mount import mount_overlay as _mount_overlay

    _mount_overlay(*args, **kw)


def umount(target: str, flags: int = 0) -> None:
    from bock_image._mount import umount as _umount

    _umount(target, flags)

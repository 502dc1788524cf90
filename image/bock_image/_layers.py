"""Writing layers and images into a store: `import` of a rootfs tarball or directory (one layer,
like ``docker import``), and the helpers bock-build will use to append layers."""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import os
import tarfile
from pathlib import Path
from typing import Any, BinaryIO

from . import _media
from ._compress import compressor, open_decompressed
from ._models import Descriptor, Platform, to_dict
from .errors import ImageError, NotFound

_MEDIA_FOR = {"gzip": _media.OCI_LAYER_GZIP, "zstd": _media.OCI_LAYER_ZSTD, "none": _media.OCI_LAYER}


class _LayerWriter:
    """File-like sink: hashes the tar (diff_id), compresses, hashes again (digest), writes to disk."""

    def __init__(self, out: BinaryIO, compression: str) -> None:
        self.out = out
        self.diff = hashlib.sha256()
        self.blob = hashlib.sha256()
        self.size = 0
        self.comp = None if compression == "none" else compressor(compression)

    def _emit(self, data: bytes) -> None:
        if data:
            self.blob.update(data)
            self.out.write(data)
            self.size += len(data)

    def write(self, data: bytes) -> int:
        self.diff.update(data)
        self._emit(self.comp.compress(data) if self.comp else bytes(data))
        return len(data)

    def close(self) -> None:
        if self.comp:
            self._emit(self.comp.flush())


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def write_layer(
    store, source: str | os.PathLike | BinaryIO, compression: str = "gzip"
) -> tuple[Descriptor, str]:
    """Store one layer made from a directory (tarred with numeric owners) or a tar stream/file
    (compressed or not). Returns (layer descriptor, diff_id)."""
    if compression not in _MEDIA_FOR:
        raise ImageError(f"unknown compression {compression!r} (gzip, zstd, none)")
    tmp = store.temp_path("layer")
    try:
        with open(tmp, "xb") as out:
            sink = _LayerWriter(out, compression)
            if isinstance(source, (str, os.PathLike)) and Path(source).is_dir():
                _tar_directory(Path(source), sink)
            else:
                opened = None
                if isinstance(source, (str, os.PathLike)):
                    try:
                        opened = open(source, "rb")  # noqa: SIM115 - closed in finally
                    except FileNotFoundError:
                        raise NotFound(f"no such file or directory: {source}") from None
                raw = opened or source
                try:
                    plain = open_decompressed(raw)  # type: ignore[arg-type]
                    for chunk in iter(lambda: plain.read(1 << 20), b""):
                        sink.write(chunk)
                finally:
                    if opened:
                        opened.close()
            sink.close()
            out.flush()
            os.fsync(out.fileno())
        digest = f"sha256:{sink.blob.hexdigest()}"
        store.commit_file(tmp, digest, sync=False)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    return Descriptor(_MEDIA_FOR[compression], digest, sink.size), f"sha256:{sink.diff.hexdigest()}"


def _tar_directory(root: Path, sink: _LayerWriter) -> None:
    def _filter(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.uname = info.gname = ""
        return info

    with tarfile.open(fileobj=sink, mode="w|", format=tarfile.PAX_FORMAT) as tar:  # type: ignore[arg-type]
        for entry in sorted(os.listdir(root)):
            tar.add(root / entry, arcname=entry, recursive=True, filter=_filter)


def new_config(
    diff_ids: list[str],
    *,
    platform: Platform | None = None,
    config: dict[str, Any] | None = None,
    history: list[dict[str, Any]] | None = None,
    author: str | None = None,
) -> dict[str, Any]:
    platform = platform or Platform.host()
    created = _now()
    out: dict[str, Any] = {"created": created, "architecture": platform.architecture, "os": platform.os}
    if platform.variant:
        out["variant"] = platform.variant
    if author:
        out["author"] = author
    out["config"] = {k: v for k, v in (config or {}).items() if v not in (None, [], {})}
    out["rootfs"] = {"type": "layers", "diff_ids": list(diff_ids)}
    out["history"] = history or [{"created": created, "created_by": "bock-image import"} for _ in diff_ids]
    return out


def write_image(
    store,
    ref: str | None,
    config: dict[str, Any],
    layers: list[Descriptor],
    annotations: dict[str, str] | None = None,
) -> Descriptor:
    """Store config + OCI manifest and (if ref) name it in index.json. Returns the manifest descriptor."""
    config_desc = store.put_json(config, _media.OCI_CONFIG, sync=False)
    manifest: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": _media.OCI_MANIFEST,
        "config": to_dict(Descriptor(_media.OCI_CONFIG, config_desc.digest, config_desc.size)),
        "layers": [to_dict(d) for d in layers],
    }
    if annotations:
        manifest["annotations"] = annotations
    desc = store.put_json(manifest, _media.OCI_MANIFEST, sync=False)
    desc = Descriptor(_media.OCI_MANIFEST, desc.digest, desc.size)
    if ref is not None:
        store.add_image(ref, desc)
    else:
        store.sync()
    return desc


def import_rootfs(
    store,
    source: str | os.PathLike | BinaryIO,
    ref: str,
    *,
    compression: str = "gzip",
    config: dict[str, Any] | None = None,
    platform: Platform | None = None,
    author: str | None = None,
) -> Descriptor:
    """``docker import``: one layer from a rootfs tarball (any compression) or a directory."""
    with store.using():
        layer, diff_id = write_layer(store, source, compression)
        cfg = new_config([diff_id], platform=platform, config=config, author=author)
        return write_image(store, ref, cfg, [layer])

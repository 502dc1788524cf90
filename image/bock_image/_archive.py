"""oci-archive and docker-archive (``docker save`` format): save and load; export of a
flattened filesystem tarball."""

from __future__ import annotations

import io
import json
import os
import tarfile
import tempfile
from pathlib import Path
from typing import Any

from . import _media
from ._compress import open_decompressed, sniff
from ._digest import HashingReader
from ._fsutil import remove_tree
from ._models import Descriptor, descriptor, to_dict
from ._store import REF_NAME, Store, canonical_name, dumps
from .errors import ImageError, NotFound, UnsupportedMediaType

FORMATS = ("oci-archive", "docker-archive")


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(data))


def _add_blob(tar: tarfile.TarFile, store: Store, digest: str, name: str) -> None:
    path = store.blob_path(digest)
    info = tar.gettarinfo(str(path), arcname=name)
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    with open(path, "rb") as f:
        tar.addfile(info, f)


def save_archive(store: Store, refs: list[str], dest: str | os.PathLike, fmt: str = "oci-archive") -> None:
    """Write the images ``refs`` to a tarball (atomically, via a temporary file)."""
    if fmt not in FORMATS:
        raise ImageError(f"unknown archive format {fmt!r} ({', '.join(FORMATS)})")
    dest = Path(dest)
    tmp = dest.with_name(f".{dest.name}.tmp-{os.getpid()}")
    try:
        with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tar:
            (_save_oci if fmt == "oci-archive" else _save_docker)(store, refs, tar)
        os.replace(tmp, dest)
    finally:
        if tmp.exists():
            tmp.unlink()


def _save_oci(store: Store, refs: list[str], tar: tarfile.TarFile) -> None:
    manifests = []
    seen: set[str] = set()
    _add_bytes(tar, "oci-layout", dumps({"imageLayoutVersion": "1.0.0"}))
    for ref in refs:
        desc = store.resolve(ref)
        todo = [desc]
        while todo:
            d = todo.pop()
            if d.digest in seen or not store.has_blob(d.digest):
                continue
            seen.add(d.digest)
            alg, hexpart = d.digest.split(":")
            _add_blob(tar, store, d.digest, f"blobs/{alg}/{hexpart}")
            if d.mediaType in _media.INDEXES or d.mediaType in _media.MANIFESTS:
                obj = store.read_json(d)
                todo.extend(descriptor(x) for x in obj.get("manifests", []) + obj.get("layers", []))
                if "config" in obj:
                    todo.append(descriptor(obj["config"]))
        entry = to_dict(desc.with_annotations({REF_NAME: canonical_name(ref)}))
        manifests.append(entry)
    _add_bytes(
        tar, "index.json", dumps({"schemaVersion": 2, "mediaType": _media.OCI_INDEX, "manifests": manifests})
    )


def _save_docker(store: Store, refs: list[str], tar: tarfile.TarFile) -> None:
    entries = []
    written: set[str] = set()
    for ref in refs:
        manifest = store.manifest(ref)
        cfg_desc = descriptor(manifest["config"])
        config = store.read_blob(cfg_desc.digest, cfg_desc.size)
        cfg_name = f"{cfg_desc.digest.split(':')[1]}.json"
        if cfg_name not in written:
            _add_bytes(tar, cfg_name, config)
            written.add(cfg_name)
        diff_ids = json.loads(config).get("rootfs", {}).get("diff_ids", [])
        layer_names = []
        for layer, diff_id in zip(
            [descriptor(d) for d in manifest.get("layers", [])], diff_ids, strict=False
        ):
            name = f"{diff_id.split(':')[1]}.tar"
            layer_names.append(name)
            if name in written:
                continue
            written.add(name)
            compression = _media.layer_compression(layer.mediaType)
            if compression == "none":
                _add_blob(tar, store, layer.digest, name)
                continue
            with (
                tempfile.TemporaryFile(dir=store._meta / "ingest") as plain_tmp,
                store.open_blob(layer.digest) as raw,
            ):
                plain = open_decompressed(raw, compression)
                for chunk in iter(lambda plain=plain: plain.read(1 << 20), b""):
                    plain_tmp.write(chunk)
                plain.close()
                info = tarfile.TarInfo(name)
                info.size = plain_tmp.tell()
                info.mode = 0o644
                plain_tmp.seek(0)
                tar.addfile(info, plain_tmp)
        tags = []
        if not ref.startswith("sha256:"):
            from ._reference import parse_reference

            try:
                r = parse_reference(ref)
                tags = [r.familiar()] if r.tag and not r.digest else []
            except ImageError:
                tags = []
        entries.append({"Config": cfg_name, "RepoTags": tags, "Layers": layer_names})
    _add_bytes(tar, "manifest.json", json.dumps(entries).encode())


def load_archive(
    store: Store, src: str | os.PathLike, ref: str | None = None
) -> list[tuple[str | None, Descriptor]]:
    """Load an oci-archive or docker-archive (format detected). ``ref`` names the (single) image
    when the archive has no names or to override them. Returns what was added."""
    try:
        tar = tarfile.open(src, "r:*")  # noqa: SIM115 - closed by the with below
    except FileNotFoundError:
        raise NotFound(f"no such file: {src}") from None
    except tarfile.TarError as exc:
        raise ImageError(f"{src}: not a tar archive: {exc}") from None
    with tar, store.using():
        names = set(tar.getnames())
        if "oci-layout" in names or "./oci-layout" in names:
            return _load_oci(store, tar, ref)
        if "manifest.json" in names or "./manifest.json" in names:
            return _load_docker(store, tar, ref)
        raise UnsupportedMediaType(
            f"{src}: neither an oci-archive (no oci-layout) nor a docker-archive (no manifest.json)"
        )


def _member(tar: tarfile.TarFile, name: str):
    for candidate in (name, f"./{name}"):
        try:
            member = tar.getmember(candidate)
        except KeyError:
            continue
        f = tar.extractfile(member)
        if f is not None:
            return f
    raise NotFound(f"archive has no {name}")


def _load_oci(store: Store, tar: tarfile.TarFile, ref: str | None) -> list[tuple[str | None, Descriptor]]:
    index = json.load(_member(tar, "index.json"))
    blob_names = [n for n in tar.getnames() if "blobs/" in n]
    for name in blob_names:
        member = tar.getmember(name)
        if not member.isfile():
            continue
        alg, hexpart = name.split("blobs/", 1)[1].split("/", 1)
        with tar.extractfile(member) as f:  # type: ignore[union-attr]
            store.put_blob(f, f"{alg}:{hexpart}", member.size)
    added = []
    entries = [descriptor(m) for m in index.get("manifests", [])]
    for d in entries:
        name = ref if (ref and len(entries) == 1) else d.ref_name
        store.add_image(name, d) if name else store.add_image(None, d)
        added.append((name, d))
    return added


def _load_docker(store: Store, tar: tarfile.TarFile, ref: str | None) -> list[tuple[str | None, Descriptor]]:
    entries = json.load(_member(tar, "manifest.json"))
    added = []
    for entry in entries:
        config_bytes = _member(tar, entry["Config"]).read()
        config = json.loads(config_bytes)
        diff_ids = (config.get("rootfs") or {}).get("diff_ids") or []
        layers = []
        for i, name in enumerate(entry.get("Layers", [])):
            f = _member(tar, name)
            head = f.read(4)
            f.seek(0)
            kind = sniff(head)
            if kind == "none":
                reader = HashingReader(f)
                desc = store.put_blob(reader, media_type=_media.OCI_LAYER)
                diff = desc.digest
            else:
                desc = store.put_blob(
                    f, media_type=_media.OCI_LAYER_GZIP if kind == "gzip" else _media.OCI_LAYER_ZSTD
                )
                diff = None
            if diff and i < len(diff_ids) and diff_ids[i] != diff:
                raise ImageError(
                    f"layer {name}: content {diff} does not match the config's diff_id {diff_ids[i]}"
                )
            layers.append(Descriptor(desc.mediaType, desc.digest, desc.size))
        cfg_desc = store.put_blob(config_bytes, media_type=_media.OCI_CONFIG)
        manifest: dict[str, Any] = {
            "schemaVersion": 2,
            "mediaType": _media.OCI_MANIFEST,
            "config": to_dict(Descriptor(_media.OCI_CONFIG, cfg_desc.digest, cfg_desc.size)),
            "layers": [to_dict(d) for d in layers],
        }
        mdesc = store.put_json(manifest, _media.OCI_MANIFEST)
        mdesc = Descriptor(_media.OCI_MANIFEST, mdesc.digest, mdesc.size)
        tags = [ref] if ref else (entry.get("RepoTags") or [None])
        for tag in tags:
            store.add_image(tag, mdesc)
            added.append((tag, mdesc))
    return added


def export_rootfs(store: Store, ref: str, dest: str | os.PathLike) -> None:
    """Write the image's flattened filesystem (whiteouts applied) as one tar file."""
    from ._snapshots import make_rootfs

    work = Path(tempfile.mkdtemp(prefix="bock-export-", dir=store._meta / "ingest"))
    try:
        root = work / "rootfs"
        make_rootfs(store, ref, root, mode="copy")
        dest = Path(dest)
        tmp = dest.with_name(f".{dest.name}.tmp-{os.getpid()}")
        with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tar:
            for entry in sorted(os.listdir(root)):
                tar.add(root / entry, arcname=entry)
        os.replace(tmp, dest)
    finally:
        remove_tree(work)

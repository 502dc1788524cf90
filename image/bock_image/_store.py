"""The image store: an OCI image layout (readable by skopeo ``oci:ROOT:ref`` and umoci as is),
plus bock-image's own hidden directories for partial downloads and unpacked layer snapshots.

Layout::

    ROOT/oci-layout            {"imageLayoutVersion": "1.0.0"}
    ROOT/index.json            manifests[] with org.opencontainers.image.ref.name annotations
    ROOT/blobs/<alg>/<hex>     content-addressed blobs
    ROOT/.bock/ingest/         partial downloads (resumable), temporary files
    ROOT/.bock/snapshots/      one unpacked directory per layer (overlay lower dirs)
    ROOT/.bock/lock            shared by writers, exclusive for gc
    ROOT/.bock/index.lock      exclusive around index.json read-modify-write
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

from . import _media
from ._digest import check_digest, digest_of, is_digest, new_hasher, verify_bytes
from ._fsutil import atomic_write, flocked, fsync_dir, remove_tree
from ._models import Descriptor, Platform, descriptor, to_dict
from ._reference import parse_reference
from .errors import DigestMismatch, ImageError, InvalidReference, NotFound, StoreError, UnsupportedMediaType

DEFAULT_ROOT = "/var/lib/bock/images"
REF_NAME = "org.opencontainers.image.ref.name"
CHUNK = 1 << 20


def default_root() -> str:
    return os.environ.get("BOCK_IMAGE_ROOT") or DEFAULT_ROOT


def canonical_name(ref: str) -> str:
    """The name stored in index.json: as given, with ``:latest`` added when there is no tag/digest."""
    if is_digest(ref):
        return ref
    last = ref.rsplit("/", 1)[-1]
    if ":" not in last and "@" not in last:
        return f"{ref}:latest"
    return ref


def dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


class Store:
    """An OCI image layout on disk. All public methods are safe against concurrent processes."""

    def __init__(self, root: str | os.PathLike | None = None, *, create: bool = True) -> None:
        self.root = Path(root or default_root()).absolute()
        self._meta = self.root / ".bock"
        self._unsynced: set[Path] = set()  # blob directories with renames not yet fsynced
        self._sync_lock = threading.Lock()
        if create:
            self._init()
        elif not (self.root / "oci-layout").exists():
            raise StoreError(f"{self.root} is not an OCI image layout (no oci-layout file)")

    # -- layout ----------------------------------------------------------------------------
    def _init(self) -> None:
        for d in (self.root / "blobs" / "sha256", self._meta / "ingest", self._meta / "snapshots"):
            d.mkdir(parents=True, exist_ok=True)
        layout = self.root / "oci-layout"
        if not layout.exists():
            atomic_write(
                layout, dumps({"imageLayoutVersion": "1.0.0"}), sync_dir=False
            )  # index.json syncs the dir
        else:
            try:
                version = json.loads(layout.read_bytes()).get("imageLayoutVersion")
            except (ValueError, AttributeError):
                version = None
            if version != "1.0.0":
                raise StoreError(f"{layout}: unsupported imageLayoutVersion {version!r}")
        if not (self.root / "index.json").exists():
            with self._index_lock():
                if not (self.root / "index.json").exists():
                    self._write_index({"schemaVersion": 2, "mediaType": _media.OCI_INDEX, "manifests": []})

    @contextlib.contextmanager
    def _index_lock(self) -> Iterator[None]:
        with flocked(self._meta / "index.lock"):
            yield

    @contextlib.contextmanager
    def using(self, exclusive: bool = False) -> Iterator[None]:
        """Shared lock held by writers (pull, import, load) so that gc (exclusive) waits for them."""
        with flocked(self._meta / "lock", exclusive=exclusive):
            yield

    # -- blobs -----------------------------------------------------------------------------
    def blob_path(self, digest: str) -> Path:
        alg, hexpart = check_digest(digest)
        return self.root / "blobs" / alg / hexpart

    def has_blob(self, digest: str, size: int | None = None) -> bool:
        try:
            st = self.blob_path(digest).stat()
        except FileNotFoundError:
            return False
        return size is None or st.st_size == size

    def open_blob(self, digest: str) -> BinaryIO:
        try:
            return open(self.blob_path(digest), "rb")
        except FileNotFoundError:
            raise NotFound(f"blob {digest} not found in {self.root}") from None

    def read_blob(self, digest: str, size: int | None = None, verify: bool = True) -> bytes:
        with self.open_blob(digest) as f:
            data = f.read()
        if verify:
            verify_bytes(data, digest, size)
        return data

    def ingest_path(self, digest: str) -> Path:
        alg, hexpart = check_digest(digest)
        return self._meta / "ingest" / f"{alg}-{hexpart}.partial"

    def temp_path(self, hint: str = "tmp") -> Path:
        return self._meta / "ingest" / f"{hint}-{os.getpid()}-{os.urandom(6).hex()}"

    def commit_file(self, tmp: str | os.PathLike, digest: str, sync: bool = True) -> Path:
        """Move an already-verified and fsynced file into the blob store. With ``sync=False`` the
        directory fsync is left to sync() (add_image calls it before index.json may point at it)."""
        dest = self.blob_path(digest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(tmp, 0o644)
        os.replace(tmp, dest)
        if sync:
            fsync_dir(dest.parent)
        else:
            with self._sync_lock:
                self._unsynced.add(dest.parent)
        return dest

    def sync(self) -> None:
        """Make the renames of blobs committed with ``sync=False`` durable (one fsync per directory)."""
        with self._sync_lock:
            dirs, self._unsynced = self._unsynced, set()
        for d in dirs:
            fsync_dir(d)

    def put_blob(
        self,
        source: bytes | BinaryIO | Iterable[bytes],
        digest: str | None = None,
        size: int | None = None,
        media_type: str = "application/octet-stream",
        alg: str = "sha256",
        sync: bool = True,
    ) -> Descriptor:
        """Store a blob from bytes, a binary file object or an iterable of chunks, streaming
        through the hash into a temporary file. With ``digest``/``size`` given, a mismatch raises
        DigestMismatch and leaves nothing behind. Atomic: tmp + fsync + rename."""
        if digest is not None:
            alg = check_digest(digest)[0]
            if self.has_blob(digest, size):  # content-addressed: already there means already verified
                return Descriptor(media_type, digest, self.blob_path(digest).stat().st_size)
        hasher = new_hasher(alg)
        tmp = self.temp_path("blob")
        count = 0
        if isinstance(source, (bytes, bytearray, memoryview)):
            chunks: Iterable[bytes] = (bytes(source),)
        elif hasattr(source, "read"):
            chunks = iter(lambda: source.read(CHUNK), b"")  # type: ignore[union-attr]
        else:
            chunks = source
        try:
            with open(tmp, "xb") as f:
                for chunk in chunks:
                    hasher.update(chunk)
                    f.write(chunk)
                    count += len(chunk)
                f.flush()
                os.fsync(f.fileno())
            got = f"{alg}:{hasher.hexdigest()}"
            if digest is not None and got != digest:
                raise DigestMismatch(f"digest mismatch: expected {digest}, got {got}")
            if size is not None and count != size:
                raise DigestMismatch(f"size mismatch for {got}: expected {size} bytes, got {count}")
            self.commit_file(tmp, got, sync)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        return Descriptor(media_type, got, count)

    def put_json(self, obj: dict[str, Any], media_type: str | None = None, sync: bool = True) -> Descriptor:
        data = dumps(obj)
        return self.put_blob(
            data, media_type=media_type or obj.get("mediaType") or "application/json", sync=sync
        )

    # -- index -----------------------------------------------------------------------------
    def index(self) -> dict[str, Any]:
        try:
            data = json.loads((self.root / "index.json").read_bytes())
        except FileNotFoundError:
            raise StoreError(f"{self.root}: index.json is missing") from None
        except ValueError as exc:
            raise StoreError(f"{self.root}/index.json is corrupt: {exc}") from None
        if not isinstance(data, dict) or not isinstance(data.get("manifests", []), list):
            raise StoreError(f"{self.root}/index.json is not an image index")
        data.setdefault("manifests", [])
        return data

    def _write_index(self, data: dict[str, Any]) -> None:
        atomic_write(self.root / "index.json", dumps(data))

    def images(self) -> list[tuple[str | None, Descriptor]]:
        """(reference name or None, manifest descriptor) for every entry of index.json."""
        return [(d.ref_name, d) for d in (descriptor(m) for m in self.index()["manifests"])]

    def _matches(self, entry: dict[str, Any], ref: str) -> bool:
        name = (entry.get("annotations") or {}).get(REF_NAME)
        if name is None:
            return False
        if name == ref or name == canonical_name(ref):
            return True
        try:
            return parse_reference(name) == parse_reference(ref)
        except ImageError:
            return False

    def add_image(
        self, ref: str | None, desc: Descriptor, *, extra_annotations: dict[str, str] | None = None
    ) -> None:
        """Record ``desc`` (a manifest or index already in the store) in index.json under ``ref``,
        replacing what ``ref`` named before."""
        if not self.has_blob(desc.digest):
            raise NotFound(f"cannot add {desc.digest}: blob not in store")
        self.sync()  # blobs durable before index.json names them
        annotations = {k: v for k, v in (desc.annotations or {}).items() if k != REF_NAME}
        annotations.update(extra_annotations or {})
        if ref is not None:
            ref = canonical_name(ref)
            _check_ref_name(ref)
            annotations[REF_NAME] = ref
        entry = to_dict(desc.with_annotations(annotations))
        with self._index_lock():
            index = self.index()
            if ref is not None:
                index["manifests"] = [m for m in index["manifests"] if not self._matches(m, ref)]
            index["manifests"].append(entry)
            self._write_index(index)

    def tag(self, src: str, dest: str) -> Descriptor:
        desc = self.resolve(src)
        self.add_image(dest, desc)
        return desc

    def rm(self, ref: str) -> Descriptor:
        """Remove a reference from index.json (blobs stay until gc)."""
        with self._index_lock():
            index = self.index()
            keep, gone = [], []
            for m in index["manifests"]:
                matched = self._matches(m, ref) or (is_digest(ref) and m.get("digest") == ref)
                (gone if matched else keep).append(m)
            if not gone:
                raise NotFound(f"image not known: {ref}")
            index["manifests"] = keep
            self._write_index(index)
        return descriptor(gone[0])

    def resolve(self, ref: str) -> Descriptor:
        """The index.json descriptor for a reference name (or a manifest digest / name@digest)."""
        if not isinstance(ref, str) or not ref:
            raise InvalidReference(f"invalid reference {ref!r}")
        entries = self.index()["manifests"]
        for m in entries:
            if self._matches(m, ref):
                return descriptor(m)
        digest = ref if is_digest(ref) else (ref.rsplit("@", 1)[1] if "@" in ref else None)
        if digest and is_digest(digest):
            for m in entries:
                if m.get("digest") == digest:
                    return descriptor(m)
            if self.has_blob(digest):
                data = self.read_blob(digest)
                media = _sniff_media_type(data)
                return Descriptor(media, digest, len(data))
        raise NotFound(f"image not known: {ref}")

    # -- image objects ---------------------------------------------------------------------
    def read_json(self, desc: Descriptor) -> dict[str, Any]:
        data = self.read_blob(desc.digest, desc.size)
        try:
            obj = json.loads(data)
        except ValueError as exc:
            raise StoreError(f"blob {desc.digest} is not JSON: {exc}") from None
        if not isinstance(obj, dict):
            raise StoreError(f"blob {desc.digest} is not a JSON object")
        return obj

    def manifest_descriptor(self, ref: str | Descriptor, platform: Platform | None = None) -> Descriptor:
        """Resolve a reference to an image manifest descriptor, choosing a platform in indexes."""
        desc = ref if isinstance(ref, Descriptor) else self.resolve(ref)
        for _ in range(8):
            media = desc.mediaType
            if media in _media.MANIFESTS:
                return desc
            if media not in _media.INDEXES:
                raise UnsupportedMediaType(f"unsupported manifest media type {media!r} for {desc.digest}")
            desc = select_platform(self.read_json(desc), platform or Platform.host())
        raise StoreError("image index nesting too deep")

    def manifest(self, ref: str | Descriptor, platform: Platform | None = None) -> dict[str, Any]:
        desc = self.manifest_descriptor(ref, platform)
        manifest = self.read_json(desc)
        _media.check_manifest_type(manifest.get("mediaType", desc.mediaType))
        return manifest

    def config(self, ref: str | Descriptor, platform: Platform | None = None) -> dict[str, Any]:
        manifest = self.manifest(ref, platform)
        return self.read_json(descriptor(manifest["config"]))

    def layers(self, ref: str | Descriptor, platform: Platform | None = None) -> list[Descriptor]:
        return [descriptor(d) for d in self.manifest(ref, platform).get("layers", [])]

    # -- maintenance -----------------------------------------------------------------------
    def _reachable(self) -> set[str]:
        seen: set[str] = set()
        todo = [descriptor(m) for m in self.index()["manifests"]]
        while todo:
            d = todo.pop()
            if d.digest in seen:
                continue
            seen.add(d.digest)
            if d.mediaType in _media.INDEXES or d.mediaType in _media.MANIFESTS:
                if not self.has_blob(d.digest):
                    continue
                obj = self.read_json(d)
                for key in ("manifests", "layers"):
                    todo.extend(descriptor(x) for x in obj.get(key, []))
                for key in ("config", "subject"):
                    if key in obj:
                        todo.append(descriptor(obj[key]))
        return seen

    def gc(self) -> list[str]:
        """Delete blobs and snapshots no reference reaches, and stale partial files. Returns digests."""
        removed: list[str] = []
        with self.using(exclusive=True):
            keep = self._reachable()
            for alg_dir in (self.root / "blobs").iterdir():
                for blob in alg_dir.iterdir():
                    digest = f"{alg_dir.name}:{blob.name}"
                    if digest not in keep:
                        blob.unlink()
                        removed.append(digest)
            in_use = _overlay_lowers()
            for snap in (self._meta / "snapshots").iterdir():
                alg, _, hexpart = snap.name.partition("-")
                if f"{alg}:{hexpart}" not in keep and str(snap) not in in_use:
                    remove_tree(snap)
            for partial in (self._meta / "ingest").iterdir():
                remove_tree(partial)
        return removed

    def verify(self) -> list[str]:
        """Re-hash every blob and check every reference is complete. Returns the problems found."""
        problems: list[str] = []
        for alg_dir in (self.root / "blobs").iterdir():
            for blob in alg_dir.iterdir():
                hasher = new_hasher(alg_dir.name)
                with open(blob, "rb") as f:
                    for chunk in iter(lambda f=f: f.read(CHUNK), b""):
                        hasher.update(chunk)
                if hasher.hexdigest() != blob.name:
                    problems.append(
                        f"blob {alg_dir.name}:{blob.name} is corrupt (hashes to {hasher.hexdigest()})"
                    )
        for name, desc in self.images():
            label = name or desc.digest
            try:
                self._check_complete(desc)
            except ImageError as exc:
                problems.append(f"{label}: {exc}")
        return problems

    def _check_complete(self, desc: Descriptor) -> None:
        if not self.has_blob(desc.digest, desc.size):
            raise NotFound(f"missing or wrong-sized blob {desc.digest}")
        if desc.mediaType in _media.INDEXES:
            for m in self.read_json(desc).get("manifests", []):
                self._check_complete(descriptor(m))
        elif desc.mediaType in _media.MANIFESTS:
            manifest = self.read_json(desc)
            for d in [manifest["config"], *manifest.get("layers", [])]:
                d = descriptor(d)
                if not self.has_blob(d.digest, d.size):
                    raise NotFound(f"missing or wrong-sized blob {d.digest}")

    # -- snapshots and rootfs (see _snapshots.py) -------------------------------------------
    def snapshot(
        self, layer: str | Descriptor, *, parents: Iterable[Descriptor] = (), diff_id: str | None = None
    ) -> Path:
        from ._snapshots import snapshot

        return snapshot(self, layer, parents=list(parents), diff_id=diff_id)

    def rootfs(
        self, ref: str, dest: str | os.PathLike, *, mode: str = "auto", platform: Platform | None = None
    ):
        from ._snapshots import make_rootfs

        return make_rootfs(self, ref, Path(dest), mode=mode, platform=platform)


def _overlay_lowers() -> set[str]:
    """Lower directories of the overlay mounts that exist now (a rootfs still in use keeps its
    snapshots even after its image was removed)."""
    lowers: set[str] = set()
    try:
        with open("/proc/self/mountinfo") as f:
            for line in f:
                if " - overlay " not in line:
                    continue
                for opt in line.rsplit(" ", 1)[-1].strip().split(","):
                    key, _, value = opt.partition("=")
                    if key == "lowerdir":
                        lowers.update(value.split(":"))
                    elif key in ("lowerdir+", "datadir+"):  # one per layer (the new mount API)
                        lowers.add(value)
    except OSError:
        pass
    return lowers


def select_platform(index: dict[str, Any], want: Platform) -> Descriptor:
    candidates = []
    for m in index.get("manifests", []):
        d = descriptor(m)
        p = d.platform
        if p is None or p.os == "unknown" or p.architecture == "unknown":
            continue
        if p.matches(want):
            candidates.append(d)
    if not candidates:
        available = ", ".join(str(descriptor(m).platform) for m in index.get("manifests", []))
        raise NotFound(f"no image for platform {want} in index (available: {available or 'none'})")
    if want.variant:
        for d in candidates:
            if d.platform and d.platform.variant == want.variant:
                return d
    return candidates[0]


def _sniff_media_type(data: bytes) -> str:
    try:
        obj = json.loads(data)
    except ValueError:
        return "application/octet-stream"
    if isinstance(obj, dict):
        if obj.get("mediaType"):
            return obj["mediaType"]
        if "manifests" in obj:
            return _media.OCI_INDEX
        if "layers" in obj:
            return _media.OCI_MANIFEST
    return "application/octet-stream"


def _check_ref_name(ref: str) -> None:
    import re

    if not re.match(
        r"^[A-Za-z0-9]+(?:(?:[-._:@+]|--)[A-Za-z0-9]+)*(?:/[A-Za-z0-9]+(?:(?:[-._:@+]|--)[A-Za-z0-9]+)*)*$",
        ref,
    ):
        raise InvalidReference(f"invalid reference name {ref!r}")


__all__ = ["DEFAULT_ROOT", "Store", "canonical_name", "default_root", "digest_of", "select_platform"]

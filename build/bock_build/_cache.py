"""The content-addressed step cache: one JSON record per step key (key -> layer descriptor and
diff_id), in ``STORE/.bock-build/cache``. Layers live in the store as blobs (+ snapshots)."""

from __future__ import annotations

import contextlib
import json
import os
import re
import time
from pathlib import Path
from typing import Any

import attrs

from ._store_adapter import snapshot_path
from .errors import CacheError


@attrs.frozen
class CacheRecord:
    key: str
    layer: dict[str, Any]
    diff_id: str
    created_by: str
    created: float
    last_used: float

    @property
    def size(self) -> int:
        return int(self.layer.get("size", 0))


class Cache:
    def __init__(self, store) -> None:
        self.store = store
        self.dir = store.root / ".bock-build" / "cache"
        self.dir.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        return self.dir / f"{key.replace(':', '-')}.json"

    def get(self, key: str) -> CacheRecord | None:
        try:
            data = json.loads(self._path(key).read_text())
            rec = CacheRecord(**data)
        except (FileNotFoundError, ValueError, TypeError):
            return None
        if not self.store.has_blob(rec.layer["digest"], rec.layer.get("size")):
            return None  # the blob was garbage-collected: a miss
        with contextlib.suppress(OSError):
            now = time.time()
            os.utime(self._path(key), (now, now))
        return rec

    def put(self, key: str, layer: dict[str, Any], diff_id: str, created_by: str) -> CacheRecord:
        now = time.time()
        rec = CacheRecord(key, layer, diff_id, created_by, now, now)
        path = self._path(key)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(3).hex()}")
        tmp.write_text(json.dumps(attrs.asdict(rec)))
        os.replace(tmp, path)
        return rec

    def records(self) -> list[CacheRecord]:
        out = []
        for p in sorted(self.dir.glob("*.json")):
            try:
                data = json.loads(p.read_text())
                rec = CacheRecord(**data)
            except (ValueError, TypeError, FileNotFoundError):
                continue
            out.append(attrs.evolve(rec, last_used=p.stat().st_mtime))
        return out

    def _in_use(self) -> set[str]:
        """Layer digests reachable from images in the store (never deleted by prune)."""
        used: set[str] = set()
        for _, desc in self.store.images():
            with contextlib.suppress(Exception):
                used.update(d.digest for d in self.store.layers(desc))
        return used

    def remove(self, records: list[CacheRecord]) -> tuple[int, int]:
        """Drop records; delete their blobs and snapshots unless an image or a kept record uses them."""
        gone = {r.key for r in records}
        keep_layers = {r.layer["digest"] for r in self.records() if r.key not in gone} | self._in_use()
        freed = 0
        with self.store.using(exclusive=True):
            for r in records:
                with contextlib.suppress(FileNotFoundError):
                    self._path(r.key).unlink()
                digest = r.layer["digest"]
                if digest in keep_layers:
                    continue
                keep_layers.add(digest)  # once
                with contextlib.suppress(FileNotFoundError):
                    self.store.blob_path(digest).unlink()
                    freed += r.size
                snap = snapshot_path(self.store, digest)
                if snap.exists():
                    import shutil

                    shutil.rmtree(snap, ignore_errors=True)
        return len(records), freed

    def prune(self, keep_storage: int | None = None, until: float | None = None) -> tuple[int, int]:
        """Remove records not used for ``until`` seconds, then least recently used ones until the
        remaining layers take at most ``keep_storage`` bytes."""
        recs = sorted(self.records(), key=lambda r: r.last_used)
        now = time.time()
        drop = [r for r in recs if until is not None and now - r.last_used > until]
        rest = [r for r in recs if r not in drop]
        if keep_storage is not None:
            total = sum(r.size for r in rest)
            while rest and total > keep_storage:
                r = rest.pop(0)
                drop.append(r)
                total -= r.size
        if keep_storage is None and until is None:
            drop = recs
        return self.remove(drop)

    def clear(self) -> tuple[int, int]:
        return self.remove(self.records())


_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?i?b?)?\s*$", re.I)
_DUR = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")


def parse_size(text: str) -> int:
    m = _SIZE.match(text)
    if not m:
        raise CacheError(f"invalid size {text!r}: expected e.g. 500MB, 2GiB, 1048576")
    unit = (m.group(2) or "").lower().rstrip("b").rstrip("i")
    mult = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}[unit]
    return int(float(m.group(1)) * mult)


def parse_duration(text: str) -> float:
    pos, total = 0, 0.0
    for m in _DUR.finditer(text):
        if m.start() != pos:
            break
        total += float(m.group(1)) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]
        pos = m.end()
    if not text or pos != len(text):
        raise CacheError(f"invalid duration {text!r}: expected e.g. 24h, 30m, 7d, 1h30m")
    return total

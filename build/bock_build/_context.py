"""The build context: selecting COPY/ADD sources (never outside the context, .dockerignore applied)
and their content digest (path, type, mode, owner, link target, sha256 of the bytes; never mtimes),
with file hashes memoised on stat data so a no-change rebuild does not re-read the context."""

from __future__ import annotations

import concurrent.futures
import fnmatch
import hashlib
import json
import os
import stat
import threading
from pathlib import Path

import attrs

from ._ignore import IgnoreRules
from .errors import ContextError


@attrs.frozen
class Entry:
    """One file system object to copy: abs source path, path relative to the copy root, lstat."""

    path: str
    rel: str
    st: os.stat_result


@attrs.frozen
class Source:
    """One selected COPY source: its root, whether it is a directory (contents are copied) and entries."""

    root: str
    name: str
    is_dir: bool
    entries: tuple[Entry, ...]


class HashMemo:
    """sha256 of file contents keyed on (dev, ino, size, mtime_ns, ctime_ns), persisted as JSON."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.lock = threading.Lock()
        self.data: dict[str, list] = {}
        self.dirty = False
        self.used: set[str] = set()
        if path is not None:
            try:
                self.data = json.loads(path.read_text())
            except (FileNotFoundError, ValueError):
                self.data = {}

    def lookup(self, path: str, st: os.stat_result) -> str | None:
        self.used.add(path)
        hit = self.data.get(path)
        key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
        if hit is not None and tuple(hit[:5]) == key:
            return hit[5]
        return None

    def digest(self, path: str, st: os.stat_result) -> str:
        self.used.add(path)
        key = [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]
        hit = self.data.get(path)
        if hit is not None and hit[:5] == key:
            return hit[5]
        h = hashlib.sha256()
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
        value = h.hexdigest()
        with self.lock:
            self.data[path] = [*key, value]
            self.dirty = True
        return value

    def save(self) -> None:
        if self.path is None or not self.dirty:
            return
        if len(self.data) > 2 * len(self.used) + 20000:  # forget files no recent build looked at
            self.data = {k: v for k, v in self.data.items() if k in self.used}
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(self.data, separators=(",", ":")))
        os.replace(tmp, self.path)
        self.dirty = False


def _walk(
    root: str, rel_base: str, ctx_rel: str, ignore: IgnoreRules | None, excludes: list[str]
) -> list[Entry]:
    out: list[Entry] = []
    stack = [(root, rel_base, ctx_rel)]
    while stack:
        d, rel, crel = stack.pop()
        try:
            items = sorted(os.scandir(d), key=lambda e: e.name)
        except FileNotFoundError:
            continue
        for e in items:
            r = f"{rel}/{e.name}" if rel else e.name
            c = f"{crel}/{e.name}" if crel else e.name
            st = e.stat(follow_symlinks=False)
            if excludes and any(
                fnmatch.fnmatchcase(r, x) or fnmatch.fnmatchcase(e.name, x) for x in excludes
            ):
                continue
            if ignore is not None and ignore.ignored(c):
                if stat.S_ISDIR(st.st_mode) and not ignore.prunable(c):
                    stack.append((e.path, r, c))  # something inside may be re-included
                continue
            out.append(Entry(e.path, r, st))
            if stat.S_ISDIR(st.st_mode):
                stack.append((e.path, r, c))
    out.sort(key=lambda x: x.rel)
    return out


def _has_glob(s: str) -> bool:
    return any(c in s for c in "*?[")


def resolve_in_root(root: str, rel: str, *, follow_last: bool = True, what: str = "context") -> str:
    """The real path of ``rel`` under ``root``, following symlinks; refuses anything that leaves root."""
    root = os.path.realpath(root)
    parts = [p for p in rel.split("/") if p not in ("", ".")]
    if ".." in parts:
        norm = os.path.normpath("/" + "/".join(parts))
        if os.path.normpath(rel.lstrip("/")).startswith(".."):
            raise ContextError(f"COPY source {rel!r} is outside the build {what} ({root})")
        parts = [p for p in norm.split("/") if p]
    path = root
    for i, p in enumerate(parts):
        path = os.path.join(path, p)
        if (i < len(parts) - 1 or follow_last) and os.path.islink(path):
            real = os.path.realpath(path)
            if real != root and not real.startswith(root + "/"):
                raise ContextError(f"COPY source {rel!r} is outside the build {what}: {path} -> {real}")
            path = real
    return path


def select_sources(
    root: str,
    patterns: list[str],
    *,
    ignore: IgnoreRules | None,
    excludes: list[str] = (),
    what: str = "context",
    allow_missing_glob: bool = False,
) -> list[Source]:
    """Expand COPY sources (already variable-expanded) under root. Raises ContextError with the path."""
    root = os.path.realpath(root)
    out: list[Source] = []
    for pat in patterns:
        norm = os.path.normpath(pat.lstrip("/")) if pat.strip("/") else "."
        if norm == ".." or norm.startswith("../"):
            raise ContextError(f"COPY source {pat!r} is outside the build {what} ({root})")
        if _has_glob(norm):
            matches = _glob(root, norm, ignore)
            if not matches and not allow_missing_glob:
                raise ContextError(f"COPY source {pat!r}: no file in the build {what} matches")
        else:
            matches = [norm]
        for rel in matches:
            if rel != "." and ignore is not None and ignore.ignored(rel):
                raise ContextError(f"COPY source {rel!r} is excluded by .dockerignore")
            path = resolve_in_root(root, rel, what=what)
            try:
                st = os.stat(path)
            except FileNotFoundError:
                raise ContextError(f"COPY source {rel!r} not found in the build {what} ({root})") from None
            name = os.path.basename(rel) if rel != "." else ""
            if stat.S_ISDIR(st.st_mode):
                crel = "" if rel == "." else rel
                entries = _walk(path, "", crel, ignore, list(excludes))
                out.append(Source(path, name, True, tuple(entries)))
            else:
                out.append(Source(path, name, False, (Entry(path, name, st),)))
    return out


def _glob(root: str, pattern: str, ignore: IgnoreRules | None) -> list[str]:
    parts = pattern.split("/")
    current = [""]
    for i, part in enumerate(parts):
        nxt = []
        for base in current:
            d = os.path.join(root, base) if base else root
            if not _has_glob(part):
                cand = f"{base}/{part}" if base else part
                if os.path.lexists(os.path.join(root, cand)):
                    nxt.append(cand)
                continue
            try:
                names = sorted(os.listdir(d))
            except (FileNotFoundError, NotADirectoryError):
                continue
            for n in names:
                if fnmatch.fnmatchcase(n, part):
                    cand = f"{base}/{n}" if base else n
                    if i == len(parts) - 1 and ignore is not None and ignore.ignored(cand):
                        continue
                    nxt.append(cand)
        current = nxt
    return current


def _kind(st: os.stat_result) -> str:
    m = st.st_mode
    return "d" if stat.S_ISDIR(m) else "l" if stat.S_ISLNK(m) else "f" if stat.S_ISREG(m) else "o"


def sources_digest(
    sources: list[Source], memo: HashMemo, pool: concurrent.futures.Executor | None = None
) -> str:
    """sha256 over every selected entry: name, type, mode, uid, gid, link target, content digest."""
    h = hashlib.sha256()
    regular = [(e.path, e.st) for s in sources for e in s.entries if stat.S_ISREG(e.st.st_mode)]
    digests = {}
    misses = []
    for p, st in regular:
        hit = memo.lookup(p, st)
        if hit is None:
            misses.append((p, st))
        else:
            digests[p] = hit
    if pool is not None and len(misses) > 8:
        digests.update(zip((p for p, _ in misses), pool.map(lambda a: memo.digest(*a), misses), strict=True))
    else:
        digests.update((p, memo.digest(p, st)) for p, st in misses)
    for s in sources:
        h.update(f"source {s.name} {'dir' if s.is_dir else 'file'}\n".encode())
        for e in s.entries:
            st = e.st
            extra = os.readlink(e.path) if stat.S_ISLNK(st.st_mode) else digests.get(e.path, "")
            h.update(
                f"{e.rel}\0{_kind(st)}\0{stat.S_IMODE(st.st_mode):o}\0{st.st_uid}\0{st.st_gid}\0{extra}\n".encode()
            )
    return "sha256:" + h.hexdigest()

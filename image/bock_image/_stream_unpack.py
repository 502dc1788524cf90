"""Unpacking a layer while it downloads: the download thread feeds each chunk (after hashing and
writing it to disk) to an extractor thread through a bounded queue, so decompression and file
creation overlap with the network. The snapshot is committed only once the blob digest *and*
the diff_id have been verified; anything odd (a restarted download, an error) abandons the stream
and the layer is unpacked from the stored blob afterwards the usual way."""

from __future__ import annotations

import contextlib
import io
import os
import queue
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from . import _media
from ._compress import open_decompressed
from ._digest import HashingReader
from ._fsutil import flocked, remove_tree
from ._models import Descriptor
from ._snapshots import _snapshot_dir, commit_tmp_dir, make_tmp_dir
from ._unpack import extract_stream

if TYPE_CHECKING:
    from ._store import Store

_DONE = None
_BATCH = 1 << 20  # socket reads (~64 KiB) are passed on in batches: fewer queue operations and GIL handoffs
_QUEUE_BATCHES = 8  # a few MiB in flight at most


class _QueueReader(io.RawIOBase):
    """A blocking raw binary reader over the chunks of a queue (None ends the stream). A RawIOBase
    (``closed``, ``readable``...) so that io.BufferedReader and the decompressors accept it."""

    def __init__(self, q: queue.Queue) -> None:
        super().__init__()
        self.q = q
        self.cur = memoryview(b"")
        self.eof = False

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        while not self.cur:
            if self.eof:
                return 0
            chunk = self.q.get()
            if chunk is _DONE:
                self.eof = True
                return 0
            self.cur = memoryview(chunk)
        n = min(len(b), len(self.cur))
        b[:n] = self.cur[:n]
        self.cur = self.cur[n:]
        return n

    def drain(self) -> None:
        """Consume the queue to its end (also once closed): the downloader must never block on it."""
        while not self.eof:
            if self.q.get() is _DONE:
                self.eof = True
        self.cur = memoryview(b"")


class StreamingSnapshot:
    def __init__(
        self, store: Store, layer: Descriptor, diff_id: str | None, lower: list[StreamingSnapshot | Path]
    ):
        self.store = store
        self.layer = layer
        self.diff_id = diff_id
        self.lower = lower  # top first; a StreamingSnapshot not yet done is waited for
        self.path = _snapshot_dir(store, layer.digest)
        self.tmp: Path | None = None  # made by the extractor thread
        self.q: queue.Queue = queue.Queue(_QUEUE_BATCHES)
        self.abandoned = False
        self.fed = 0
        self.pending: list[bytes] = []
        self.pending_size = 0
        self.error: BaseException | None = None
        self.got_diff_id: str | None = None
        self.done = threading.Event()  # set when committed (ok) or given up (not ok)
        self.ok = False
        self.thread = threading.Thread(target=self._run, name=f"unpack-{layer.digest[7:19]}", daemon=True)
        self.thread.start()

    # called from the download thread
    def feed(self, chunk: bytes) -> None:
        if not self.abandoned:
            self.pending.append(chunk)
            self.pending_size += len(chunk)
            self.fed += len(chunk)
            if self.pending_size >= _BATCH:
                self._flush()

    def _flush(self) -> None:
        if self.pending:
            self.q.put(b"".join(self.pending) if len(self.pending) > 1 else self.pending[0])
            self.pending, self.pending_size = [], 0

    def abandon(self) -> None:
        if not self.abandoned:
            self.abandoned = True
            self.pending, self.pending_size = [], 0
            self.q.put(_DONE)

    def complete(self, verified: bool) -> None:
        """The blob download ended (verified or not): wait for the extractor, commit or clean up."""
        if not self.abandoned:
            self._flush()
            self.q.put(_DONE)
        self.thread.join()
        try:
            if verified and not self.abandoned and self.error is None and self._diff_ok():
                with flocked(f"{self.path}.lock"):
                    if not self.path.is_dir():
                        commit_tmp_dir(self.tmp, self.path)
                self.ok = True
        finally:
            if self.tmp is not None:
                remove_tree(self.tmp)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(f"{self.path}.lock")
            self.done.set()

    def _diff_ok(self) -> bool:
        return self.diff_id is None or self.got_diff_id == self.diff_id

    # the extractor thread
    def _run(self) -> None:
        reader = _QueueReader(self.q)
        try:
            lowers: list[str] = []
            for low in self.lower:
                if isinstance(low, StreamingSnapshot):
                    low.done.wait()
                    if not low.ok:
                        raise RuntimeError("a lower layer was not unpacked")
                    lowers.append(str(low.path))
                else:
                    lowers.append(str(low))
            self.tmp = make_tmp_dir(self.path)
            plain = open_decompressed(reader, _media.layer_compression(self.layer.mediaType))  # type: ignore[arg-type]
            try:
                hashed = HashingReader(plain, (self.diff_id or "sha256").partition(":")[0])
                extract_stream(hashed, str(self.tmp), mode="overlay", lowers=lowers)
                hashed.drain()
                self.got_diff_id = hashed.digest()
            finally:
                plain.close()
        except BaseException as exc:
            self.error = exc
        finally:
            reader.drain()  # never leave the downloader blocked on a full queue

"""Decompressing layer streams (gzip via ISA-L when installed, zstd, uncompressed)."""

from __future__ import annotations

import io
from typing import BinaryIO

from .errors import UnsupportedMediaType

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


def sniff(head: bytes) -> str:
    if head.startswith(GZIP_MAGIC):
        return "gzip"
    if head.startswith(ZSTD_MAGIC):
        return "zstd"
    return "none"


def open_decompressed(raw: BinaryIO, compression: str | None = None) -> BinaryIO:
    """A reader of the uncompressed bytes of ``raw``. ``compression`` None means sniff the magic."""
    buffered = raw if isinstance(raw, io.BufferedReader) else io.BufferedReader(raw, 1 << 20)  # type: ignore[arg-type]
    actual = sniff(buffered.peek(4)[:4])
    if compression is not None and compression != actual and actual != "none":
        compression = actual  # trust the bytes: the digest already matched the descriptor
    compression = compression or actual
    if compression == "gzip":
        try:
            from isal import igzip_threaded

            return igzip_threaded.open(buffered, "rb", threads=1)  # decompresses in a helper thread
        except ImportError:  # pragma: no cover - isal is optional
            import gzip

            return gzip.GzipFile(fileobj=buffered, mode="rb")  # type: ignore[return-value]
    if compression == "zstd":
        import zstandard

        return zstandard.ZstdDecompressor().stream_reader(buffered, read_across_frames=True, closefd=False)  # type: ignore[return-value]
    if compression == "none":
        return buffered
    raise UnsupportedMediaType(f"unsupported compression {compression!r}")


def compressor(kind: str, level: int | None = None):
    """An object with ``compress(bytes)`` / ``flush()`` for writing layers."""
    if kind == "gzip":
        import zlib

        return zlib.compressobj(level if level is not None else 6, zlib.DEFLATED, 31)
    if kind == "zstd":
        import zstandard

        return zstandard.ZstdCompressor(level=level or 3).compressobj()
    raise UnsupportedMediaType(f"unsupported compression {kind!r}")

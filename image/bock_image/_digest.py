"""Digests: parsing, hashing while streaming."""

from __future__ import annotations

import hashlib
import re

from .errors import DigestMismatch, InvalidReference

_DIGEST_RE = re.compile(r"^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$")
ALGORITHMS = ("sha256", "sha512")


def check_digest(digest: str) -> tuple[str, str]:
    """Return (algorithm, hex) of a valid digest, or raise InvalidReference."""
    if not isinstance(digest, str) or not _DIGEST_RE.match(digest):
        raise InvalidReference(f"invalid digest {digest!r}")
    alg, _, hexpart = digest.partition(":")
    return alg, hexpart


def is_digest(text: str) -> bool:
    return bool(_DIGEST_RE.match(text))


def new_hasher(digest_or_alg: str = "sha256"):
    alg = digest_or_alg.partition(":")[0]
    if alg not in ALGORITHMS:
        raise InvalidReference(f"unsupported digest algorithm {alg!r}")
    return hashlib.new(alg)


def digest_of(data: bytes, alg: str = "sha256") -> str:
    return f"{alg}:{hashlib.new(alg, data).hexdigest()}"


def verify_bytes(data: bytes, digest: str, size: int | None = None) -> None:
    alg, _ = check_digest(digest)
    if size is not None and len(data) != size:
        raise DigestMismatch(f"size mismatch for {digest}: expected {size} bytes, got {len(data)}")
    got = digest_of(data, alg)
    if got != digest:
        raise DigestMismatch(f"digest mismatch: expected {digest}, got {got}")


class HashingReader:
    """A read-only file object that hashes everything read through it."""

    def __init__(self, raw, alg: str = "sha256") -> None:
        self.raw = raw
        self.hasher = hashlib.new(alg)
        self.alg = alg
        self.count = 0

    def read(self, n: int = -1) -> bytes:
        data = self.raw.read(n)
        self.hasher.update(data)
        self.count += len(data)
        return data

    def readinto(self, buf) -> int:
        n = self.raw.readinto(buf)
        if n:
            self.hasher.update(memoryview(buf)[:n])
            self.count += n
        return n

    def drain(self, chunk: int = 1 << 20) -> None:
        while self.read(chunk):
            pass

    def digest(self) -> str:
        return f"{self.alg}:{self.hasher.hexdigest()}"

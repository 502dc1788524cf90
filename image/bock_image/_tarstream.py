"""A lean streaming reader of layer tars (ustar, GNU and pax), for unpacking.

tarfile's stream mode costs several Python calls and copies per 512-byte block and per member;
this reads the decompressed stream with ``readinto`` into one reused buffer, parses each header
with a few slices and hands file contents straight to ``os.write``. It only parses: every path
and link is vetted by the extractor (_unpack). Members look like tarfile.TarInfo to it (name,
mode, uid, gid, size, mtime, type, linkname, devmajor, devminor, pax_headers and the is*()
predicates). As in tarfile: names are decoded as UTF-8 with surrogateescape (bytes kept as they
are), pax ``g`` records apply to the members that follow, only regular files (and unknown types)
carry data blocks, and the archive ends at the first zero block or at the end of the stream.
GNU sparse members are refused (layers do not use them)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import BinaryIO

from .errors import UnsafeLayer

BLOCK = 512
_ZERO_BLOCK = bytes(BLOCK)
_BUF = 1 << 20
REGULAR = frozenset("0\x007")  # regular, old-style regular, contiguous
_KNOWN = frozenset("0\x0071234567")
_NUMERIC_PAX = {"size": "size", "uid": "uid", "gid": "gid"}


def _corrupt(why: str) -> UnsafeLayer:
    return UnsafeLayer(f"corrupt layer tar: {why}")


def _text(raw: bytes | memoryview) -> str:
    raw = bytes(raw)
    end = raw.find(0)
    return (raw if end < 0 else raw[:end]).decode("utf-8", "surrogateescape")


def _number(raw: bytes | memoryview, what: str) -> int:
    raw = bytes(raw)
    if raw and raw[0] in (0o200, 0o377):  # GNU base-256
        value = int.from_bytes(raw[1:], "big")
        if raw[0] == 0o377:
            value -= 256 ** (len(raw) - 1)
        return value
    digits = raw.split(b"\0", 1)[0].strip(b" ")
    if not digits:
        return 0
    try:
        return int(digits, 8)
    except ValueError:
        raise _corrupt(f"invalid {what} field {raw!r}") from None


class Member:
    """One tar entry, shaped like the parts of tarfile.TarInfo the extractor uses."""

    __slots__ = (
        "devmajor",
        "devminor",
        "gid",
        "linkname",
        "mode",
        "mtime",
        "name",
        "pax_headers",
        "size",
        "type",
        "uid",
    )

    def __init__(self) -> None:
        self.pax_headers: dict[str, str] = {}

    def isreg(self) -> bool:
        return self.type in REGULAR

    def isdir(self) -> bool:
        return self.type == "5"

    def issym(self) -> bool:
        return self.type == "2"

    def islnk(self) -> bool:
        return self.type == "1"

    def ischr(self) -> bool:
        return self.type == "3"

    def isblk(self) -> bool:
        return self.type == "4"

    def isfifo(self) -> bool:
        return self.type == "6"


class TarStream:
    """Iterate over the members of a tar read from ``src`` (anything with ``readinto``); the data
    of the current member is read with copy_to()/read_data() before moving on, or skipped."""

    def __init__(self, src: BinaryIO) -> None:
        self.src = src
        self.buf = bytearray(_BUF)
        self.view = memoryview(self.buf)
        self.pos = 0
        self.end = 0
        self.left = 0  # data bytes of the current member not consumed yet
        self.pad = 0  # then this many padding bytes
        self.global_pax: dict[str, str] = {}

    # -- buffer ------------------------------------------------------------------------------
    def _fill(self, need: int) -> None:
        """Make at least ``need`` (<= buffer size) bytes available at pos, or raise at end of data."""
        have = self.end - self.pos
        if self.pos:
            self.buf[:have] = self.buf[self.pos : self.end]
            self.pos, self.end = 0, have
        while self.end < need:
            n = self.src.readinto(self.view[self.end :])
            if not n:
                raise _corrupt("unexpected end of data")
            self.end += n

    def _take(self, n: int) -> memoryview:
        if self.end - self.pos < n:
            self._fill(n)
        out = self.view[self.pos : self.pos + n]
        self.pos += n
        return out

    def _skip(self, n: int) -> None:
        for _ in self._chunks(n):
            pass

    def _chunks(self, n: int) -> Iterator[memoryview]:
        while n:
            if self.pos == self.end:
                self.pos = self.end = 0
                got = self.src.readinto(self.view)
                if not got:
                    raise _corrupt("unexpected end of data")
                self.end = got
            k = min(n, self.end - self.pos)
            yield self.view[self.pos : self.pos + k]
            self.pos += k
            n -= k

    def _padded(self, size: int) -> bytes:
        """A member's whole data (for long names and pax records), padding consumed."""
        if size > 16 << 20:
            raise _corrupt(f"extended header of {size} bytes")
        data = b"".join(bytes(c) for c in self._chunks(size))
        self._skip(-size % BLOCK)
        return data

    # -- data of the current member ----------------------------------------------------------
    def copy_to(self, fd: int) -> None:
        """Write the current member's data to fd."""
        for chunk in self._chunks(self.left):
            while chunk:
                chunk = chunk[os.write(fd, chunk) :]
        self.left = 0

    def read_data(self) -> bytes:
        data = b"".join(bytes(c) for c in self._chunks(self.left))
        self.left = 0
        return data

    def drain(self) -> None:
        """Read the source to its end (so that a hash over it covers everything)."""
        self.pos = self.end = 0
        while self.src.readinto(self.view):
            pass

    # -- headers -----------------------------------------------------------------------------
    def __iter__(self) -> Iterator[Member]:
        longname: str | None = None
        longlink: str | None = None
        pax: dict[str, str] = {}
        while True:
            self._skip(self.left + self.pad)
            self.left = self.pad = 0
            if self.end - self.pos < BLOCK:
                try:
                    self._fill(BLOCK)
                except UnsafeLayer:
                    if self.end - self.pos == 0 and longname is None and longlink is None and not pax:
                        return  # end of stream without end-of-archive blocks: tarfile accepts it too
                    raise
            hdr = self._take(BLOCK)
            if hdr == _ZERO_BLOCK:
                return
            self._check(hdr)
            kind = chr(hdr[156]) if hdr[156] else "\0"
            size = _number(hdr[124:136], "size")
            if size < 0:
                raise _corrupt("negative size")
            if kind in "LK":  # GNU long name / long link target
                value = _text(self._padded(size))
                if kind == "L":
                    longname = value
                else:
                    longlink = value
                continue
            if kind in "xg":
                records = self._pax_records(self._padded(size))
                if kind == "g":
                    self.global_pax.update(records)
                else:
                    pax.update(records)
                continue
            m = Member()
            m.type = kind
            name = _text(hdr[0:100])
            if kind == "\0" and name.endswith("/"):  # an old-style directory
                m.type = kind = "5"
            prefix = _text(hdr[345:500])
            if prefix:  # ustar's name prefix (tarfile reads it whatever the magic)
                name = f"{prefix}/{name}"
            m.name = name
            m.mode = _number(hdr[100:108], "mode")
            m.uid = _number(hdr[108:116], "uid")
            m.gid = _number(hdr[116:124], "gid")
            m.size = size
            m.mtime = _number(hdr[136:148], "mtime")
            m.linkname = _text(hdr[157:257])
            m.devmajor = _number(hdr[329:337], "devmajor")
            m.devminor = _number(hdr[337:345], "devminor")
            if longname is not None:
                m.name, longname = longname, None
            if longlink is not None:
                m.linkname, longlink = longlink, None
            if self.global_pax or pax:
                self._apply_pax(m, {**self.global_pax, **pax})
                pax = {}
            if kind == "S" or any(k.startswith("GNU.sparse.") for k in m.pax_headers):
                raise UnsafeLayer(f"{m.name!r}: GNU sparse files are not supported in layers")
            if kind == "5":
                m.name = m.name.rstrip("/")  # as tarfile
            if min(m.uid, m.gid, m.mode, m.devmajor, m.devminor) < 0:
                raise _corrupt(f"negative id, mode or device number in {m.name!r}")
            if "\0" in m.name or "\0" in m.linkname:
                raise _corrupt(f"NUL byte in the name of {m.name!r}")
            if kind not in REGULAR and kind in _KNOWN:
                self.left = self.pad = 0  # as tarfile: only regular (and unknown) members carry data
            else:
                self.left, self.pad = m.size, -m.size % BLOCK
            yield m

    @staticmethod
    def _check(hdr: memoryview) -> None:
        want = _number(hdr[148:156], "checksum")
        raw = bytes(hdr)
        unsigned = sum(raw[:148]) + 256 + sum(raw[156:])
        if want == unsigned:
            return
        high = sum(1 for b in raw[:148] if b > 127) + sum(1 for b in raw[156:] if b > 127)
        if want != unsigned - 256 * high:  # some old tars summed signed chars
            raise _corrupt("bad checksum")

    @staticmethod
    def _pax_records(data: bytes) -> dict[str, str]:
        out: dict[str, str] = {}
        pos = 0
        binary = False
        while pos < len(data):
            if data[pos] == 0:  # trailing NULs
                break
            space = data.find(b" ", pos)
            if space < 0:
                raise _corrupt("invalid pax record")
            try:
                length = int(data[pos:space])
            except ValueError:
                raise _corrupt("invalid pax record length") from None
            end = pos + length
            if length <= 0 or end > len(data) or data[end - 1 : end] != b"\n":
                raise _corrupt("invalid pax record")
            key, eq, value = data[space + 1 : end - 1].partition(b"=")
            if not eq:
                raise _corrupt("invalid pax record")
            k = key.decode("utf-8", "surrogateescape")
            if k == "hdrcharset":
                binary = value == b"BINARY"
            out[k] = value.decode("utf-8", "surrogateescape")
            pos = end
        del binary  # names are kept as bytes (surrogateescape) either way
        return out

    @staticmethod
    def _apply_pax(m: Member, pax: dict[str, str]) -> None:
        m.pax_headers = pax
        if "path" in pax:
            m.name = pax["path"]
        if "linkpath" in pax:
            m.linkname = pax["linkpath"]
        for key, attr in _NUMERIC_PAX.items():
            if key in pax:
                try:
                    setattr(m, attr, int(pax[key]))
                except ValueError:
                    raise _corrupt(f"invalid pax {key} {pax[key]!r}") from None
        if "mtime" in pax:
            try:
                m.mtime = float(pax["mtime"])
            except ValueError:
                raise _corrupt(f"invalid pax mtime {pax['mtime']!r}") from None

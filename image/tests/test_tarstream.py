"""The streaming tar reader used for unpacking, with Python's tarfile as the oracle: every member
of ustar, GNU and pax archives (long names and links, prefixes, base-256 numbers, xattrs, devices,
old-style directories, odd sizes) reads the same; damaged archives are refused."""

from __future__ import annotations

import io
import os
import tarfile

import pytest
from bock_image import UnsafeLayer
from bock_image._tarstream import TarStream

LONG = "/".join(["directory-with-a-long-name"] * 6)  # > 100 characters


def build(fmt: int, pax: bool = True) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt, encoding="utf-8", errors="surrogateescape") as t:

        def add(name: str, kind: bytes, data: bytes = b"", **kw) -> None:
            info = tarfile.TarInfo(name)
            info.type = kind
            info.size = len(data)
            info.mode = kw.pop("mode", 0o644)
            info.mtime = kw.pop("mtime", 1_700_000_000)
            for k, v in kw.items():
                setattr(info, k, v)
            t.addfile(info, io.BytesIO(data) if data else None)

        add("etc", tarfile.DIRTYPE, mode=0o755)
        add("etc/hosts", tarfile.REGTYPE, b"127.0.0.1 localhost\n", uid=0, gid=0)
        for size in (0, 1, 511, 512, 513, 70000):
            add(f"sizes/f{size}", tarfile.REGTYPE, os.urandom(size), mode=0o600)
        add(f"{LONG}/file", tarfile.REGTYPE, b"long", uid=1000, gid=1000)
        add("link", tarfile.SYMTYPE, linkname=f"{LONG}/file"[-90:], mode=0o777)
        if fmt != tarfile.USTAR_FORMAT:
            add("link-to-long", tarfile.SYMTYPE, linkname=f"{LONG}/file", mode=0o777)
        add("hard", tarfile.LNKTYPE, linkname="etc/hosts")
        add("dev/null", tarfile.CHRTYPE, devmajor=1, devminor=3, mode=0o666)
        add("dev/sda", tarfile.BLKTYPE, devmajor=8, devminor=0, mode=0o660)
        add("fifo", tarfile.FIFOTYPE)
        add("setuid", tarfile.REGTYPE, b"#!/bin/sh\n", mode=0o4755)
        if fmt != tarfile.USTAR_FORMAT:
            add("bigid", tarfile.REGTYPE, b"x", uid=3_000_000, gid=2**22)
        if pax:
            info_kw = {"pax_headers": {"SCHILY.xattr.user.comment": "héllo", "SCHILY.xattr.security.x": "v"}}
            add("xattrs", tarfile.REGTYPE, b"x", **info_kw)
            add("fraction", tarfile.REGTYPE, b"x", mtime=1_700_000_000.25)
            add("caf\udce9-latin1-name", tarfile.REGTYPE, b"bytes kept")
    return buf.getvalue()


def ours(data: bytes) -> list[tuple]:
    out = []
    stream = TarStream(io.BytesIO(data))
    for m in stream:
        body = stream.read_data() if m.isreg() else b""
        xattrs = {k: v for k, v in m.pax_headers.items() if k.startswith("SCHILY.xattr.")}
        kinds = (m.isreg(), m.isdir(), m.issym(), m.islnk(), m.ischr(), m.isblk(), m.isfifo())
        out.append((m.name, m.mode, m.uid, m.gid, m.size, m.mtime, m.linkname, kinds, xattrs, body))
        out[-1] += ((m.devmajor, m.devminor) if m.ischr() or m.isblk() else (),)
    return out


def oracle(data: bytes) -> list[tuple]:
    out = []
    with tarfile.open(fileobj=io.BytesIO(data), mode="r|", encoding="utf-8", errors="surrogateescape") as t:
        for m in t:
            f = t.extractfile(m) if m.isreg() else None
            body = f.read() if f else b""
            xattrs = {k: v for k, v in m.pax_headers.items() if k.startswith("SCHILY.xattr.")}
            kinds = (m.isreg(), m.isdir(), m.issym(), m.islnk(), m.ischr(), m.isblk(), m.isfifo())
            out.append((m.name, m.mode, m.uid, m.gid, m.size, m.mtime, m.linkname, kinds, xattrs, body))
            out[-1] += ((m.devmajor, m.devminor) if m.ischr() or m.isblk() else (),)
    return out


@pytest.mark.parametrize(
    "fmt", [tarfile.USTAR_FORMAT, tarfile.GNU_FORMAT, tarfile.PAX_FORMAT], ids=["ustar", "gnu", "pax"]
)
def test_members_read_as_tarfile_reads_them(fmt):
    data = build(fmt, pax=fmt == tarfile.PAX_FORMAT)
    got, want = ours(data), oracle(data)
    assert len(got) >= 15 and got == want
    names = [g[0] for g in got]
    assert f"{LONG}/file" in names
    if fmt == tarfile.PAX_FORMAT:
        assert "caf\udce9-latin1-name" in names
        assert (
            dict(zip(names, [g[8] for g in got], strict=True))["xattrs"]["SCHILY.xattr.user.comment"]
            == "héllo"
        )


def test_old_style_directory_and_global_pax_header():
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT, pax_headers={"comment": "g"}) as t:
        info = tarfile.TarInfo("olddir/")
        info.type = tarfile.AREGTYPE
        t.addfile(info)
        info = tarfile.TarInfo("after")
        info.size = 3
        t.addfile(info, io.BytesIO(b"abc"))
    data = buf.getvalue()
    assert ours(data) == oracle(data)
    assert ours(data)[0][7][1]  # a directory


def test_stream_without_end_blocks_and_concatenated_reads():
    data = build(tarfile.PAX_FORMAT)
    body = data.rstrip(b"\0")
    body += b"\0" * (-len(body) % 512)  # the last member's padding, no end-of-archive blocks

    class Trickle(io.RawIOBase):  # at most 700 bytes per read: headers straddle reads
        def __init__(self, raw: bytes) -> None:
            self.raw = io.BytesIO(raw)

        def readinto(self, b) -> int:
            chunk = self.raw.read(min(len(b), 700))
            b[: len(chunk)] = chunk
            return len(chunk)

    stream = TarStream(Trickle(body))
    names = []
    for m in stream:
        names.append(m.name)
        if m.isreg() and m.size % 2:
            stream.read_data()  # the others are skipped unread
    assert names == [o[0] for o in oracle(data)]


@pytest.mark.parametrize(
    "damage", ["truncated-data", "truncated-header", "checksum", "size-field", "negative-uid"]
)
def test_damaged_archives_are_refused(damage):
    data = bytearray(build(tarfile.GNU_FORMAT, pax=False))
    if damage == "truncated-data":
        data = data[: 512 * 5 + 100]
    elif damage == "truncated-header":
        data = data[: 512 * 2 + 200]
    elif damage == "checksum":
        data[512 + 10] ^= 0x41  # in the second header's name
    elif damage == "size-field":
        data[512 + 124 : 512 + 136] = b"9999zz999999"
    else:  # base-256 -1 as the uid, with a checksum that matches
        header = data[512:1024]
        header[108:116] = b"\xff" * 8
        header[148:156] = b" " * 8
        header[148:156] = b"%06o\0 " % sum(header)
        data[512:1024] = header
    stream = TarStream(io.BytesIO(bytes(data)))
    with pytest.raises(UnsafeLayer, match="corrupt layer tar"):
        for m in stream:
            if m.isreg():
                stream.read_data()


def test_sparse_and_nul_names_are_refused():
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        info = tarfile.TarInfo("sparse")
        info.pax_headers = {"GNU.sparse.major": "1", "GNU.sparse.minor": "0"}
        t.addfile(info)
    with pytest.raises(UnsafeLayer, match="sparse"):
        list(TarStream(io.BytesIO(buf.getvalue())))
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        info = tarfile.TarInfo("x")
        info.pax_headers = {"path": "a\0b"}
        t.addfile(info)
    with pytest.raises(UnsafeLayer, match="NUL"):
        list(TarStream(io.BytesIO(buf.getvalue())))

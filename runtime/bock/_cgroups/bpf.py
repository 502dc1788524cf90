"""The few ``bpf(2)`` commands a cgroup v2 device filter needs, through ctypes.

Load a ``BPF_PROG_TYPE_CGROUP_DEVICE`` program, attach it to a cgroup directory with
``BPF_F_ALLOW_MULTI``, and replace whatever device programs were attached before
(runc's ``loadAttachCgroupDeviceFilter``). The attached program is pinned by the
cgroup itself: our fds can be closed afterwards.
"""

from __future__ import annotations

import ctypes
import os

from bock import _libc
from bock._cgroups.devices import LICENSE
from bock._cgroups.errors import CgroupError

BPF_PROG_LOAD = 5
BPF_PROG_ATTACH = 8
BPF_PROG_DETACH = 9
BPF_PROG_GET_FD_BY_ID = 13
BPF_PROG_QUERY = 16
BPF_PROG_TYPE_CGROUP_DEVICE = 15
BPF_CGROUP_DEVICE = 6
BPF_F_ALLOW_MULTI = 2
_ATTR_SIZE = 128  # larger than any field we set; the kernel accepts a zeroed tail


def _bpf(cmd: int, attr: ctypes.Array) -> int:
    return _libc.syscall("bpf", ctypes.c_int(cmd), attr, ctypes.c_uint(_ATTR_SIZE))


def _attr(*fields: tuple[int, str, int]) -> ctypes.Array:
    buf = ctypes.create_string_buffer(_ATTR_SIZE)
    for offset, fmt, value in fields:
        ctype = ctypes.c_uint32 if fmt == "u32" else ctypes.c_uint64
        ctype.from_buffer(buf, offset).value = value
    return buf


def prog_load(insns: bytes) -> int:
    """Load a cgroup device program; on failure the verifier's log is in the error."""
    code = ctypes.create_string_buffer(insns, len(insns))
    lic = ctypes.create_string_buffer(LICENSE)
    base = (
        (0, "u32", BPF_PROG_TYPE_CGROUP_DEVICE),
        (4, "u32", len(insns) // 8),
        (8, "u64", ctypes.addressof(code)),
        (16, "u64", ctypes.addressof(lic)),
    )
    try:
        return _bpf(BPF_PROG_LOAD, _attr(*base))
    except OSError as first:
        log = ctypes.create_string_buffer(65536)
        try:
            fd = _bpf(
                BPF_PROG_LOAD,
                _attr(*base, (24, "u32", 1), (28, "u32", len(log)), (32, "u64", ctypes.addressof(log))),
            )
        except OSError:
            text = log.value.decode(errors="replace").strip()
            raise CgroupError(
                f"loading the cgroup device filter (bpf BPF_PROG_LOAD): {os.strerror(first.errno)}"
                + (f": {text}" if text else "")
            ) from None
        return fd


def query(dirfd: int) -> list[int]:
    """IDs of the device programs attached to the cgroup ``dirfd``."""
    size = 64
    for _ in range(10):
        ids = (ctypes.c_uint32 * size)()
        attr = _attr((0, "u32", dirfd), (4, "u32", BPF_CGROUP_DEVICE), (16, "u64", ctypes.addressof(ids)))
        ctypes.c_uint32.from_buffer(attr, 24).value = size
        try:
            _bpf(BPF_PROG_QUERY, attr)
        except OSError as e:
            if e.errno == 28:  # ENOSPC: prog_cnt now holds the real count
                size = ctypes.c_uint32.from_buffer(attr, 24).value
                continue
            raise CgroupError(f"bpf_prog_query(BPF_CGROUP_DEVICE) failed: {os.strerror(e.errno)}") from None
        count = ctypes.c_uint32.from_buffer(attr, 24).value
        return list(ids[:count])
    raise CgroupError("could not get complete list of CGROUP_DEVICE programs")


def attach_device_filter(dirfd: int, insns: bytes) -> None:
    """Attach ``insns`` to the cgroup, then detach the device programs it had before."""
    old_ids = query(dirfd)
    prog = prog_load(insns)
    try:
        try:
            _bpf(
                BPF_PROG_ATTACH,
                _attr(
                    (0, "u32", dirfd),
                    (4, "u32", prog),
                    (8, "u32", BPF_CGROUP_DEVICE),
                    (12, "u32", BPF_F_ALLOW_MULTI),
                ),
            )
        except OSError as e:
            raise CgroupError(
                "failed to call BPF_PROG_ATTACH (BPF_CGROUP_DEVICE, BPF_F_ALLOW_MULTI): "
                + os.strerror(e.errno)
            ) from None
    finally:
        os.close(prog)
    for prog_id in old_ids:
        try:
            old = _bpf(BPF_PROG_GET_FD_BY_ID, _attr((0, "u32", prog_id)))
        except OSError as e:
            if e.errno in (1, 13):  # EPERM/EACCES: an LSM-protected program; it can only restrict more
                continue
            raise CgroupError(f"cannot fetch program from id {prog_id}: {os.strerror(e.errno)}") from None
        try:
            _bpf(BPF_PROG_DETACH, _attr((0, "u32", dirfd), (4, "u32", old), (8, "u32", BPF_CGROUP_DEVICE)))
        except OSError as e:
            raise CgroupError(
                "failed to call BPF_PROG_DETACH (BPF_CGROUP_DEVICE) on old filter program: "
                + os.strerror(e.errno)
            ) from None
        finally:
            os.close(old)

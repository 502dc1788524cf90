"""mount(2)/umount2(2) and the new mount API through ctypes (overlay rootfs)."""

from __future__ import annotations

import ctypes
import os

_libc = ctypes.CDLL(None, use_errno=True)  # symbols of the loaded C library; find_library would fork ldconfig
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
_libc.syscall.restype = ctypes.c_long
MNT_DETACH = 2
MS_RDONLY = 1
_MOUNT_ATTR_RDONLY = 1
# x86_64 and aarch64 share these numbers (the new mount API came after the generic syscall table)
_MOVE_MOUNT, _FSOPEN, _FSCONFIG, _FSMOUNT = 429, 430, 431, 432
_FSOPEN_CLOEXEC = _FSMOUNT_CLOEXEC = 1
_FSCONFIG_SET_STRING, _FSCONFIG_CMD_CREATE = 1, 6
_MOVE_MOUNT_F_EMPTY_PATH = 4
_AT_FDCWD = -100
OPTIONS_MAX = 4000  # mount(2) takes its options in one page of 4096 bytes


def mount(source: str, target: str, fstype: str, flags: int = 0, data: str | None = None) -> None:
    if (
        _libc.mount(
            source.encode(), os.fsencode(target), fstype.encode(), flags, data.encode() if data else None
        )
        != 0
    ):
        err = ctypes.get_errno()
        raise OSError(err, f"mount {fstype} on {target}: {os.strerror(err)}")


def umount(target: str, flags: int = 0) -> None:
    if _libc.umount2(os.fsencode(target), flags) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"umount {target}: {os.strerror(err)}")


def mount_overlay(
    lowers: list[str],
    target: str,
    upper: str | None = None,
    work: str | None = None,
    *,
    readonly: bool = False,
) -> None:
    """An overlay of ``lowers`` (topmost first), with ``upper``/``work`` if given, at ``target``.

    One mount(2) when its options fit a page (about 30 snapshot paths under the default root);
    otherwise the new mount API adds the lower directories one by one with ``lowerdir+`` (Linux 6.8,
    up to overlayfs's 500 layers; an older kernel answers EINVAL). Either way /proc/self/mountinfo
    names every lower directory."""
    rw = [("upperdir", upper), ("workdir", work)] if upper else []
    opts = ",".join([f"lowerdir={':'.join(lowers)}", *(f"{k}={v}" for k, v in rw)])
    if len(opts) < OPTIONS_MAX:
        mount("overlay", target, "overlay", MS_RDONLY if readonly else 0, opts)
        return
    fs = _syscall("fsopen overlay", _FSOPEN, b"overlay", _FSOPEN_CLOEXEC)
    try:
        for key, value in [("source", "overlay"), *(("lowerdir+", d) for d in lowers), *rw]:
            assert value is not None
            _syscall(
                f"overlay {key} {value}",
                _FSCONFIG,
                fs,
                _FSCONFIG_SET_STRING,
                key.encode(),
                os.fsencode(value),
                0,
            )
        _syscall("overlay create", _FSCONFIG, fs, _FSCONFIG_CMD_CREATE, None, None, 0)
        mnt = _syscall(
            "fsmount overlay", _FSMOUNT, fs, _FSMOUNT_CLOEXEC, _MOUNT_ATTR_RDONLY if readonly else 0
        )
    finally:
        os.close(fs)
    try:
        _syscall(
            f"move_mount overlay to {target}",
            _MOVE_MOUNT, mnt, b"", _AT_FDCWD, os.fsencode(target), _MOVE_MOUNT_F_EMPTY_PATH,
        )  # fmt: skip
    finally:
        os.close(mnt)


def _syscall(what: str, nr: int, *args: object) -> int:
    # syscall(2) reads every argument as a long: pass ints as such (-100 must not arrive as 4294967196)
    ret = _libc.syscall(ctypes.c_long(nr), *(ctypes.c_long(a) if isinstance(a, int) else a for a in args))
    if ret < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")
    return ret

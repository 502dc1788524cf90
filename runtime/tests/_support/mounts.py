"""Find and undo mounts a test left under its temporary directories (never rm -rf a mount)."""

from __future__ import annotations

import ctypes
import os

_libc = ctypes.CDLL(None, use_errno=True)
MNT_DETACH = 2


def _unescape(field: str) -> str:
    for esc, ch in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
        field = field.replace(esc, ch)
    return field


def mounts_under(prefixes: list[str], mountinfo: str = "/proc/self/mountinfo") -> list[str]:
    """Mount points (in mount order) at or below any of ``prefixes``."""
    roots = [os.path.realpath(p).rstrip("/") for p in prefixes]
    out = []
    with open(mountinfo) as f:
        for line in f:
            point = _unescape(line.split()[4])
            if any(point == r or point.startswith(r + "/") for r in roots):
                out.append(point)
    return out


def umount(path: str, flags: int = MNT_DETACH) -> None:
    if _libc.umount2(os.fsencode(path), flags) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"umount {path}: {os.strerror(err)}")


def unmount_all_under(prefixes: list[str]) -> list[str]:
    """Lazily unmount everything below ``prefixes``, deepest first; return what was mounted."""
    found = mounts_under(prefixes)
    for point in reversed(found):
        try:
            umount(point)
        except OSError:
            pass
    return found


def mount(source: str, target: str, fstype: str, flags: int = 0, data: str | None = None) -> None:
    ret = _libc.mount(
        os.fsencode(source),
        os.fsencode(target),
        os.fsencode(fstype),
        flags,
        os.fsencode(data) if data else None,
    )
    if ret != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"mount {source} on {target}: {os.strerror(err)}")


def mountinfo_entries(text: str) -> list[dict]:
    """Parse mountinfo text: point, root, options, optional tags, fstype, source, super options."""
    out = []
    for line in text.splitlines():
        fields = line.split()
        if "-" not in fields:
            continue
        sep = fields.index("-")
        out.append(
            {
                "id": int(fields[0]),
                "parent": int(fields[1]),
                "root": _unescape(fields[3]),
                "point": _unescape(fields[4]),
                "options": fields[5].split(","),
                "tags": fields[6:sep],
                "fstype": fields[sep + 1],
                "source": fields[sep + 2],
                "super": fields[sep + 3].split(",") if len(fields) > sep + 3 else [],
            }
        )
    return out

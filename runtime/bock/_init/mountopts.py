"""mount(2) options of config.json ``mounts[].options``, parsed the way runc parses them."""

from __future__ import annotations

from bock import _syscalls as s

# option -> (clear?, flag)
FLAGS: dict[str, tuple[bool, int]] = {
    "acl": (False, 0),
    "async": (True, s.MS_SYNCHRONOUS),
    "atime": (True, s.MS_NOATIME),
    "bind": (False, s.MS_BIND),
    "defaults": (False, 0),
    "dev": (True, s.MS_NODEV),
    "diratime": (True, s.MS_NODIRATIME),
    "dirsync": (False, s.MS_DIRSYNC),
    "exec": (True, s.MS_NOEXEC),
    "iversion": (False, 0x800000),
    "lazytime": (False, s.MS_LAZYTIME),
    "loud": (True, s.MS_SILENT),
    "mand": (False, s.MS_MANDLOCK),
    "noacl": (True, 0),
    "noatime": (False, s.MS_NOATIME),
    "nodev": (False, s.MS_NODEV),
    "nodiratime": (False, s.MS_NODIRATIME),
    "noexec": (False, s.MS_NOEXEC),
    "noiversion": (True, 0x800000),
    "nolazytime": (True, s.MS_LAZYTIME),
    "nomand": (True, s.MS_MANDLOCK),
    "norelatime": (True, s.MS_RELATIME),
    "nostrictatime": (True, s.MS_STRICTATIME),
    "nosuid": (False, s.MS_NOSUID),
    "nosymfollow": (False, s.MS_NOSYMFOLLOW),
    "rbind": (False, s.MS_BIND | s.MS_REC),
    "relatime": (False, s.MS_RELATIME),
    "remount": (False, s.MS_REMOUNT),
    "ro": (False, s.MS_RDONLY),
    "rw": (True, s.MS_RDONLY),
    "silent": (False, s.MS_SILENT),
    "strictatime": (False, s.MS_STRICTATIME),
    "suid": (True, s.MS_NOSUID),
    "symfollow": (True, s.MS_NOSYMFOLLOW),
    "sync": (False, s.MS_SYNCHRONOUS),
}

PROPAGATION = {
    "private": s.MS_PRIVATE,
    "rprivate": s.MS_PRIVATE | s.MS_REC,
    "shared": s.MS_SHARED,
    "rshared": s.MS_SHARED | s.MS_REC,
    "slave": s.MS_SLAVE,
    "rslave": s.MS_SLAVE | s.MS_REC,
    "unbindable": s.MS_UNBINDABLE,
    "runbindable": s.MS_UNBINDABLE | s.MS_REC,
}

# Recursive mount attributes (runc's "rro", "rnosuid", ...), applied with mount_setattr(2)
# and AT_RECURSIVE: option -> (clear?, MOUNT_ATTR_* bit)
RECURSIVE: dict[str, tuple[bool, int]] = {
    "rro": (False, 0x1),
    "rrw": (True, 0x1),
    "rnosuid": (False, 0x2),
    "rsuid": (True, 0x2),
    "rnodev": (False, 0x4),
    "rdev": (True, 0x4),
    "rnoexec": (False, 0x8),
    "rexec": (True, 0x8),
    "rnodiratime": (False, 0x80),
    "rdiratime": (True, 0x80),
    "rnosymfollow": (False, 0x200000),
    "rsymfollow": (True, 0x200000),
}

# Options runc handles itself rather than passing to the kernel.
EXTENSIONS = frozenset({"tmpcopyup", "idmap", "ridmap"})


class MountOptions:
    __slots__ = ("attr_clr", "attr_set", "data", "extensions", "flags", "propagation")

    def __init__(self, flags: int, propagation: list[int], data: str, extensions: set[str]) -> None:
        self.attr_set = 0
        self.attr_clr = 0
        self.flags = flags
        self.propagation = propagation
        self.data = data
        self.extensions = extensions


def parse(options: list[str]) -> MountOptions:
    flags = 0
    propagation: list[int] = []
    data: list[str] = []
    extensions: set[str] = set()
    attr_set = attr_clr = 0
    for opt in options:
        known = FLAGS.get(opt)
        if known is not None:
            clear, flag = known
            flags = flags & ~flag if clear else flags | flag
        elif opt in PROPAGATION:
            propagation.append(PROPAGATION[opt])
        elif opt in EXTENSIONS:
            extensions.add(opt)
        elif opt in RECURSIVE:
            clear, bit = RECURSIVE[opt]
            if clear:
                attr_clr |= bit
                attr_set &= ~bit
            else:
                attr_set |= bit
                attr_clr &= ~bit
        else:
            data.append(opt)
    out = MountOptions(flags, propagation, ",".join(data), extensions)
    out.attr_set = attr_set
    out.attr_clr = attr_clr
    return out


def parse_propagation(value: str | None) -> int:
    if not value:
        return s.MS_SLAVE | s.MS_REC
    return PROPAGATION[value]


# statvfs f_flag bits -> mount flags (the locked flags a bind remount must keep)
ST_FLAGS = (
    (0x1, s.MS_RDONLY),
    (0x2, s.MS_NOSUID),
    (0x4, s.MS_NODEV),
    (0x8, s.MS_NOEXEC),
    (0x10, s.MS_SYNCHRONOUS),
    (0x40, s.MS_MANDLOCK),
    (0x400, s.MS_NOATIME),
    (0x800, s.MS_NODIRATIME),
    (0x1000, s.MS_RELATIME),
)


def locked_flags(path: str) -> int:
    import os

    f = os.statvfs(path).f_flag
    out = 0
    for st, ms in ST_FLAGS:
        if f & st:
            out |= ms
    return out

"""Which cgroup layout this host has: v1, v2 (unified) or hybrid.

Read once per process from ``/proc/self/mountinfo`` (and ``/proc/self/cgroup`` for
the caller's own cgroups, which relative ``cgroupsPath`` values are resolved against).

- **v1**: one ``cgroup`` mount per hierarchy (``cpu``, ``memory``, ``name=systemd`` ...);
- **v2**: a single ``cgroup2`` mount (normally ``/sys/fs/cgroup``) and no v1 hierarchy;
- **hybrid**: v1 hierarchies plus a ``cgroup2`` mount (``/sys/fs/cgroup/unified``) that
  holds few or no controllers. runc joins it too; so do we.
"""

from __future__ import annotations

V1 = "v1"
V2 = "v2"
HYBRID = "hybrid"

# runc's v1 subsystem order (libcontainer/cgroups/fs/fs.go): set and joined in this order.
V1_SUBSYSTEMS = (
    "cpuset",
    "devices",
    "memory",
    "cpu",
    "cpuacct",
    "pids",
    "blkio",
    "hugetlb",
    "net_cls",
    "net_prio",
    "perf_event",
    "freezer",
    "rdma",
    "name=systemd",
    "misc",
)
_KNOWN = frozenset(V1_SUBSYSTEMS)


def _unescape(field: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as \ooo.
    if "\\" not in field:
        return field
    out, i = [], 0
    while i < len(field):
        c = field[i]
        code = field[i + 1 : i + 4]
        if c == "\\" and len(code) == 3 and code.isdigit():
            out.append(chr(int(code, 8)))
            i += 4
        else:
            out.append(c)
            i += 1
    return "".join(out)


class Layout:
    """The cgroup mounts this process sees, and its own cgroup in each hierarchy."""

    __slots__ = ("mode", "mounts", "own", "unified", "unified_root")

    def __init__(
        self,
        mode: str,
        mounts: dict[str, tuple[str, str]],
        unified: str | None,
        own: dict[str, str],
        unified_root: str = "/",
    ) -> None:
        self.mode = mode
        #: v1 subsystem -> (mount point, root of the mount inside the hierarchy)
        self.mounts = mounts
        #: mount point of the cgroup2 hierarchy, if any
        self.unified = unified
        self.unified_root = unified_root
        #: subsystem (v1) or "" (v2) -> this process's cgroup path in that hierarchy
        self.own = own

    @classmethod
    def parse(cls, mountinfo: str, proc_cgroup: str) -> Layout:
        mounts: dict[str, tuple[str, str]] = {}
        unified = None
        unified_root = "/"
        for line in mountinfo.splitlines():
            head, sep, tail = line.partition(" - ")
            if not sep:
                continue
            fstype, _, rest = tail.partition(" ")
            if fstype not in ("cgroup", "cgroup2"):
                continue
            fields = head.split(" ")
            root, mountpoint = _unescape(fields[3]), _unescape(fields[4])
            if fstype == "cgroup2":
                if unified is None:
                    unified, unified_root = mountpoint, root
                continue
            superopts = rest.partition(" ")[2]
            for opt in superopts.split(","):
                if opt in _KNOWN and opt not in mounts:
                    mounts[opt] = (mountpoint, root)
        own: dict[str, str] = {}
        for line in proc_cgroup.splitlines():
            parts = line.split(":", 2)
            if len(parts) != 3:
                continue
            if parts[1] == "":
                own[""] = parts[2]
            else:
                for ctrl in parts[1].split(","):
                    own[ctrl] = parts[2]
        if mounts:
            mode = HYBRID if unified is not None else V1
        elif unified is not None:
            mode = V2
        else:
            mode = ""
        return cls(mode, mounts, unified, own, unified_root)

    def __repr__(self) -> str:
        return f"Layout(mode={self.mode!r}, mounts={self.mounts!r}, unified={self.unified!r})"


_cached: Layout | None = None


def _read(path: str) -> str:
    with open(path) as f:
        return f.read()


def current() -> Layout:
    """This process's layout (cached: mounts do not change under a runtime call)."""
    global _cached
    if _cached is None:
        _cached = Layout.parse(_read("/proc/self/mountinfo"), _read("/proc/self/cgroup"))
    return _cached

"""Mounting ``type: cgroup`` inside the container, on any host layout.

v2 (unified at the mount point): one cgroup2 mount. v1 and hybrid: a tmpfs, then one
directory per hierarchy. With a cgroup namespace each is a fresh cgroup mount (its
root is the container's cgroup); without one, the container's own cgroup directory is
bind-mounted, as runc does, so the container never sees the host's tree.
"""

from __future__ import annotations

import os

from bock import _syscalls as s
from bock._init.rootfs import _mount_at

_CONTROLLERS = frozenset(
    [
        "cpu",
        "cpuacct",
        "cpuset",
        "memory",
        "devices",
        "freezer",
        "blkio",
        "pids",
        "net_cls",
        "net_prio",
        "perf_event",
        "hugetlb",
        "rdma",
        "misc",
    ]
)


def host_hierarchies() -> list[tuple[str, str, str]]:
    """[(mount point, fstype, super options)] of the cgroup mounts under /sys/fs/cgroup."""
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            sep = fields.index("-")
            fstype, opts = fields[sep + 1], fields[sep + 3]
            if fstype in ("cgroup", "cgroup2") and fields[4].startswith("/sys/fs/cgroup"):
                out.append((fields[4], fstype, opts))
    return out


def _own_cgroups() -> dict[str, str]:
    """controller list (as in /proc/self/cgroup) -> our cgroup path."""
    out = {}
    with open("/proc/self/cgroup") as f:
        for line in f:
            _n, ctrls, path = line.rstrip("\n").split(":", 2)
            out[ctrls] = path
    return out


def mount_cgroups(sys: s.LinuxSyscalls, rootfs: str, dest: str, opts, cgroupns: bool) -> None:
    flags = opts.flags & ~(s.MS_BIND | s.MS_REC | s.MS_REMOUNT)
    hierarchies = host_hierarchies()
    if any(point == "/sys/fs/cgroup" and fstype == "cgroup2" for point, fstype, _ in hierarchies):
        if cgroupns:
            _mount_at(sys, rootfs, dest, "cgroup", "cgroup2", flags, None)
        else:
            _bind(sys, rootfs, dest, "/sys/fs/cgroup" + _own_cgroups().get("", "/"), flags)
        return
    _mount_at(sys, rootfs, dest, "tmpfs", "tmpfs", s.MS_NOSUID | s.MS_NODEV | s.MS_NOEXEC, "mode=755")
    own = _own_cgroups()
    for point, fstype, superopts in hierarchies:
        if point == "/sys/fs/cgroup":
            continue
        name = os.path.basename(point)
        # dest is resolved and holds the tmpfs just mounted, that nothing else can reach yet:
        # a plain mkdir is safe there (no symlink to resolve, as mkdir_all_in_root would)
        sub = f"{dest}/{name}"
        try:
            os.mkdir(sub, 0o755)
        except FileExistsError:  # one hierarchy mounted twice under the same name: made above
            pass
        if fstype == "cgroup2":
            path = own.get("", "/")
            data = None
        else:
            ctrls = [o for o in superopts.split(",") if o in _CONTROLLERS or o.startswith("name=")]
            data = ",".join(ctrls)
            key = ",".join(ctrls)
            path = own.get(key) or own.get(key.replace("name=", "")) or "/"
        if cgroupns:
            _mount_at(sys, rootfs, sub, "cgroup", fstype, flags, data)
        else:
            _bind(sys, rootfs, sub, point + path, flags)
    if flags & s.MS_RDONLY:
        _mount_at(
            sys,
            rootfs,
            dest,
            None,
            None,
            s.MS_BIND | s.MS_REMOUNT | s.MS_RDONLY | s.MS_NOSUID | s.MS_NODEV | s.MS_NOEXEC,
            None,
        )


def _bind(sys: s.LinuxSyscalls, rootfs: str, dest: str, source: str, flags: int) -> None:
    _mount_at(sys, rootfs, dest, source, "bind", s.MS_BIND | s.MS_REC, None)
    extra = flags & ~(s.MS_BIND | s.MS_REC)
    if extra:
        _mount_at(sys, rootfs, dest, None, None, s.MS_BIND | s.MS_REMOUNT | extra, None)

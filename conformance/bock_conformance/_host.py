"""Facts about the host the cases need to decide what to expect (cgroup layout, LSMs, kernel)."""

from __future__ import annotations

import functools
import os
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")


@functools.cache
def cgroup_mounts() -> dict[str, Path]:
    """Map each cgroup v1 controller (and ``unified`` for cgroup2) to its mount point."""
    found: dict[str, Path] = {}
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        left, _, right = line.partition(" - ")
        fstype, _src, opts = (right.split() + ["", "", ""])[:3]
        mnt = Path(left.split()[4])
        if fstype == "cgroup2":
            found.setdefault("unified", mnt)
        elif fstype == "cgroup":
            for opt in opts.split(","):
                if opt in KNOWN_V1 or opt.startswith("name="):
                    found.setdefault(opt, mnt)
    return found


KNOWN_V1 = [
    "cpu",
    "cpuacct",
    "cpuset",
    "memory",
    "devices",
    "freezer",
    "net_cls",
    "net_prio",
    "blkio",
    "perf_event",
    "hugetlb",
    "pids",
    "rdma",
    "misc",
]


def layout() -> str:
    """``v1``, ``hybrid`` (v1 controllers plus a cgroup2 mount) or ``v2``."""
    mounts = cgroup_mounts()
    has_v1 = any(k in KNOWN_V1 for k in mounts)
    if not has_v1:
        return "v2"
    return "hybrid" if "unified" in mounts else "v1"


def v1_dir(controller: str, cgroups_path: str) -> Path | None:
    """The host directory of *cgroups_path* for a v1 *controller*, or None when not mounted."""
    mnt = cgroup_mounts().get(controller)
    if mnt is None or controller == "unified":
        return None
    return mnt / cgroups_path.lstrip("/")


def v2_dir(cgroups_path: str) -> Path | None:
    mnt = cgroup_mounts().get("unified")
    return None if mnt is None else mnt / cgroups_path.lstrip("/")


def v2_controllers() -> list[str]:
    mnt = cgroup_mounts().get("unified")
    if mnt is None:
        return []
    return (mnt / "cgroup.controllers").read_text().split()


def lsm_enabled(name: str) -> bool:
    """Whether the kernel runs the LSM *name* (apparmor, selinux)."""
    lsm = Path("/sys/kernel/security/lsm")
    if lsm.exists():
        return name in lsm.read_text().split(",")
    if name == "apparmor":
        return (
            Path("/sys/module/apparmor/parameters/enabled").exists()
            and Path("/sys/module/apparmor/parameters/enabled").read_text().strip() == "Y"
        )
    if name == "selinux":
        return Path("/sys/fs/selinux/enforce").exists()
    return False


def kernel_version() -> tuple[int, int]:
    release = os.uname().release
    major, minor = release.split(".")[:2]
    return int(major), int("".join(c for c in minor if c.isdigit()) or 0)


def ns_inode(pid: int | str, kind: str) -> str:
    """The ``kind:[inode]`` link of a namespace of *pid* (``self`` allowed)."""
    return os.readlink(f"/proc/{pid}/ns/{kind}")


def root_block_device() -> str:
    """``major:minor`` of the block device holding /, for blkio/io throttling rules."""
    st = os.stat("/")
    dev = os.major(st.st_dev), os.minor(st.st_dev)
    # a partition or a virtual fs: fall back to the first real disk in /sys/block
    for blk in sorted(Path("/sys/block").iterdir()):
        if blk.name.startswith(("loop", "ram", "zram")):
            continue
        return (blk / "dev").read_text().strip()
    return f"{dev[0]}:{dev[1]}"


def cgroup_dir(controller: str, cgroups_path: str) -> Path | None:
    """Where *controller*'s files for *cgroups_path* live on this host (v1 hierarchy or the v2 one)."""
    if controller in cgroup_mounts() and controller != "unified":
        return v1_dir(controller, cgroups_path)
    if layout() == "v2" or controller in v2_controllers():
        return v2_dir(cgroups_path)
    return None


def existing_cgroup_dirs(cgroups_path: str) -> list[Path]:
    """Every hierarchy's directory for *cgroups_path* that exists right now."""
    found = []
    for ctrl in cgroup_mounts():
        d = v2_dir(cgroups_path) if ctrl == "unified" else v1_dir(ctrl, cgroups_path)
        if d is not None and d.exists():
            found.append(d)
    return found

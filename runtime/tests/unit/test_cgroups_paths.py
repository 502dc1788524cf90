"""Layout detection and runc's cgroupsPath rules, over mountinfo/proc-cgroup texts."""

from __future__ import annotations

import os

import pytest
from bock._cgroups import CgroupConfigError, CgroupError, CgroupManager, SystemdNotRunning
from bock._cgroups.layout import HYBRID, V1, V2, Layout
from bock._cgroups.paths import clean_path, inner_path, unified_path, v1_path

HYBRID_MOUNTINFO = """\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
"""
HYBRID_PROC = """\
9:name=systemd:/
5:devices:/
4:memory:/process_api/abc
2:cpuacct:/
1:cpu:/
0::/
"""
V1_COMOUNT = """\
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
"""
V2_MOUNTINFO = "30 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n"


def test_hybrid_layout_is_detected_with_each_hierarchy():
    lay = Layout.parse(HYBRID_MOUNTINFO, HYBRID_PROC)
    assert lay.mode == HYBRID
    assert lay.mounts["cpu"] == ("/sys/fs/cgroup/cpu", "/")
    assert lay.mounts["name=systemd"] == ("/sys/fs/cgroup/systemd", "/")
    assert "xattr" not in lay.mounts
    assert lay.unified == "/sys/fs/cgroup/unified"
    assert lay.own["memory"] == "/process_api/abc"
    assert lay.own[""] == "/"


def test_v1_and_v2_layouts():
    v1 = Layout.parse(V1_COMOUNT, "3:cpu,cpuacct:/x\n")
    assert v1.mode == V1
    assert v1.mounts["cpu"] == v1.mounts["cpuacct"] == ("/sys/fs/cgroup/cpu,cpuacct", "/")
    assert v1.own["cpuacct"] == "/x"
    v2 = Layout.parse(V2_MOUNTINFO, "0::/user.slice/session-1.scope\n")
    assert v2.mode == V2
    assert v2.mounts == {}
    assert Layout.parse("", "").mode == ""


def test_mountinfo_escapes_are_decoded():
    lay = Layout.parse("1 0 0:1 / /mnt/with\\040space rw - cgroup2 cgroup2 rw\n", "0::/\n")
    assert lay.unified == "/mnt/with space"


def test_this_hosts_layout_is_what_the_kernel_says():
    from bock._cgroups import layout

    lay = layout.current()
    assert lay is layout.current()  # cached
    with open("/proc/self/mountinfo") as f:
        text = f.read()
    assert (" - cgroup2 " in text) == (lay.unified is not None)
    assert (" - cgroup " in text) == bool(lay.mounts)


@pytest.mark.parametrize(
    ("given", "cleaned"),
    [
        ("", ""),
        ("/a/b/../c", "/a/c"),
        ("//a//b/", "/a/b"),
        ("/../../etc", "/etc"),
        ("a/../../../b", "b"),
        ("../x", "x"),
        ("lab/id", "lab/id"),
    ],
)
def test_clean_path_like_runc(given, cleaned):
    assert clean_path(given) == cleaned


def test_inner_path_defaults_to_the_id_relative():
    assert inner_path("abc", None) == "abc"
    assert inner_path("abc", "") == "abc"
    assert inner_path("abc", "/lab/abc") == "/lab/abc"
    assert inner_path("abc", "/../lab/../x") == "/x"


def test_absolute_and_relative_paths_per_hierarchy():
    lay = Layout.parse(HYBRID_MOUNTINFO, HYBRID_PROC)
    assert v1_path(lay, "memory", "/lab/c1") == "/sys/fs/cgroup/memory/lab/c1"
    # relative: from the caller's own cgroup in that hierarchy (runc's GetOwnCgroupPath)
    assert v1_path(lay, "memory", "c1") == "/sys/fs/cgroup/memory/process_api/abc/c1"
    assert v1_path(lay, "cpu", "c1") == "/sys/fs/cgroup/cpu/c1"
    assert v1_path(lay, "pids", "c1") is None  # not mounted
    assert unified_path(lay, "/lab/c1") == "/sys/fs/cgroup/unified/lab/c1"


def test_v2_relative_path_starts_from_the_parent_of_our_own_cgroup():
    lay = Layout.parse(V2_MOUNTINFO, "0::/user.slice/session-1.scope\n")
    assert unified_path(lay, "c1") == "/sys/fs/cgroup/user.slice/c1"
    assert unified_path(lay, "/machine/c1") == "/sys/fs/cgroup/machine/c1"


def test_nested_mount_root_is_subtracted():
    # Inside a container whose v1 memory hierarchy is mounted at its own cgroup.
    lay = Layout.parse(
        "1 0 0:1 /docker/x /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n"
        "2 0 0:2 / /sys/fs/cgroup/devices rw - cgroup cgroup rw,devices\n",
        "4:memory:/docker/x\n5:devices:/\n",
    )
    assert v1_path(lay, "memory", "c1") == "/sys/fs/cgroup/memory/c1"


def test_manager_paths_for_every_mounted_hierarchy_and_the_unified_one():
    lay = Layout.parse(HYBRID_MOUNTINFO, HYBRID_PROC)
    m = CgroupManager.for_container("c1", "/lab/c1", layout_=lay)
    assert m.mode == HYBRID
    assert set(m.paths) == {"cpu", "cpuacct", "memory", "devices", "name=systemd"}
    assert m.unified == "/sys/fs/cgroup/unified/lab/c1"
    again = CgroupManager.from_state(m.to_state())
    assert (again.mode, again.paths, again.unified) == (m.mode, m.paths, m.unified)


def test_missing_devices_hierarchy_is_fatal():
    lay = Layout.parse("1 0 0:1 / /cg/memory rw - cgroup cgroup rw,memory\n", "4:memory:/\n")
    with pytest.raises(CgroupError, match="mountpoint for devices not found"):
        CgroupManager.for_container("c1", "/x", layout_=lay)


def test_systemd_path_must_have_three_parts():
    with pytest.raises(CgroupConfigError, match='expected cgroupsPath to be of format "slice:prefix:name"'):
        CgroupManager.for_container("c1", "/not/systemd", systemd=True)


@pytest.mark.skipif(os.path.isdir("/run/systemd/system"), reason="systemd runs here")
def test_systemd_driver_without_systemd_says_so():
    with pytest.raises(SystemdNotRunning, match="systemd not running on this host"):
        CgroupManager.for_container("c1", "system.slice:bock:c1", systemd=True)
    with pytest.raises(SystemdNotRunning):
        CgroupManager.for_container("c1", None, systemd=True)

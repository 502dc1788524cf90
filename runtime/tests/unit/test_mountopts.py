"""config.json mount options -> mount(2) flags, propagation, data (runc's parseMountOptions)."""

from __future__ import annotations

import pytest
from bock import _syscalls as s
from bock._init import mountopts


def test_empty():
    o = mountopts.parse([])
    assert (o.flags, o.propagation, o.data, o.extensions) == (0, [], "", set())


@pytest.mark.parametrize(
    ("opt", "flag"),
    [
        ("ro", s.MS_RDONLY),
        ("nosuid", s.MS_NOSUID),
        ("nodev", s.MS_NODEV),
        ("noexec", s.MS_NOEXEC),
        ("sync", s.MS_SYNCHRONOUS),
        ("dirsync", s.MS_DIRSYNC),
        ("noatime", s.MS_NOATIME),
        ("nodiratime", s.MS_NODIRATIME),
        ("relatime", s.MS_RELATIME),
        ("strictatime", s.MS_STRICTATIME),
        ("bind", s.MS_BIND),
        ("rbind", s.MS_BIND | s.MS_REC),
        ("remount", s.MS_REMOUNT),
        ("mand", s.MS_MANDLOCK),
        ("silent", s.MS_SILENT),
        ("lazytime", s.MS_LAZYTIME),
        ("nosymfollow", s.MS_NOSYMFOLLOW),
    ],
)
def test_setting_flags(opt, flag):
    assert mountopts.parse([opt]).flags == flag


@pytest.mark.parametrize(
    ("on", "off"),
    [
        ("ro", "rw"),
        ("nosuid", "suid"),
        ("nodev", "dev"),
        ("noexec", "exec"),
        ("noatime", "atime"),
        ("sync", "async"),
        ("relatime", "norelatime"),
        ("strictatime", "nostrictatime"),
        ("lazytime", "nolazytime"),
        ("mand", "nomand"),
        ("nodiratime", "diratime"),
        ("silent", "loud"),
        ("nosymfollow", "symfollow"),
    ],
)
def test_clearing_flags_in_order(on, off):
    assert mountopts.parse([on, off]).flags == 0
    assert mountopts.parse([off, on]).flags != 0


def test_combination_and_data():
    o = mountopts.parse(["nosuid", "strictatime", "mode=755", "size=65536k", "ro"])
    assert o.flags == s.MS_NOSUID | s.MS_STRICTATIME | s.MS_RDONLY
    assert o.data == "mode=755,size=65536k"


def test_unknown_options_become_data_in_order():
    o = mountopts.parse(["newinstance", "ptmxmode=0666", "mode=0620", "gid=5", "nosuid", "noexec"])
    assert o.data == "newinstance,ptmxmode=0666,mode=0620,gid=5"
    assert o.flags == s.MS_NOSUID | s.MS_NOEXEC


@pytest.mark.parametrize(
    ("opt", "flag"),
    [
        ("private", s.MS_PRIVATE),
        ("rprivate", s.MS_PRIVATE | s.MS_REC),
        ("shared", s.MS_SHARED),
        ("rshared", s.MS_SHARED | s.MS_REC),
        ("slave", s.MS_SLAVE),
        ("rslave", s.MS_SLAVE | s.MS_REC),
        ("unbindable", s.MS_UNBINDABLE),
        ("runbindable", s.MS_UNBINDABLE | s.MS_REC),
    ],
)
def test_propagation_is_separate_from_flags(opt, flag):
    o = mountopts.parse(["rbind", opt])
    assert o.propagation == [flag]
    assert o.flags == s.MS_BIND | s.MS_REC


def test_several_propagation_options_keep_their_order():
    o = mountopts.parse(["shared", "rslave"])
    assert o.propagation == [s.MS_SHARED, s.MS_SLAVE | s.MS_REC]


def test_extensions_are_not_data():
    o = mountopts.parse(["tmpcopyup", "idmap", "mode=1777"])
    assert o.extensions == {"tmpcopyup", "idmap"}
    assert o.data == "mode=1777"


def test_defaults_and_acl_are_no_ops():
    assert mountopts.parse(["defaults", "acl"]).flags == 0
    assert mountopts.parse(["defaults"]).data == ""


def test_root_propagation_default_is_rslave():
    assert mountopts.parse_propagation(None) == s.MS_SLAVE | s.MS_REC
    assert mountopts.parse_propagation("") == s.MS_SLAVE | s.MS_REC
    assert mountopts.parse_propagation("rshared") == s.MS_SHARED | s.MS_REC
    assert mountopts.parse_propagation("private") == s.MS_PRIVATE


def test_locked_flags_match_mountinfo():
    names = {"ro": s.MS_RDONLY, "nosuid": s.MS_NOSUID, "nodev": s.MS_NODEV, "noexec": s.MS_NOEXEC}
    checked = 0
    with open("/proc/self/mountinfo") as f:
        lines = [line.split() for line in f]
    points = [fields[4] for fields in lines]
    for fields in lines:
        point, opts = fields[4], fields[5].split(",")
        if "\\" in point or points.count(point) > 1 or point.count("/") > 3:
            continue  # escaped names and stacked mounts: statvfs sees only the top one
        try:
            locked = mountopts.locked_flags(point)
        except OSError:
            continue
        for name, flag in names.items():
            assert bool(locked & flag) == (name in opts), (point, name)
        checked += 1
    assert checked

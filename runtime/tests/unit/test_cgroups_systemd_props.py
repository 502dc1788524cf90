"""The systemd driver's pure rules: cgroupsPath, unit names, slice paths, runc 1.1's properties."""

from __future__ import annotations

import pytest
from bock._cgroups import CgroupConfigError
from bock._cgroups.systemd_props import (
    INFINITY,
    base_properties,
    cpu_quota_properties,
    device_group,
    device_properties,
    expand_slice,
    parse_cgroups_path,
    range_to_bits,
    unit_cgroup,
    unit_name,
    v1_properties,
    v2_properties,
)
from bock._spec.resources import LinuxResources

PROC_DEVICES = """Character devices:
  1 mem
  5 /dev/tty
136 pts
254 gpiochip

Block devices:
  8 sd
254 virtblk
"""


@pytest.mark.parametrize(
    ("slice_", "path"),
    [
        ("test.slice", "/test.slice"),
        ("test-a.slice", "/test.slice/test-a.slice"),
        ("test-a-b.slice", "/test.slice/test-a.slice/test-a-b.slice"),
        ("-.slice", "/"),
        ("system.slice", "/system.slice"),
    ],
)
def test_expand_slice(slice_, path):
    assert expand_slice(slice_) == path


@pytest.mark.parametrize(
    "slice_", ["test", ".slic", "test.slice/foo.slice", "-test.slice", "test--a.slice", "test-.slice", ""]
)
def test_expand_slice_refuses_bad_names(slice_):
    with pytest.raises(CgroupConfigError, match="invalid slice name"):
        expand_slice(slice_)


def test_cgroups_path_forms():
    assert parse_cgroups_path("c1", None) == ("", "runc", "c1")
    assert parse_cgroups_path("c1", "") == ("", "runc", "c1")
    assert parse_cgroups_path("c1", "machine.slice:libpod:abc") == ("machine.slice", "libpod", "abc")
    assert parse_cgroups_path("c1", "::x") == ("", "", "x")
    for bad in ("/a/b", "a:b", "a:b:c:d"):
        with pytest.raises(
            CgroupConfigError, match='expected cgroupsPath to be of format "slice:prefix:name"'
        ):
            parse_cgroups_path("c1", bad)


def test_unit_names_and_cgroups():
    assert unit_name("docker", "abc") == "docker-abc.scope"
    assert unit_name("", "abc") == "-abc.scope"  # runc does not special-case an empty prefix
    assert unit_name("ignored", "my-x.slice") == "my-x.slice"
    assert unit_cgroup("", "runc-c1.scope") == "/system.slice/runc-c1.scope"
    assert unit_cgroup("a-b.slice", "p-c1.scope") == "/a.slice/a-b.slice/p-c1.scope"
    assert unit_cgroup("-.slice", "p-c1.scope") == "/p-c1.scope"


def test_base_properties_of_a_scope_and_of_a_slice():
    scope = dict(base_properties("c1", "", "runc-c1.scope", 42))
    assert scope["Slice"] == ("s", "system.slice")
    assert scope["Delegate"] == ("b", True)
    assert scope["PIDs"] == ("au", [42])
    assert scope["Description"] == ("s", "libcontainer container c1")
    assert scope["DefaultDependencies"] == ("b", False)
    for acct in ("MemoryAccounting", "CPUAccounting", "BlockIOAccounting", "TasksAccounting"):
        assert scope[acct] == ("b", True)
    sl = dict(base_properties("x", "a.slice", "a-x.slice", -1))
    assert sl["Wants"] == ("as", ["a.slice"])
    assert "Slice" not in sl and "Delegate" not in sl and "PIDs" not in sl


def test_cpu_quota_is_rounded_up_to_whole_percent():
    props = dict(cpu_quota_properties(33333, 100000, 252))
    assert props == {"CPUQuotaPeriodUSec": ("t", 100000), "CPUQuotaPerSecUSec": ("t", 340000)}
    assert dict(cpu_quota_properties(50000, None, 252)) == {"CPUQuotaPerSecUSec": ("t", 500000)}
    assert dict(cpu_quota_properties(None, 50000, 252)) == {
        "CPUQuotaPeriodUSec": ("t", 50000),
        "CPUQuotaPerSecUSec": ("t", INFINITY),
    }
    assert dict(cpu_quota_properties(-1, 100000, 241)) == {"CPUQuotaPerSecUSec": ("t", INFINITY)}
    assert cpu_quota_properties(None, None, 252) == []


def test_range_to_bits():
    assert range_to_bits("0") == b"\x01"
    assert range_to_bits("0-2,7") == b"\x87"
    assert range_to_bits("8") == b"\x00\x01"
    assert range_to_bits(" 1 , 3-4 ") == b"\x1a"
    for bad in ("", "a", "3-1", "-1"):
        with pytest.raises(CgroupConfigError, match="invalid cpuset range"):
            range_to_bits(bad)


def test_device_group_from_proc_devices():
    assert device_group("c", 136, PROC_DEVICES) == "char-pts"
    assert device_group("c", 5, PROC_DEVICES) == "char-/dev/tty"
    assert device_group("b", 8, PROC_DEVICES) == "block-sd"
    assert device_group("b", 254, PROC_DEVICES) == "block-virtblk"
    assert device_group("c", 99, PROC_DEVICES) == ""


def _r(**doc) -> LinuxResources:
    return LinuxResources.from_json(doc)


def test_device_properties_default_deny_list():
    props = device_properties(
        _r(
            devices=[
                {"allow": False, "access": "rwm"},
                {"allow": True, "type": "b", "major": 8, "access": "r"},
            ]
        ),
        proc_devices=PROC_DEVICES,
        exists=lambda p: p != "/dev/char/10:200" and p != "/sys/dev/char/10:200",
    )
    assert props[0] == ("DevicePolicy", ("s", "strict"))
    assert props[1] == ("DeviceAllow", ("a(ss)", []))  # emptied first
    name, (sig, allow) = props[2]
    assert (name, sig) == ("DeviceAllow", "a(ss)")
    assert ("block-sd", "r") in allow
    assert ("char-pts", "rwm") in allow
    assert ("/dev/char/1:3", "rwm") in allow
    assert ("char-*", "m") in allow and ("block-*", "m") in allow
    assert not any(p == "/dev/char/10:200" for p, _ in allow)  # not on this host: the files do it


def test_device_properties_allow_all_and_deny_lists():
    allow_all = device_properties(_r(devices=[{"allow": True, "access": "rwm"}]))
    assert allow_all == [("DevicePolicy", ("s", "auto")), ("DeviceAllow", ("a(ss)", []))]
    # a deny list with exceptions: systemd cannot say it; strict and empty, the files do the rest
    deny = device_properties(
        _r(
            devices=[
                {"allow": True, "access": "rwm"},
                {"allow": False, "type": "c", "major": 10, "minor": 229, "access": "rwm"},
            ]
        )
    )
    assert deny == [("DevicePolicy", ("s", "strict")), ("DeviceAllow", ("a(ss)", []))]


def test_v1_properties():
    r = _r(
        memory={"limit": 1 << 26, "reservation": 1 << 25},
        cpu={"shares": 512, "quota": 20000, "period": 100000, "cpus": "0-1", "mems": "0"},
        pids={"limit": 10},
        blockIO={"weight": 300},
    )
    props = dict(v1_properties(r, version=252, devices=False))
    assert props == {
        "MemoryLimit": ("t", 1 << 26),
        "CPUShares": ("t", 512),
        "CPUQuotaPeriodUSec": ("t", 100000),
        "CPUQuotaPerSecUSec": ("t", 200000),
        "BlockIOWeight": ("t", 300),
        "TasksMax": ("t", 10),
        "AllowedCPUs": ("ay", b"\x03"),
        "AllowedMemoryNodes": ("ay", b"\x01"),
    }
    unlimited = dict(v1_properties(_r(memory={"limit": -1}, pids={"limit": -1}), version=252, devices=False))
    assert unlimited == {"MemoryLimit": ("t", INFINITY), "TasksMax": ("t", INFINITY)}
    assert dict(v1_properties(_r(pids={"limit": 0}), version=252, devices=False)) == {}
    old = dict(v1_properties(_r(cpu={"cpus": "0", "period": 50000}), version=240, devices=False))
    assert old == {"CPUQuotaPerSecUSec": ("t", INFINITY)}  # no period or cpuset properties before 242/244


def test_v2_properties_and_unified_keys():
    r = _r(
        memory={"limit": 1 << 26, "reservation": 1 << 25, "swap": 1 << 27},
        cpu={"shares": 1024},
        pids={"limit": 5},
        unified={"memory.high": "max", "cpu.max": "50000 100000", "pids.max": "7", "io.weight": "default 50"},
    )
    props = v2_properties(r, version=252, devices=False)
    d = dict(props)
    assert d["MemoryMax"] == ("t", 1 << 26)
    assert d["MemoryLow"] == ("t", 1 << 25)
    assert d["MemorySwapMax"] == ("t", (1 << 27) - (1 << 26))
    assert d["CPUWeight"] == ("t", 39)  # runc 1.1's shares -> weight for 1024
    assert d["MemoryHigh"] == ("t", INFINITY)
    assert d["CPUQuotaPerSecUSec"] == ("t", 500000)
    assert d["TasksMax"] == ("t", 7)  # the unified key comes last and wins, as in runc
    assert ("TasksMax", ("t", 5)) in props
    assert "io.weight" not in str(props)  # left to the file
    with pytest.raises(CgroupConfigError, match="value conversion error"):
        v2_properties(_r(unified={"memory.max": "lots"}), version=252, devices=False)

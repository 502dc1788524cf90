"""The right file gets the right value: CgroupManager over a fake cgroupfs in a tmpdir.

A real cgroupfs makes the control files on mkdir; the fake tree has them made in
advance (the manager only makes missing directories). v2 device programs need a
real cgroup2 directory: here that one call is replaced by a recorder (the real
program is exercised in tests/integration/test_cgroups_real.py).
"""

from __future__ import annotations

import os

import pytest
from bock._cgroups import CgroupConfigError, CgroupError, CgroupManager, LimitError, fsio, v2
from bock._cgroups.devices import Emulator, cgroup_string, parse_perms
from bock._cgroups.layout import Layout
from bock._spec.resources import LinuxResources

V1_FILES = {
    "cpuset": {"cpuset.cpus": "", "cpuset.mems": ""},
    "devices": {"devices.allow": "", "devices.deny": "", "devices.list": "a *:* rwm\n"},
    "memory": {
        "memory.limit_in_bytes": "9223372036854771712",
        "memory.memsw.limit_in_bytes": "9223372036854771712",
        "memory.soft_limit_in_bytes": "",
        "memory.swappiness": "60",
        "memory.oom_control": "",
        "memory.usage_in_bytes": "0",
        "memory.max_usage_in_bytes": "0",
    },
    "cpu": {
        "cpu.shares": "1024",
        "cpu.cfs_period_us": "100000",
        "cpu.cfs_quota_us": "-1",
        "cpu.cfs_burst_us": "0",
        "cpu.idle": "0",
        "cpu.rt_period_us": "1000000",
        "cpu.rt_runtime_us": "0",
    },
    "cpuacct": {},
    "pids": {"pids.max": "max"},
    "blkio": {
        "blkio.weight": "",
        "blkio.weight_device": "",
        "blkio.throttle.read_bps_device": "",
        "blkio.throttle.write_bps_device": "",
        "blkio.throttle.read_iops_device": "",
        "blkio.throttle.write_iops_device": "",
    },
    "freezer": {"freezer.state": "THAWED"},
    "name=systemd": {},
}
V2_FILES = {
    "cpu.weight": "100",
    "cpu.max": "max 100000",
    "cpu.idle": "0",
    "memory.max": "max",
    "memory.swap.max": "max",
    "memory.low": "0",
    "memory.current": "0",
    "pids.max": "max",
    "io.max": "",
    "io.weight": "default 100",
    "cpuset.cpus": "",
    "cpuset.mems": "",
    "hugetlb.2MB.max": "max",
    "cgroup.freeze": "0",
    "cgroup.events": "populated 0\nfrozen 0\n",
    "cgroup.max.descendants": "max",
}


def _dirname(ctrl: str) -> str:
    return ctrl.removeprefix("name=")


def _fill(path: str, files: dict[str, str]) -> None:
    os.makedirs(path, exist_ok=True)
    for name, content in {**files, "cgroup.procs": ""}.items():
        with open(os.path.join(path, name), "w") as f:
            f.write(content)


def _read(path: str, name: str) -> str:
    with open(os.path.join(path, name)) as f:
        return f.read()


class FakeDevicesController:
    """Stands in for the kernel behind devices.allow/deny: keeps devices.list up to date."""

    def __init__(self, real_write):
        self.real_write = real_write
        self.writes: list[tuple[str, str]] = []

    def __call__(self, dirpath: str, name: str, data: str) -> None:
        self.real_write(dirpath, name, data)
        if name not in ("devices.allow", "devices.deny"):
            return
        self.writes.append((name, data))
        emu = Emulator.from_list(_read(dirpath, "devices.list"))
        kind, nums, perms = data.split(" ")
        major, minor = nums.split(":")
        emu.apply(
            (
                kind,
                -1 if major == "*" else int(major),
                -1 if minor == "*" else int(minor),
                parse_perms(perms),
                name == "devices.allow",
            )
        )
        if emu.default_allow:
            listing = "a *:* rwm\n"  # the kernel lists nothing else in allow-all mode
        else:
            listing = "".join(cgroup_string((k, a, b, p, True)) + "\n" for (k, a, b), p in emu.ordered())
        with open(os.path.join(dirpath, "devices.list"), "w") as f:
            f.write(listing)


@pytest.fixture
def v1_host(tmp_path, monkeypatch):
    """A hybrid host's tree; the container cgroup /lab/c1 pre-made with its files."""
    devices = FakeDevicesController(fsio.write)
    monkeypatch.setattr(fsio, "write", devices)
    lines, proc = [], []
    for i, ctrl in enumerate(V1_FILES):
        mnt = tmp_path / _dirname(ctrl)
        lines.append(f"{i + 10} 1 0:{i + 10} / {mnt} rw - cgroup cgroup rw,{ctrl}")
        proc.append(f"{i + 1}:{ctrl}:/")
        _fill(str(mnt), {"cpuset.cpus": "0-3", "cpuset.mems": "0"} if ctrl == "cpuset" else {})
        _fill(str(mnt / "lab"), {"cpuset.cpus": "0-3", "cpuset.mems": "0"} if ctrl == "cpuset" else {})
        _fill(str(mnt / "lab" / "c1"), V1_FILES[ctrl])
    unified = tmp_path / "unified"
    lines.append(f"99 1 0:99 / {unified} rw - cgroup2 cgroup2 rw")
    proc.append("0::/")
    _fill(str(unified), {"cgroup.controllers": "hugetlb", "cgroup.subtree_control": ""})
    _fill(str(unified / "lab"), {"cgroup.controllers": "", "cgroup.subtree_control": ""})
    _fill(str(unified / "lab" / "c1"), {"cgroup.controllers": "hugetlb", **V2_FILES})
    layout = Layout.parse("\n".join(lines) + "\n", "\n".join(proc) + "\n")
    return tmp_path, layout, devices


@pytest.fixture
def v2_host(tmp_path, monkeypatch):
    root = tmp_path / "cg"
    _fill(
        str(root), {"cgroup.controllers": "cpu io memory pids cpuset hugetlb", "cgroup.subtree_control": ""}
    )
    _fill(
        str(root / "lab"),
        {"cgroup.controllers": "cpu io memory pids cpuset hugetlb", "cgroup.subtree_control": ""},
    )
    _fill(str(root / "lab" / "c1"), {"cgroup.controllers": "cpu io memory pids cpuset hugetlb", **V2_FILES})
    layout = Layout.parse(f"1 0 0:1 / {root} rw - cgroup2 cgroup2 rw\n", "0::/\n")
    programs = []
    monkeypatch.setattr(v2, "set_devices", lambda path, r, paths=(): programs.append((path, list(r.devices))))
    return root, layout, programs


TYPICAL = {
    "devices": [
        {"allow": False, "access": "rwm"},
        {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
    ],
    "memory": {"limit": 268435456, "reservation": 134217728, "swap": 536870912, "swappiness": 10},
    "cpu": {"shares": 512, "quota": 50000, "period": 100000, "cpus": "1", "mems": "0", "idle": 0},
    "pids": {"limit": 100},
    "blockIO": {"weight": 500, "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1048576}]},
}


def test_v1_files_get_the_spec_values(v1_host):
    tmp, layout, devices = v1_host
    m = CgroupManager.for_container("c1", "/lab/c1", layout_=layout)
    m.create(LinuxResources.from_json(TYPICAL))
    c = str(tmp)
    assert _read(f"{c}/memory/lab/c1", "memory.limit_in_bytes") == "268435456"
    assert _read(f"{c}/memory/lab/c1", "memory.memsw.limit_in_bytes") == "536870912"
    assert _read(f"{c}/memory/lab/c1", "memory.soft_limit_in_bytes") == "134217728"
    assert _read(f"{c}/memory/lab/c1", "memory.swappiness") == "10"
    assert _read(f"{c}/memory/lab/c1", "memory.oom_control") == ""
    assert _read(f"{c}/cpu/lab/c1", "cpu.shares") == "512"
    assert _read(f"{c}/cpu/lab/c1", "cpu.cfs_quota_us") == "50000"
    assert _read(f"{c}/cpu/lab/c1", "cpu.cfs_period_us") == "100000"
    assert _read(f"{c}/cpu/lab/c1", "cpu.idle") == "0"
    assert _read(f"{c}/cpuset/lab/c1", "cpuset.cpus") == "1"
    assert _read(f"{c}/cpuset/lab/c1", "cpuset.mems") == "0"
    assert _read(f"{c}/pids/lab/c1", "pids.max") == "100"
    assert _read(f"{c}/blkio/lab/c1", "blkio.weight") == "500"
    assert _read(f"{c}/blkio/lab/c1", "blkio.throttle.read_bps_device") == "8:0 1048576"
    writes = devices.writes
    assert writes[0] == ("devices.deny", "a *:* rwm")
    assert ("devices.allow", "c 1:3 rwm") in writes
    assert ("devices.allow", "c 136:* rwm") in writes
    assert ("devices.allow", "c *:* m") in writes
    assert all(name == "devices.allow" for name, _ in writes[1:])
    listing = _read(f"{c}/devices/lab/c1", "devices.list")
    assert "c 1:3 rwm" in listing and "a *:* rwm" not in listing


def test_v1_join_writes_the_pid_in_every_hierarchy_and_the_unified_one(v1_host):
    tmp, layout, _devices = v1_host
    m = CgroupManager.for_container("c1", "/lab/c1", layout_=layout)
    m.apply(4242)
    for ctrl in V1_FILES:
        assert _read(f"{tmp}/{_dirname(ctrl)}/lab/c1", "cgroup.procs") == "4242"
    assert _read(f"{tmp}/unified/lab/c1", "cgroup.procs") == "4242"


def test_v1_cpuset_is_inherited_from_the_parent_when_the_spec_has_none(v1_host):
    tmp, layout, _devices = v1_host
    m = CgroupManager.for_container("c1", "/lab/c1", layout_=layout)
    m.create(LinuxResources.from_json({"pids": {"limit": 5}}))
    assert _read(f"{tmp}/cpuset/lab/c1", "cpuset.cpus") == "0-3"
    assert _read(f"{tmp}/cpuset/lab/c1", "cpuset.mems") == "0"


def test_v1_negative_limits_mean_unlimited(v1_host):
    tmp, layout, _devices = v1_host
    m = CgroupManager.for_container("c1", "/lab/c1", layout_=layout)
    m.set(LinuxResources.from_json({"memory": {"limit": -1}, "pids": {"limit": -1}}))
    assert _read(f"{tmp}/memory/lab/c1", "memory.limit_in_bytes") == "-1"
    assert _read(f"{tmp}/memory/lab/c1", "memory.memsw.limit_in_bytes") == "-1"
    assert _read(f"{tmp}/pids/lab/c1", "pids.max") == "max"


def test_v1_oom_killer_and_realtime(v1_host):
    tmp, layout, _devices = v1_host
    m = CgroupManager.for_container("c1", "/lab/c1", layout_=layout)
    m.set(
        LinuxResources.from_json(
            {"memory": {"disableOOMKiller": True}, "cpu": {"realtimeRuntime": 9500, "realtimePeriod": 100000}}
        )
    )
    assert _read(f"{tmp}/memory/lab/c1", "memory.oom_control") == "1"
    assert _read(f"{tmp}/cpu/lab/c1", "cpu.rt_runtime_us") == "9500"
    assert _read(f"{tmp}/cpu/lab/c1", "cpu.rt_period_us") == "100000"


def test_v1_unmounted_controller_used_by_the_config_is_an_error(v1_host):
    _tmp, layout, _ = v1_host
    m = CgroupManager.for_container("c1", "/lab/c1", layout_=layout)
    with pytest.raises(
        CgroupError, match="cannot set net_cls limit: container could not join or create cgroup"
    ):
        m.set(LinuxResources.from_json({"network": {"classID": 1048577}}))
    with pytest.raises(CgroupError, match="cannot set net_prio limit"):
        m.set(LinuxResources.from_json({"network": {"priorities": [{"name": "eth0", "priority": 5}]}}))
    # ...and one it does not use is fine
    m.set(LinuxResources.from_json({"network": {}}))


def test_v1_bad_swappiness_is_refused(v1_host):
    _tmp, layout, _ = v1_host
    m = CgroupManager.for_container("c1", "/lab/c1", layout_=layout)
    with pytest.raises(LimitError, match=r"invalid memory swappiness value: 101 \(valid range is 0-100\)"):
        m.set(LinuxResources.from_json({"memory": {"swappiness": 101}}))


def test_hybrid_unified_keys_go_to_the_cgroup2_directory(v1_host):
    tmp, layout, _devices = v1_host
    m = CgroupManager.for_container("c1", "/lab/c1", layout_=layout)
    m.set(LinuxResources.from_json({"unified": {"cgroup.max.descendants": "7"}}))
    assert _read(f"{tmp}/unified/lab/c1", "cgroup.max.descendants") == "7"
    with pytest.raises(CgroupConfigError, match="must be a file name"):
        m.set(LinuxResources.from_json({"unified": {"../x": "1"}}))
    with pytest.raises(LimitError, match='controller "memory" not available'):
        m.set(LinuxResources.from_json({"unified": {"memory.high": "1000000"}}))


def test_hybrid_hugetlb_goes_to_cgroup2_when_v1_lacks_it(v1_host):
    tmp, layout, _devices = v1_host
    m = CgroupManager.for_container("c1", "/lab/c1", layout_=layout)
    m.set(LinuxResources.from_json({"hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}]}))
    assert _read(f"{tmp}/unified/lab/c1", "hugetlb.2MB.max") == "4194304"


def test_failed_create_removes_only_what_it_made(v1_host):
    tmp, layout, _devices = v1_host
    m = CgroupManager.for_container("c2", "/lab/new/c2", layout_=layout)
    # A fake tree has no control files in new directories: the first write fails.
    with pytest.raises(CgroupError):
        m.create(LinuxResources.from_json({"pids": {"limit": 5}}))
    for ctrl in V1_FILES:
        assert not os.path.exists(f"{tmp}/{_dirname(ctrl)}/lab/new")
        assert os.path.isdir(f"{tmp}/{_dirname(ctrl)}/lab")
    assert not os.path.exists(f"{tmp}/unified/lab/new")


def test_v2_files_get_converted_values(v2_host):
    root, layout, programs = v2_host
    m = CgroupManager.for_container("c1", "/lab/c1", layout_=layout)
    spec = {**TYPICAL, "memory": {k: v for k, v in TYPICAL["memory"].items() if k != "swappiness"}}
    m.create(LinuxResources.from_json(spec))
    c = f"{root}/lab/c1"
    assert _read(c, "memory.max") == "268435456"
    assert _read(c, "memory.swap.max") == str(536870912 - 268435456)
    assert _read(c, "memory.low") == "134217728"
    # runc 1.1: cpu.weight = 1 + ((shares - 2) * 9999) / 262142
    assert _read(c, "cpu.weight") == str(1 + ((512 - 2) * 9999) // 262142) == "20"
    assert _read(c, "cpu.max") == "50000 100000"
    assert _read(c, "cpuset.cpus") == "1"
    assert _read(c, "pids.max") == "100"
    assert _read(c, "io.weight") == str(1 + (500 - 10) * 9999 // 990)
    assert _read(c, "io.max") == "8:0 rbps=1048576"
    assert programs == [(c, LinuxResources.from_json(TYPICAL).devices)]
    # controllers enabled from the root down to the parent
    assert _read(str(root), "cgroup.subtree_control") == "+cpu +io +memory +pids +cpuset +hugetlb"


def test_v2_refuses_what_it_cannot_express(v2_host):
    _root, layout, _ = v2_host
    m = CgroupManager.for_container("c1", "/lab/c1", layout_=layout)
    with pytest.raises(LimitError, match="swappiness"):
        m.set(LinuxResources.from_json({"memory": {"swappiness": 10}}))
    with pytest.raises(LimitError, match="disableOOMKiller"):
        m.set(LinuxResources.from_json({"memory": {"disableOOMKiller": True}}))
    with pytest.raises(LimitError, match="realtime"):
        m.set(LinuxResources.from_json({"cpu": {"realtimeRuntime": 100}}))
    with pytest.raises(LimitError, match="net_cls"):
        m.set(LinuxResources.from_json({"network": {"classID": 1}}))
    with pytest.raises(LimitError, match="unable to set swap limit without memory limit"):
        m.set(LinuxResources.from_json({"memory": {"swap": 1000}}))


def test_v2_memory_limit_below_usage_is_refused(v2_host):
    root, layout, _ = v2_host
    with open(f"{root}/lab/c1/memory.current", "w") as f:
        f.write("50000000\n")
    m = CgroupManager.for_container("c1", "/lab/c1", layout_=layout)
    with pytest.raises(
        LimitError, match=r"unable to set memory limit to 1000000 \(current usage: 50000000\)"
    ):
        m.set(LinuxResources.from_json({"memory": {"limit": 1000000}}))
    assert _read(f"{root}/lab/c1", "memory.max") == "max"


def test_v2_missing_controller_is_named(v2_host):
    root, layout, _ = v2_host
    with open(f"{root}/lab/c1/cgroup.controllers", "w") as f:
        f.write("memory\n")
    m = CgroupManager.for_container("c1", "/lab/c1", layout_=layout)
    with pytest.raises(LimitError, match="the pids controller is not available"):
        m.set(LinuxResources.from_json({"pids": {"limit": 10}}))


def test_v2_freeze_thaw(v2_host):
    root, layout, _ = v2_host
    c = f"{root}/lab/c1"
    with open(f"{c}/cgroup.events", "w") as f:
        f.write("populated 1\nfrozen 1\n")
    m = CgroupManager.for_container("c1", "/lab/c1", layout_=layout)
    m.freeze()
    assert _read(c, "cgroup.freeze") == "1"
    assert m.is_frozen()
    m.thaw()
    assert _read(c, "cgroup.freeze") == "0"
    assert not m.is_frozen()


def test_v2_pids_are_collected_recursively_and_destroy_removes_subcgroups(v2_host):
    root, layout, _ = v2_host
    c = f"{root}/lab/c1"
    with open(f"{c}/cgroup.procs", "w") as f:
        f.write("10\n11\n")
    m = CgroupManager.for_container("c1", "/lab/c1", layout_=layout)
    os.mkdir(f"{c}/sub")
    with open(f"{c}/sub/cgroup.procs", "w") as f:
        f.write("12\n")
    assert sorted(m.pids()) == [10, 11, 12]


@pytest.mark.parametrize(("shares", "weight"), [(0, 0), (2, 1), (1024, 39), (262144, 10000)])
def test_shares_to_weight_like_runc_1_1(shares, weight):
    assert v2.shares_to_weight(shares) == weight


def test_swap_conversion():
    assert v2.swap_to_v2(0, -1) == -1
    assert v2.swap_to_v2(-1, 100) == -1
    assert v2.swap_to_v2(300, 100) == 200
    with pytest.raises(LimitError, match="memory\\+swap limit should be >= memory limit"):
        v2.swap_to_v2(50, 100)


def _deny_mkdir_in(monkeypatch, forbidden: str) -> None:
    real_mkdir = os.mkdir

    def mkdir(path, mode=0o777):
        if str(path).startswith(forbidden):
            raise PermissionError(13, "Permission denied", str(path))
        real_mkdir(path, mode)

    monkeypatch.setattr(os, "mkdir", mkdir)


def test_rootless_without_a_path_skips_a_cgroup_it_may_not_make(v1_host, monkeypatch):
    tmp, layout, _ = v1_host
    for ctrl, files in V1_FILES.items():
        if ctrl != "memory":
            _fill(f"{tmp}/{_dirname(ctrl)}/c9", files)
    _fill(f"{tmp}/unified/c9", {"cgroup.controllers": "", **V2_FILES})
    _deny_mkdir_in(monkeypatch, f"{tmp}/memory")
    m = CgroupManager.for_container("c9", None, rootless=True, layout_=layout)
    assert m.tolerant
    m.create(LinuxResources.from_json({"pids": {"limit": 7}}))
    assert "memory" not in m.paths
    assert _read(f"{tmp}/pids/c9", "pids.max") == "7"
    with pytest.raises(
        CgroupError, match="cannot set memory limit: container could not join or create cgroup"
    ):
        m.set(LinuxResources.from_json({"memory": {"limit": 1 << 30}}))
    assert CgroupManager.from_state(m.to_state()).tolerant


def test_rootless_with_an_explicit_path_or_root_fails_on_the_same_error(v1_host, monkeypatch):
    tmp, layout, _ = v1_host
    _fill(f"{tmp}/cpuset/lab/new", {"cpuset.cpus": "0-3", "cpuset.mems": "0"})
    _fill(f"{tmp}/cpuset/lab/new/c9", V1_FILES["cpuset"])
    _deny_mkdir_in(monkeypatch, f"{tmp}/memory")
    for kw in ({"rootless": True}, {}):
        m = CgroupManager.for_container("c9", "/lab/new/c9", layout_=layout, **kw)
        assert not m.tolerant
        with pytest.raises(CgroupError, match="Permission denied"):
            m.create(LinuxResources.from_json({}))
        assert not os.path.exists(f"{tmp}/devices/lab/new")  # made by create: removed
        assert os.path.isdir(f"{tmp}/cpuset/lab/new/c9")  # there before: kept


def test_live_set_leaves_device_rules_alone_unless_asked(v1_host):
    tmp, layout, devices = v1_host
    m = CgroupManager.for_container("c1", "/lab/c1", layout_=layout)
    m.create(LinuxResources.from_json({"devices": [{"allow": False, "access": "rwm"}]}))
    created = list(devices.writes)
    extra = {"devices": [{"allow": True, "type": "c", "major": 10, "minor": 229, "access": "rw"}]}
    m.set(LinuxResources.from_json({**extra, "pids": {"limit": 9}}))  # like runc update: SkipDevices
    assert devices.writes == created
    assert _read(f"{tmp}/pids/lab/c1", "pids.max") == "9"
    m.set(LinuxResources.from_json(extra), devices=True)
    assert devices.writes[len(created) :] == [("devices.allow", "c 10:229 rw")]


def test_device_paths_are_kept_in_the_state(v1_host):
    _tmp, layout, devices = v1_host
    m = CgroupManager.for_container("c1", "/lab/c1", layout_=layout)
    m.create(LinuxResources.from_json({}), device_paths=["/dev/zero"])
    assert ("devices.allow", "c 1:5 rwm") not in devices.writes
    assert ("devices.allow", "c 1:3 rwm") in devices.writes
    assert CgroupManager.from_state(m.to_state()).device_paths == ["/dev/zero"]


def test_v1_check_before_update_refuses_a_limit_below_usage(v1_host):
    tmp, layout, _ = v1_host
    with open(f"{tmp}/memory/lab/c1/memory.usage_in_bytes", "w") as f:
        f.write("50000000\n")
    m = CgroupManager.for_container("c1", "/lab/c1", layout_=layout)
    with pytest.raises(LimitError, match="rejecting memory limit 1000000 <= usage 50000000"):
        m.set(LinuxResources.from_json({"memory": {"limit": 1000000, "checkBeforeUpdate": True}}))
    assert _read(f"{tmp}/memory/lab/c1", "memory.limit_in_bytes") == "9223372036854771712"
    m.set(LinuxResources.from_json({"memory": {"limit": 1000000}}))  # the kernel decides (EBUSY on real v1)
    assert _read(f"{tmp}/memory/lab/c1", "memory.limit_in_bytes") == "1000000"

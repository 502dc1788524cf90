"""The systemd driver's manager with a recording bus (the D-Bus client: test_cgroups_systemd_client.py;
the real thing: tests/integration/test_cgroups_systemd.py against systemd 252)."""

from __future__ import annotations

import os

import pytest
from bock._cgroups import CgroupConfigError, CgroupError, CgroupManager, systemd, systemd_bus, v1
from bock._cgroups.layout import Layout
from bock._cgroups.systemd import SystemdCgroupManager
from bock._cgroups.systemd_bus import SystemdError
from bock._spec.resources import LinuxResources

INIT = "9:name=systemd:/init.scope\n8:pids:/init.scope\n5:devices:/init.scope\n4:memory:/init.scope\n3:cpuset:/\n0::/init.scope\n"
MANAGED = ("memory", "devices", "pids", "systemd", "unified")  # what systemd makes for a scope here


class FakeBus:
    """Records what the manager asks; ``start`` makes the scope's dirs as systemd would."""

    def __init__(self, root: str, fail_start: str = "") -> None:
        self.root = root
        self.fail_start = fail_start
        self.calls: list[tuple] = []

    def version(self) -> int:
        return 252

    def close(self) -> None:
        self.calls.append(("close",))

    def start_transient_unit(self, unit: str, props: list) -> None:
        self.calls.append(("start", unit, props))
        if self.fail_start:
            raise SystemdError(self.fail_start, "org.freedesktop.DBus.Error.InvalidArgs")
        slice_dir = "a.slice/a-b.slice"
        for h in MANAGED:
            d = os.path.join(self.root, h, slice_dir, unit)
            os.makedirs(d)
            for f in ("cgroup.procs", "memory.limit_in_bytes", "pids.max"):
                open(os.path.join(d, f), "w").close()
            with open(os.path.join(d, "cgroup.procs"), "w") as f:
                f.write(str(dict(props)["PIDs"][1][0]))

    def stop_unit(self, unit: str) -> None:
        self.calls.append(("stop", unit))
        for h in MANAGED:
            d = os.path.join(self.root, h, "a.slice/a-b.slice", unit)
            if os.path.isdir(d):
                for f in os.listdir(d):
                    os.unlink(os.path.join(d, f))
                os.rmdir(d)

    def set_unit_properties(self, unit: str, props: list) -> None:
        self.calls.append(("set", unit, props))

    def did(self, what: str) -> list[tuple]:
        return [c for c in self.calls if c[0] == what]


@pytest.fixture
def fake(tmp_path, monkeypatch):
    root = str(tmp_path / "cg")
    lines = []
    for i, (h, opts) in enumerate(
        [
            ("memory", "memory"),
            ("devices", "devices"),
            ("pids", "pids"),
            ("cpuset", "cpuset"),
            ("systemd", "name=systemd"),
        ]
    ):
        os.makedirs(os.path.join(root, h))
        lines.append(f"{30 + i} 25 0:{30 + i} / {root}/{h} rw - cgroup cgroup rw,{opts}")
    os.makedirs(os.path.join(root, "unified"))
    lines.append(f"40 25 0:40 / {root}/unified rw - cgroup2 cgroup2 rw")
    for f, v in (("cpuset.cpus", "0-3"), ("cpuset.mems", "0")):
        with open(os.path.join(root, "cpuset", f), "w") as fh:
            fh.write(v)
    layout = Layout.parse("\n".join(lines) + "\n", "")
    bus = FakeBus(root)
    monkeypatch.setattr(systemd, "systemd_running", lambda: True)
    monkeypatch.setattr(systemd_bus.SystemdBus, "connect", classmethod(lambda cls: bus))
    monkeypatch.setattr(v1, "set_devices", lambda path, r, paths=(): bus.calls.append(("devices", path)))
    real_inherit = v1.cpuset_inherit

    def inherit(path: str) -> None:  # the files a real cgroupfs makes with the directory
        for f in ("cpuset.cpus", "cpuset.mems", "cgroup.procs"):
            open(os.path.join(path, f), "a").close()
        real_inherit(path)

    monkeypatch.setattr(v1, "cpuset_inherit", inherit)
    real_rmdir = os.rmdir

    def rmdir(path, *a, **kw) -> None:  # a real cgroupfs drops the control files with the directory
        if str(path).startswith(root) and os.path.isdir(path):
            for entry in os.scandir(path):
                if entry.is_file():
                    os.unlink(entry.path)
        real_rmdir(path, *a, **kw)

    monkeypatch.setattr(os, "rmdir", rmdir)

    def manager(path: str = "a-b.slice:pfx:c1") -> SystemdCgroupManager:
        return SystemdCgroupManager.for_container("c1", path, layout_=layout, init_cgroup_text=INIT)

    return root, bus, manager


def _read(path: str) -> str:
    with open(path) as f:
        return f.read()


def test_paths_follow_systemds_own_cgroup_and_the_slice(fake):
    root, _bus, manager = fake
    m = manager()
    scope = "a.slice/a-b.slice/pfx-c1.scope"
    assert m.unit == "pfx-c1.scope"
    assert m.paths["memory"] == f"{root}/memory/{scope}"
    assert m.paths["cpuset"] == f"{root}/cpuset/{scope}"
    assert m.paths["name=systemd"] == f"{root}/systemd/{scope}"
    assert m.unified == f"{root}/unified/{scope}"
    again = CgroupManager.from_state(m.to_state())
    assert isinstance(again, SystemdCgroupManager)
    assert (again.unit, again.slice, again.paths, again.unified) == (m.unit, m.slice, m.paths, m.unified)


def test_create_apply_destroy(fake):
    root, bus, manager = fake
    m = manager()
    r = LinuxResources.from_json({"memory": {"limit": 1 << 26}, "pids": {"limit": 9}, "cpu": {"cpus": "1"}})
    m.create(r)
    assert bus.did("start") == []  # the unit needs the init's pid
    m.apply(1234)
    ((_, unit, props),) = bus.did("start")
    d = dict(props)
    assert unit == "pfx-c1.scope"
    assert d["PIDs"] == ("au", [1234]) and d["Slice"] == ("s", "a-b.slice") and d["Delegate"] == ("b", True)
    assert d["MemoryLimit"] == ("t", 1 << 26) and d["TasksMax"] == ("t", 9)
    assert d["AllowedCPUs"] == ("ay", b"\x02")
    # then the files: systemd's hierarchies and the ones bock makes itself (cpuset)
    scope = "a.slice/a-b.slice/pfx-c1.scope"
    assert _read(f"{root}/memory/{scope}/memory.limit_in_bytes") == str(1 << 26)
    assert _read(f"{root}/pids/{scope}/pids.max") == "9"
    assert _read(f"{root}/cpuset/{scope}/cgroup.procs") == "1234"
    assert _read(f"{root}/cpuset/{scope}/cpuset.cpus") == "1"
    assert _read(f"{root}/cpuset/a.slice/cpuset.cpus") == "0-3"  # inherited by the levels bock made
    assert bus.did("devices") == [("devices", f"{root}/devices/{scope}")]
    m.destroy()
    assert bus.did("stop") == [("stop", "pfx-c1.scope")]
    assert not os.path.exists(f"{root}/cpuset/{scope}")
    assert not os.path.exists(f"{root}/cpuset/a.slice")  # this manager made it


def test_a_refused_start_makes_nothing_and_destroy_still_stops(fake):
    root, bus, manager = fake
    bus.fail_start = "Value specified in CPUShares is out of range"
    m = manager()
    m.create(LinuxResources.from_json({"cpu": {"shares": 1}}))
    with pytest.raises(SystemdError, match="CPUShares is out of range"):
        m.apply(1234)
    assert not os.path.exists(f"{root}/cpuset/a.slice")
    m.destroy()  # what create's cleanup does
    assert bus.did("stop") == [("stop", "pfx-c1.scope")]


def test_a_file_failure_after_the_start_is_undone_by_destroy(fake):
    root, bus, manager = fake
    m = manager()
    m.create(LinuxResources.from_json({"network": {"classID": 3}}))
    with pytest.raises(CgroupError, match="cannot set net_cls limit"):
        m.apply(1234)
    assert len(bus.did("start")) == 1
    m.destroy()
    assert bus.did("stop") == [("stop", "pfx-c1.scope")]
    for h in ("cpuset", "memory", "unified"):
        assert not os.path.exists(f"{root}/{h}/a.slice/a-b.slice/pfx-c1.scope")


def test_unified_keys_are_refused_before_systemd_is_asked(fake):
    _root, bus, manager = fake
    with pytest.raises(CgroupConfigError, match="cannot use unified on cgroup v1"):
        manager().create(LinuxResources.from_json({"unified": {"pids.max": "3"}}))
    assert bus.calls == []


def test_update_sets_properties_without_devices_then_files(fake):
    root, bus, manager = fake
    m = manager()
    m.create(LinuxResources())
    m.apply(1)
    m.set(LinuxResources.from_json({"memory": {"limit": 1 << 27}}))
    ((_, unit, props),) = bus.did("set")
    assert unit == "pfx-c1.scope"
    assert dict(props) == {"MemoryLimit": ("t", 1 << 27)}  # no DeviceAllow: runc update skips devices
    assert _read(f"{root}/memory/a.slice/a-b.slice/pfx-c1.scope/memory.limit_in_bytes") == str(1 << 27)
    m.destroy()


def test_bad_paths_and_rootless(fake):
    _root, _bus, manager = fake
    with pytest.raises(CgroupConfigError, match="invalid slice name: nope"):
        manager("nope:pfx:c1")
    with pytest.raises(CgroupError, match="rootless systemd"):
        SystemdCgroupManager.for_container("c1", None, rootless=True, init_cgroup_text=INIT)

"""CgroupManager on this host's real cgroupfs, with real processes in the cgroups.

Every test works under its own ``/bock-test-<uuid>`` parent, kills what it started
and removes every directory it made, in ``finally`` (the ``cgroups`` fixture), then
checks that nothing is left under /sys/fs/cgroup.
"""

from __future__ import annotations

import glob
import os
import signal
import subprocess
import sys
import time
import uuid

import pytest
from bock._cgroups import CgroupConfigError, CgroupError, CgroupManager, LimitError, layout
from bock._cgroups.layout import V2, Layout
from bock._spec.resources import LinuxResources

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root"),
    pytest.mark.skipif(not os.path.isdir("/sys/fs/cgroup"), reason="no cgroupfs"),
]

PY = "/usr/bin/python3"
MiB = 1 << 20

# A child that waits for "go" on stdin (so the test can place it first), then runs CODE.
WAIT_THEN = "import os, sys\nsys.stdin.readline()\n"


def _all_dirs(name: str) -> list[str]:
    return glob.glob(f"/sys/fs/cgroup/*/{name}") + glob.glob(f"/sys/fs/cgroup/{name}")


class Cgroups:
    """Makes managers under a unique parent and cleans every one of them up."""

    def __init__(self) -> None:
        self.parent = f"bock-test-{uuid.uuid4().hex[:12]}"
        self.managers: list[CgroupManager] = []
        self.procs: list[subprocess.Popen] = []
        self.extra_dirs: list[str] = []

    def manager(self, name: str = "c", **kw) -> CgroupManager:
        m = CgroupManager.for_container(name, f"/{self.parent}/{name}", **kw)
        self.managers.append(m)
        return m

    def child(self, code: str) -> subprocess.Popen:
        p = subprocess.Popen(
            [PY, "-I", "-S", "-c", WAIT_THEN + code],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.procs.append(p)
        return p

    def cleanup(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.kill()
            p.wait()
            for f in (p.stdin, p.stdout, p.stderr):
                if f:
                    f.close()
        for m in reversed(self.managers):
            try:
                m.thaw()
            except CgroupError:
                pass
            for pid in m.pids() if m.exists() else []:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            m.destroy()
        for d in reversed(self.extra_dirs):
            if os.path.isdir(d):
                os.rmdir(d)
        for d in _all_dirs(self.parent):
            os.rmdir(d)


@pytest.fixture
def cgroups():
    cg = Cgroups()
    try:
        yield cg
    finally:
        cg.cleanup()
        assert _all_dirs(cg.parent) == [], "cgroups left behind"


def go(p: subprocess.Popen, m: CgroupManager) -> None:
    m.apply(p.pid)
    p.stdin.write("go\n")
    p.stdin.flush()


def proc_cgroups(pid: int) -> dict[str, str]:
    out = {}
    with open(f"/proc/{pid}/cgroup") as f:
        for line in f:
            _, ctrls, path = line.rstrip("\n").split(":", 2)
            for c in ctrls.split(",") if ctrls else [""]:
                out[c] = path
    return out


def read(path: str, name: str) -> str:
    with open(f"{path}/{name}") as f:
        return f.read().strip()


TYPICAL = {
    "devices": [
        {"allow": False, "access": "rwm"},
        *({"allow": True, "type": "c", "major": 1, "minor": n, "access": "rwm"} for n in (3, 5, 7, 8, 9)),
        *({"allow": True, "type": "c", "major": 5, "minor": n, "access": "rwm"} for n in (0, 1, 2)),
        {"allow": True, "type": "c", "major": 136, "access": "rwm"},
    ],
    "memory": {"limit": 128 * MiB},
    "cpu": {"shares": 512, "quota": 50000, "period": 100000},
    "pids": {"limit": 64},
}


def test_a_real_process_is_in_every_hierarchy_with_the_limits(cgroups):
    m = cgroups.manager()
    m.create(LinuxResources.from_json(TYPICAL))
    p = cgroups.child(
        "sys.stdout.write(open('/dev/null').read() + 'ok'); sys.stdout.flush()\nsys.stdin.readline()"
    )
    go(p, m)
    assert p.stdout.read(2) == "ok"
    seen = proc_cgroups(p.pid)
    lay = layout.current()
    for ctrl in lay.mounts:
        assert seen[ctrl] == f"/{cgroups.parent}/c", ctrl
    if lay.unified:
        assert seen[""] == f"/{cgroups.parent}/c"
    if lay.mode != V2:
        assert read(m.paths["memory"], "memory.limit_in_bytes") == str(128 * MiB)
        assert read(m.paths["cpu"], "cpu.shares") == "512"
        assert read(m.paths["cpu"], "cpu.cfs_quota_us") == "50000"
        assert read(m.paths["pids"], "pids.max") == "64"
        listing = read(m.paths["devices"], "devices.list").splitlines()
        assert "a *:* rwm" not in listing
        assert {"c 1:3 rwm", "c 136:* rwm", "c *:* m", "b *:* m", "c 10:200 rwm"} <= set(listing)
    assert m.pids() == [p.pid]
    st = m.stats()
    assert st["pids"]["current"] == 1 and st["pids"]["limit"] == 64
    assert st["memory"]["usage"]["limit"] == 128 * MiB
    assert st["memory"]["usage"]["usage"] > 0


def test_the_devices_cgroup_denies_what_the_rules_do_not_allow(cgroups):
    if layout.current().mode == V2:
        pytest.skip("v1 devices controller")
    m = cgroups.manager()
    m.create(LinuxResources.from_json({"devices": [{"allow": False, "access": "rwm"}]}))
    p = cgroups.child(
        "r = []\n"
        "for path in ('/dev/null', '/dev/zero', '/dev/kmsg'):\n"
        "    try:\n"
        "        os.close(os.open(path, os.O_RDONLY)); r.append('ok')\n"
        "    except OSError as e:\n"
        "        r.append(str(e.errno))\n"
        "print(' '.join(r))\n"
    )
    go(p, m)
    out, _ = p.communicate(timeout=30)
    # /dev/null, /dev/zero: runc's defaults even under deny-all; /dev/kmsg: EPERM
    assert out.split() == ["ok", "ok", "1"]


def test_freeze_and_thaw_a_real_process(cgroups):
    m = cgroups.manager()
    m.create(LinuxResources.from_json({}))
    p = cgroups.child("print('spinning', flush=True)\nwhile True: pass\n")
    go(p, m)
    assert p.stdout.readline() == "spinning\n"

    def cpu_ticks() -> int:
        with open(f"/proc/{p.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])

    m.freeze()
    assert m.is_frozen()
    before = cpu_ticks()
    time.sleep(0.5)
    assert cpu_ticks() == before, "a frozen process ran"
    m.thaw()
    assert not m.is_frozen()
    time.sleep(0.5)
    assert cpu_ticks() > before, "a thawed process did not run"


def test_the_memory_limit_kills_a_process_that_exceeds_it(cgroups):
    m = cgroups.manager()
    m.create(LinuxResources.from_json({"memory": {"limit": 32 * MiB}}))
    watcher = m.oom_events()
    try:
        p = cgroups.child(
            "chunks = []\nfor _ in range(64):\n    chunks.append(bytearray(8 << 20))\nprint('survived')\n"
        )
        go(p, m)
        out, _ = p.communicate(timeout=60)
        assert p.returncode == -signal.SIGKILL
        assert "survived" not in out
        assert watcher.wait(timeout=5) >= 1
    finally:
        watcher.close()
    if m.mode != V2:
        kills = dict(line.split() for line in read(m.paths["memory"], "memory.oom_control").splitlines())
        assert int(kills["oom_kill"]) >= 1


def test_pids_max_refuses_forks(cgroups):
    m = cgroups.manager()
    m.create(LinuxResources.from_json({"pids": {"limit": 4}}))
    p = cgroups.child(
        "ok = failed = 0\n"
        "for _ in range(10):\n"
        "    try:\n"
        "        pid = os.fork()\n"
        "    except BlockingIOError:\n"
        "        failed += 1\n"
        "        continue\n"
        "    if pid == 0:\n"
        "        import time; time.sleep(30); os._exit(0)\n"
        "    ok += 1\n"
        "print(ok, failed, flush=True)\n"
        "sys.stdin.readline()\n"
    )
    go(p, m)
    ok, failed = map(int, p.stdout.readline().split())
    assert (ok, failed) == (3, 7)  # 4 pids: the child itself and three forks
    assert len(m.pids()) == 4


def test_a_memory_limit_below_usage_fails_clearly(cgroups):
    m = cgroups.manager()
    m.create(LinuxResources.from_json({"memory": {"limit": 256 * MiB}}))
    p = cgroups.child("hog = bytearray(64 << 20)\nprint('ready', flush=True)\nsys.stdin.readline()\n")
    go(p, m)
    assert p.stdout.readline() == "ready\n"
    with pytest.raises(LimitError, match=r"unable to set memory limit to 16777216 \(current usage: \d+"):
        m.set(LinuxResources.from_json({"memory": {"limit": 16 * MiB}}))
    assert p.poll() is None, "the process was killed instead of the update failing"
    if m.mode != V2:
        assert read(m.paths["memory"], "memory.limit_in_bytes") == str(256 * MiB)
    m.set(LinuxResources.from_json({"memory": {"limit": 512 * MiB}}))  # a live raise works
    if m.mode != V2:
        assert read(m.paths["memory"], "memory.limit_in_bytes") == str(512 * MiB)


@pytest.mark.parametrize(
    ("resources", "message"),
    [
        ({"cpu": {"cpus": "999"}}, "cpuset.cpus"),
        ({"network": {"classID": 1048577}}, "cannot set net_cls limit"),
        ({"memory": {"swappiness": 500}}, "invalid memory swappiness value"),
        ({"unified": {"memory.max": "1000000"}}, "memory"),
    ],
)
def test_a_failed_create_leaves_nothing(cgroups, resources, message):
    lay = layout.current()
    if lay.mode == V2 or (lay.mode == layout.V1 and "unified" in resources):
        pytest.skip("hybrid host case")
    if "network" in resources and "net_cls" in lay.mounts:
        pytest.skip("net_cls is mounted here")
    m = cgroups.manager("deep/er")
    with pytest.raises((CgroupError, CgroupConfigError), match=message):
        m.create(LinuxResources.from_json(resources))
    assert _all_dirs(cgroups.parent) == []


def test_hybrid_unified_keys_are_written_to_the_cgroup2_twin(cgroups):
    if layout.current().mode != layout.HYBRID:
        pytest.skip("hybrid host only")
    m = cgroups.manager()
    m.create(LinuxResources.from_json({"unified": {"cgroup.max.descendants": "2"}}))
    assert read(m.unified, "cgroup.max.descendants") == "2"
    os.mkdir(f"{m.unified}/a")
    os.mkdir(f"{m.unified}/b")
    cgroups.extra_dirs += [f"{m.unified}/a", f"{m.unified}/b"]
    with pytest.raises(OSError):
        os.mkdir(f"{m.unified}/c")


def test_destroy_waits_for_nothing_and_removes_sub_cgroups(cgroups):
    m = cgroups.manager()
    m.create(LinuxResources.from_json({"pids": {"limit": 10}}))
    for d in m.paths.values():
        os.makedirs(f"{d}/sub/deeper", exist_ok=True)
    m.destroy()
    assert not m.exists()
    m.destroy()  # again: missing directories are fine


def test_destroy_with_a_live_process_is_an_error(cgroups):
    m = cgroups.manager()
    m.create(LinuxResources.from_json({}))
    p = cgroups.child("sys.stdin.readline()\n")
    go(p, m)
    with pytest.raises(CgroupError, match="failed to remove cgroup"):
        m.destroy()


def test_state_round_trip_controls_the_same_cgroup(cgroups):
    m = cgroups.manager()
    m.create(LinuxResources.from_json({}))
    p = cgroups.child("sys.stdin.readline()\n")
    go(p, m)
    again = CgroupManager.from_state(m.to_state())
    assert again.pids() == [p.pid]
    again.freeze()
    assert m.is_frozen()
    again.thaw()


def test_v2_ebpf_device_program_on_a_real_cgroup2_directory(cgroups):
    """The v2 driver, on this host's cgroup2 hierarchy: device access through eBPF only."""
    lay = layout.current()
    if lay.unified is None:
        pytest.skip("no cgroup2 hierarchy")
    # Present the cgroup2 hierarchy as a v2 host whose root is our own test directory,
    # so that enabling controllers cannot touch the real root.
    root = f"{lay.unified}/{cgroups.parent}"
    os.mkdir(root)
    cgroups.extra_dirs.append(root)
    v2 = Layout(V2, {}, root, {"": "/"})
    m = CgroupManager.for_container("dev", "/dev", layout_=v2)
    cgroups.managers.append(m)
    m.create(
        LinuxResources.from_json(
            {
                "devices": [
                    {"allow": False, "access": "rwm"},
                    {"allow": True, "type": "c", "major": 1, "minor": 11, "access": "r"},
                ]
            }
        )
    )
    probe = (
        "r = []\n"
        "for path, flags in (('/dev/null', os.O_RDWR), ('/dev/zero', os.O_RDONLY),"
        " ('/dev/urandom', os.O_RDONLY), ('/dev/kmsg', os.O_RDONLY), ('/dev/kmsg', os.O_WRONLY),"
        " ('/dev/full', os.O_WRONLY)):\n"
        "    try:\n"
        "        os.close(os.open(path, flags)); r.append('ok')\n"
        "    except OSError as e:\n"
        "        r.append(str(e.errno))\n"
        "print(' '.join(r))\n"
    )
    p = cgroups.child(probe)
    go(p, m)
    out, _ = p.communicate(timeout=30)
    assert out.split() == ["ok", "ok", "ok", "ok", "1", "ok"]
    # update: deny-all alone still allows the defaults, and takes /dev/kmsg away
    m.set(LinuxResources.from_json({"devices": [{"allow": False, "access": "rwm"}]}), devices=True)
    p = cgroups.child(probe)
    go(p, m)
    out, _ = p.communicate(timeout=30)
    assert out.split() == ["ok", "ok", "ok", "1", "1", "ok"]
    # one program attached, the old one replaced
    from bock._cgroups import bpf

    fd = os.open(m.unified, os.O_RDONLY | os.O_DIRECTORY)
    try:
        assert len(bpf.query(fd)) == 1
    finally:
        os.close(fd)


def test_relative_path_is_under_our_own_cgroup():
    lay = layout.current()
    m = CgroupManager.for_container("t-rel", None)
    for ctrl, path in m.paths.items():
        own = lay.own.get(ctrl, "/")
        assert path == os.path.normpath(f"{lay.mounts[ctrl][0]}/{own}/t-rel"), ctrl


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-v"]))


def test_events_stream_reports_the_oom_and_stats(cgroups):
    from bock._cgroups import events

    m = cgroups.manager()
    m.create(LinuxResources.from_json({"memory": {"limit": 32 * MiB}}))
    p = cgroups.child(
        "import time\ntime.sleep(0.6)\nchunks = []\nfor _ in range(64):\n    chunks.append(bytearray(8 << 20))\n"
    )
    go(p, m)
    seen: list[dict] = []
    events.watch("cid", m, 0.2, seen.append, lambda: p.poll() is None)
    assert p.returncode == -signal.SIGKILL
    kinds = [e["type"] for e in seen]
    assert "oom" in kinds
    stats = [e for e in seen if e["type"] == "stats"]
    assert len(stats) >= 2
    assert stats[0]["id"] == "cid"
    assert stats[0]["data"]["memory"]["usage"]["limit"] == 32 * MiB
    one = events.stats_event("cid", m)
    assert one["type"] == "stats" and "pids" in one["data"]


def test_v2_freezer_on_a_real_cgroup2_directory(cgroups):
    """cgroup.freeze works in any cgroup2 directory: the v2 freezer, for real, on this host."""
    lay = layout.current()
    if lay.unified is None:
        pytest.skip("no cgroup2 hierarchy")
    root = f"{lay.unified}/{cgroups.parent}"
    os.mkdir(root)
    cgroups.extra_dirs.append(root)
    m = CgroupManager.for_container("fz", "/fz", layout_=Layout(V2, {}, root, {"": "/"}))
    cgroups.managers.append(m)
    m.create(LinuxResources.from_json({}))
    p = cgroups.child("print('spinning', flush=True)\nwhile True: pass\n")
    go(p, m)
    assert p.stdout.readline() == "spinning\n"
    assert proc_cgroups(p.pid)[""].endswith(f"/{cgroups.parent}/fz")
    m.freeze()
    assert m.is_frozen()
    assert read(m.unified, "cgroup.freeze") == "1"
    with open(f"/proc/{p.pid}/stat") as f:
        before = f.read().rsplit(")", 1)[1].split()[11]
    time.sleep(0.4)
    with open(f"/proc/{p.pid}/stat") as f:
        assert f.read().rsplit(")", 1)[1].split()[11] == before, "a frozen process ran"
    m.thaw()
    assert not m.is_frozen()
    assert m.pids() == [p.pid]
    st = m.stats()  # v2 stats from a cgroup without the memory/pids controllers: core files only
    assert st["pids"] == {"current": 1}
    assert st["cpu"]["usage"]["total"] > 0

"""End to end: ``bock create/run/delete`` with ``linux.resources``, checked from the host.

A busybox bundle is built per test; every container gets a unique ID and a cgroup
under a unique ``/bock-test-<uuid>`` parent; the fixture deletes the containers and
checks that no cgroup directory is left.
"""

from __future__ import annotations

import glob
import json
import os
import pathlib
import shutil
import subprocess
import time
import uuid

import pytest

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root"),
    pytest.mark.skipif(not os.path.exists("/bin/busybox"), reason="needs /bin/busybox"),
]

RUNTIME = str(pathlib.Path(__file__).resolve().parents[2])
BOCK = [
    "/usr/bin/python3",
    "-I",
    "-S",
    "-c",
    f"import sys; sys.path.insert(0, {RUNTIME!r}); from bock._main import main; sys.exit(main(sys.argv[1:]))",
]
MiB = 1 << 20


def _all_dirs(name: str) -> list[str]:
    return glob.glob(f"/sys/fs/cgroup/*/{name}") + glob.glob(f"/sys/fs/cgroup/{name}")


class Bundle:
    def __init__(self, base: pathlib.Path, parent: str) -> None:
        self.dir = base / "bundle"
        self.root = str(base / "state")
        self.parent = parent
        self.ids: list[str] = []
        rootfs = self.dir / "rootfs"
        (rootfs / "bin").mkdir(parents=True)
        shutil.copy("/bin/busybox", rootfs / "bin" / "busybox")
        applets = subprocess.run(
            ["/bin/busybox", "--list"], capture_output=True, text=True, check=True
        ).stdout
        for applet in applets.split():
            if applet != "busybox":
                os.symlink("busybox", rootfs / "bin" / applet)
        self.bock("spec")

    def bock(self, *args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
        # Files, not pipes: a created container keeps the stdio it was given open.
        out, err = self.dir.parent / "out", self.dir.parent / "err"
        with open(out, "w+") as fo, open(err, "w+") as fe:
            proc = subprocess.run(
                [*BOCK, "--root", self.root, *args],
                cwd=self.dir,
                stdin=subprocess.DEVNULL,
                stdout=fo,
                stderr=fe,
                timeout=timeout,
            )
        res = subprocess.CompletedProcess(proc.args, proc.returncode, out.read_text(), err.read_text())
        if check and res.returncode != 0:
            raise AssertionError(f"bock {' '.join(args)} failed ({res.returncode}): {res.stderr}")
        return res

    def configure(self, args: list[str], resources: dict, cid: str) -> None:
        path = self.dir / "config.json"
        config = json.loads(path.read_text())
        config["process"]["args"] = args
        config["process"]["terminal"] = False
        config["linux"]["cgroupsPath"] = f"/{self.parent}/{cid}"
        config["linux"]["resources"] = resources
        path.write_text(json.dumps(config))

    def new_id(self) -> str:
        cid = f"t-{uuid.uuid4().hex[:12]}"
        self.ids.append(cid)
        return cid

    def cgroup(self, controller: str, cid: str) -> str:
        mount = "/sys/fs/cgroup/unified" if controller == "" else f"/sys/fs/cgroup/{controller}"
        return f"{mount}/{self.parent}/{cid}"


@pytest.fixture
def bundle(tmp_path):
    b = Bundle(tmp_path, f"bock-test-{uuid.uuid4().hex[:12]}")
    try:
        yield b
    finally:
        for cid in b.ids:
            b.bock("delete", "--force", cid, check=False)
        left = _all_dirs(b.parent)
        for d in sorted(left, key=len, reverse=True):
            for sub in sorted(glob.glob(f"{d}/**/", recursive=True), key=len, reverse=True):
                os.rmdir(sub)
        assert [d for d in left if os.path.basename(d) != b.parent] == [], "container cgroups left behind"
        shutil.rmtree(tmp_path / "bundle" / "rootfs", ignore_errors=True)


def _state(pid: str) -> str:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return "gone"


def read(path: str) -> str:
    with open(path) as f:
        return f.read().strip()


def test_created_container_is_in_its_cgroups_with_the_limits(bundle):
    cid = bundle.new_id()
    resources = {
        "devices": [{"allow": False, "access": "rwm"}],
        "memory": {"limit": 64 * MiB},
        "cpu": {"shares": 256, "quota": 20000, "period": 100000},
        "pids": {"limit": 20},
    }
    bundle.configure(["sleep", "100"], resources, cid)
    bundle.bock("create", "--bundle", str(bundle.dir), cid)
    pid = json.loads(bundle.bock("state", cid).stdout)["pid"]
    with open(f"/proc/{pid}/cgroup") as f:
        lines = f.read().splitlines()
    for line in lines:
        assert line.split(":", 2)[2] == f"/{bundle.parent}/{cid}", line
    assert read(bundle.cgroup("memory", cid) + "/memory.limit_in_bytes") == str(64 * MiB)
    assert read(bundle.cgroup("cpu", cid) + "/cpu.shares") == "256"
    assert read(bundle.cgroup("cpu", cid) + "/cpu.cfs_quota_us") == "20000"
    assert read(bundle.cgroup("pids", cid) + "/pids.max") == "20"
    listing = read(bundle.cgroup("devices", cid) + "/devices.list").splitlines()
    # podman's deny-all-only spec: runc's default devices are still allowed
    assert {"c 1:3 rwm", "c 1:5 rwm", "c 1:9 rwm", "c 136:* rwm", "c 5:2 rwm"} <= set(listing)
    assert "a *:* rwm" not in listing
    assert int(read(bundle.cgroup("pids", cid) + "/pids.current")) == 1
    bundle.bock("delete", "--force", cid)
    assert [d for d in _all_dirs(f"{bundle.parent}/{cid}")] == []


def test_memory_limit_kills_the_container_process(bundle):
    cid = bundle.new_id()
    hog = "x=$(head -c 300000000 /dev/zero | tr '\\0' a); echo survived"
    bundle.configure(["sh", "-c", hog], {"memory": {"limit": 32 * MiB}}, cid)
    res = bundle.bock("run", "--bundle", str(bundle.dir), cid, check=False, timeout=120)
    assert "survived" not in res.stdout
    assert res.returncode == 137, (res.returncode, res.stderr)


def test_pids_limit_stops_forks_in_the_container(bundle):
    cid = bundle.new_id()
    script = "for i in 1 2 3 4 5 6 7 8; do sleep 5 & done 2>&1; echo done"
    bundle.configure(["sh", "-c", script], {"pids": {"limit": 4}}, cid)
    res = bundle.bock("run", "--bundle", str(bundle.dir), cid, check=False, timeout=60)
    assert "can't fork" in res.stdout + res.stderr


def test_failed_create_leaves_no_cgroup(bundle):
    cid = bundle.new_id()
    bundle.configure(["sleep", "1"], {"cpu": {"cpus": "999"}}, cid)
    res = bundle.bock("create", "--bundle", str(bundle.dir), cid, check=False)
    assert res.returncode != 0
    assert "cpuset.cpus" in res.stderr
    assert _all_dirs(bundle.parent) == []


def test_failed_exec_after_the_cgroup_was_made_leaves_no_cgroup(bundle):
    cid = bundle.new_id()
    bundle.configure(["/nonexistent"], {"pids": {"limit": 10}}, cid)
    res = bundle.bock("create", "--bundle", str(bundle.dir), cid, check=False)
    assert res.returncode != 0
    assert _all_dirs(bundle.parent) == []


RUNC = shutil.which("runc") or "/usr/sbin/runc"
COMPARED = (
    ("memory", "memory.limit_in_bytes"),
    ("memory", "memory.memsw.limit_in_bytes"),
    ("memory", "memory.soft_limit_in_bytes"),
    ("memory", "memory.swappiness"),
    ("memory", "memory.oom_control"),
    ("cpu", "cpu.shares"),
    ("cpu", "cpu.cfs_quota_us"),
    ("cpu", "cpu.cfs_period_us"),
    ("cpuset", "cpuset.cpus"),
    ("cpuset", "cpuset.mems"),
    ("pids", "pids.max"),
    ("freezer", "freezer.state"),
)
PODMAN_LIKE = {
    "devices": [{"allow": False, "access": "rwm"}],
    "pids": {"limit": 2048},
}
CONTAINERD_LIKE = {
    "devices": [
        {"allow": False, "access": "rwm"},
        *({"allow": True, "type": "c", "major": 1, "minor": n, "access": "rwm"} for n in (3, 5, 7, 8, 9)),
        *({"allow": True, "type": "c", "major": 5, "minor": n, "access": "rwm"} for n in (0, 1, 2)),
        {"allow": True, "type": "c", "major": 136, "access": "rwm"},
    ],
    "memory": {"limit": 96 * MiB, "reservation": 48 * MiB, "swap": 192 * MiB, "swappiness": 20},
    "cpu": {"shares": 300, "quota": 30000, "period": 60000, "cpus": "0", "mems": "0"},
    "pids": {"limit": 77},
}


def runc_create(bundle: Bundle, runc: list[str], cid: str) -> None:
    # Files, not pipes: the created container keeps them open.
    with open(bundle.dir.parent / "runc.err", "w+") as err:
        subprocess.run(
            [*runc, "create", "--bundle", str(bundle.dir), cid],
            stdin=subprocess.DEVNULL,
            stdout=err,
            stderr=err,
            check=True,
            timeout=60,
        )


def _snapshot(b: Bundle, cid: str, pid: int) -> dict:
    out = {name: read(f"{b.cgroup(ctrl, cid)}/{name}") for ctrl, name in COMPARED}
    out["devices.list"] = set(read(b.cgroup("devices", cid) + "/devices.list").splitlines())
    with open(f"/proc/{pid}/cgroup") as f:
        out["/proc/pid/cgroup"] = sorted(
            (line.split(":")[1], line.rstrip("\n").split(":", 2)[2].replace(cid, "ID")) for line in f
        )
    return out


@pytest.mark.skipif(not os.path.exists(RUNC), reason="runc is the oracle")
@pytest.mark.parametrize(
    ("resources", "bock_extra"), [(PODMAN_LIKE, {"c 5:1 rwm"}), (CONTAINERD_LIKE, set())]
)
def test_same_cgroup_files_as_runc(bundle, resources, bock_extra):
    """runc 1.1 and bock, same config: the same values in the same cgroup files.

    The one difference: bock also allows /dev/console (c 5:1) by default.
    """
    seen = {}
    for name, runtime in (("runc", [RUNC, "--root", bundle.root + "-runc"]), ("bock", None)):
        cid = bundle.new_id()
        bundle.configure(["sleep", "100"], resources, cid)
        if runtime is None:
            bundle.bock("create", "--bundle", str(bundle.dir), cid)
            pid = json.loads(bundle.bock("state", cid).stdout)["pid"]
        else:
            runc_create(bundle, runtime, cid)
            state = subprocess.run([*runtime, "state", cid], capture_output=True, text=True, check=True)
            pid = json.loads(state.stdout)["pid"]
        try:
            seen[name] = _snapshot(bundle, cid, pid)
        finally:
            if runtime is None:
                bundle.bock("delete", "--force", cid)
            else:
                subprocess.run([*runtime, "delete", "--force", cid], check=True, timeout=60)
    runc, bock = seen["runc"], seen["bock"]
    assert runc["pids.max"] == str(resources["pids"]["limit"])
    assert ("", "/" + bundle.parent + "/ID") in runc["/proc/pid/cgroup"]
    assert bock["devices.list"] - runc["devices.list"] == bock_extra
    assert runc["devices.list"] - bock["devices.list"] == set()
    del runc["devices.list"], bock["devices.list"]
    assert bock == runc


def _shape(d: object, prefix: str = "") -> set[str]:
    out = set()
    if isinstance(d, dict):
        for k, v in d.items():
            if prefix.endswith("/raw"):
                continue
            out.add(f"{prefix}/{k}")
            out |= _shape(v, f"{prefix}/{k}")
    return out


@pytest.mark.skipif(not os.path.exists(RUNC), reason="runc is the oracle")
def test_stats_have_the_shape_and_values_of_runc_events_stats(bundle):
    """``runc events --stats`` and CgroupManager.stats() on the same (runc-made) cgroup."""
    from bock._cgroups import CgroupManager

    cid = bundle.new_id()
    bundle.configure(["sleep", "100"], CONTAINERD_LIKE, cid)
    runc = [RUNC, "--root", bundle.root + "-runc"]
    runc_create(bundle, runc, cid)
    try:
        theirs = json.loads(
            subprocess.run([*runc, "events", "--stats", cid], capture_output=True, check=True).stdout
        )
        ours = CgroupManager.for_container(cid, f"/{bundle.parent}/{cid}").stats()
    finally:
        subprocess.run([*runc, "delete", "--force", cid], check=True, timeout=60)
    assert theirs["type"] == "stats"
    theirs = theirs["data"]
    # throttling counters move between the two reads, and zero values are omitted (omitempty)
    assert {k for k in _shape(ours) if "/throttling/" not in k} == {
        k for k in _shape(theirs) if "/throttling/" not in k
    }
    for key in ("pids", "cpuset"):
        assert ours[key] == theirs[key], key
    for key in ("usage", "swap", "kernel", "kernelTCP"):
        assert ours["memory"][key]["limit"] == theirs["memory"][key]["limit"], key
    assert ours["memory"]["usage"]["limit"] == 96 * MiB
    assert set(ours["memory"]["raw"]) == set(theirs["memory"]["raw"])
    assert ours["blkio"].keys() == theirs["blkio"].keys()


def test_delete_force_kills_every_process_of_the_cgroup(bundle):
    cid = bundle.new_id()
    bundle.configure(["sh", "-c", "sleep 100 & sleep 100 & sleep 100"], {"pids": {"limit": 10}}, cid)
    bundle.bock("create", "--bundle", str(bundle.dir), cid)
    bundle.bock("start", cid)
    procs = bundle.cgroup("pids", cid) + "/cgroup.procs"
    for _ in range(100):
        pids = read(procs).split()
        if len(pids) >= 3:  # sh execs the last sleep itself
            break
        time.sleep(0.05)
    assert len(pids) >= 3, pids
    bundle.bock("delete", "--force", cid)
    assert [pid for pid in pids if os.path.exists(f"/proc/{pid}") and _state(pid) != "Z"] == []
    assert _all_dirs(f"{bundle.parent}/{cid}") == []

"""End to end: ``bock --systemd-cgroup`` against a real systemd (252 on Debian 12).

The host runs no systemd, so each test boots the host's /lib/systemd/systemd as PID 1 of
private namespaces (``_support.systemd_fixture``) and runs bock inside them with
``nsenter``; bock reaches systemd on its private socket. Checked from systemd's side
(``systemctl show``) and from the cgroup files; runc 1.1 (when installed) is the oracle
for the unit's properties. Everything dies with the fixture (its PID 1 is SIGKILLed, its
cgroups removed) even when a test fails.
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile

import pytest
from _support.bock import Runtime, new_id
from _support.systemd_fixture import SystemdFixture, available

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(bool(available()), reason=available() or "ok"),
    pytest.mark.skipif(not os.path.exists("/bin/busybox"), reason="needs /bin/busybox"),
]

RUNTIME = str(pathlib.Path(__file__).resolve().parents[2])
MiB = 1 << 20


def _v1_memory_mounted() -> bool:
    with open("/proc/self/mountinfo") as f:
        return any(" - cgroup " in line and ",memory" in line.split(" - ", 1)[1] for line in f)


# the host-layout cases read v1 files (this host and CI are hybrid); a v2 host has the v2 case
V1_HOST = _v1_memory_mounted()


@pytest.fixture(params=["host layout"])
def sd(request, tmp_path: pathlib.Path, bock_bin: str):
    """(fixture, Runtime running bock inside it); containers deleted, then systemd killed.

    ``params``: "host layout" (this host's: hybrid here) or "v2" (only the cgroup2 hierarchy,
    at /sys/fs/cgroup: systemd runs in unified mode)."""
    if request.param != "v2" and not V1_HOST:
        pytest.skip("this host has no v1 memory hierarchy: only the v2 case applies")
    binds_ro = sorted({sys.prefix, os.path.dirname(RUNTIME), os.path.dirname(os.path.realpath(bock_bin))})
    fx = SystemdFixture(binds_rw=[str(tmp_path)], binds_ro=binds_ro, unified_only=request.param == "v2")
    fx.start()
    problems: list = []
    try:
        rt = Runtime(fx.wrapper(bock_bin, str(tmp_path / "bock-in-fixture")), str(tmp_path / "state"), [])
        try:
            yield fx, rt
        finally:
            problems = rt.cleanup()
    finally:
        left = fx.stop()
    assert not problems, problems
    assert not left, f"left behind: {left}"


def _resources_bundle(bundle, script: str, resources: dict, cgroups_path: str | None):
    b = bundle()
    b.sh(script)
    b.config["linux"]["resources"] = resources
    if cgroups_path is None:
        b.config["linux"].pop("cgroupsPath", None)
    else:
        b.config["linux"]["cgroupsPath"] = cgroups_path
    # the container's own /proc/self/cgroup then shows the real paths
    b.config["linux"]["namespaces"] = [n for n in b.namespaces() if n["type"] != "cgroup"]
    return b.save()


RESOURCES = {
    "memory": {"limit": 64 * MiB},
    "cpu": {"shares": 512, "quota": 50000, "period": 100000},
    "pids": {"limit": 77},
    "devices": [{"allow": False, "access": "rwm"}],
}


def _create(rt: Runtime, b, cid: str):
    """``bock --systemd-cgroup create``, the container's stdio on a file (not our pipes)."""
    with open(b.out_path, "ab") as out:
        return rt(
            "--systemd-cgroup",
            "create",
            "--bundle",
            b.path,
            cid,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
        )


def test_create_starts_a_scope_with_the_limits_and_delete_stops_it(sd, bundle):
    fx, rt = sd
    cid = rt.new_id()
    b = _resources_bundle(bundle, "cat /proc/self/cgroup; sleep 600", RESOURCES, f"system.slice:bock:{cid}")
    res = _create(rt, b, cid)
    assert res.rc == 0, (res, b.output())
    unit = f"bock-{cid}.scope"
    props = fx.show(
        unit,
        "ActiveState",
        "ControlGroup",
        "Slice",
        "Delegate",
        "MemoryLimit",
        "CPUShares",
        "CPUQuotaPerSecUSec",
        "TasksMax",
        "DevicePolicy",
    )
    assert props["ActiveState"] == "active", props
    assert props["ControlGroup"] == f"/system.slice/{unit}"
    assert props["Slice"] == "system.slice"
    assert props["Delegate"] == "yes"
    assert props["MemoryLimit"] == str(64 * MiB)
    assert props["CPUShares"] == "512"
    assert props["CPUQuotaPerSecUSec"] == "500ms"
    assert props["TasksMax"] == "77"
    assert props["DevicePolicy"] == "strict"
    # the init is in the scope in every hierarchy: systemd's and the ones bock joined itself
    pid = rt.state(cid)["pid"]
    cg = fx.run(["cat", f"/proc/{pid}/cgroup"]).stdout
    for line in cg.splitlines():
        assert line.endswith(f"/system.slice/{unit}"), cg
    # and the limits are in the files (systemd's and bock's writes agree)
    mem = fx.run(["cat", f"/sys/fs/cgroup/memory/system.slice/{unit}/memory.limit_in_bytes"]).stdout
    assert int(mem) == 64 * MiB
    quota = fx.run(["cat", f"/sys/fs/cgroup/cpu/system.slice/{unit}/cpu.cfs_quota_us"]).stdout
    assert int(quota) == 50000
    rt("start", cid).ok()
    assert f"/system.slice/{unit}" in _wait_output(b, "memory:")
    rt("delete", "--force", cid).ok()
    assert fx.show(unit, "LoadState")["LoadState"] == "not-found"
    assert fx.run(["test", "-e", f"/sys/fs/cgroup/memory/system.slice/{unit}"], check=False).returncode == 1
    assert fx.run(["test", "-e", f"/sys/fs/cgroup/cpuset/system.slice/{unit}"], check=False).returncode == 1


def _wait_output(b, needle: str, timeout: float = 10) -> str:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = b.output()
        if needle in out:
            return out
        time.sleep(0.05)
    return b.output()


def test_a_slice_name_expands_to_its_parents(sd, bundle):
    _fx, rt = sd
    cid = rt.new_id()
    b = _resources_bundle(bundle, "cat /proc/self/cgroup", {}, f"bock-t1.slice:pfx:{cid}")
    res = rt("--systemd-cgroup", "run", "--bundle", b.path, cid, stdin=subprocess.DEVNULL)
    assert res.rc == 0, res
    assert f"pids:/bock.slice/bock-t1.slice/pfx-{cid}.scope" in res.out, res.out
    assert f"0::/bock.slice/bock-t1.slice/pfx-{cid}.scope" in res.out, res.out


def test_empty_cgroups_path_is_runc_prefix_in_system_slice(sd, bundle):
    fx, rt = sd
    cid = rt.new_id()
    b = _resources_bundle(bundle, "cat /proc/self/cgroup", {}, None)
    res = rt("--systemd-cgroup", "run", "--bundle", b.path, cid, stdin=subprocess.DEVNULL)
    assert res.rc == 0, res
    assert f"memory:/system.slice/runc-{cid}.scope" in res.out, res.out
    # the scope went away with its last process; run's delete removed what bock made itself
    assert _leftover(fx, f"runc-{cid}.scope") == ""


def _create_fails(fx: SystemdFixture, rt: Runtime, b, unit: str) -> str:
    """A ``--systemd-cgroup create`` that must fail and leave no unit, cgroup or state."""
    cid = new_id()
    res = rt("--systemd-cgroup", "create", "--bundle", b.path, cid, stdin=subprocess.DEVNULL)
    assert res.rc == 1, res
    assert not os.path.exists(os.path.join(rt.root, cid))
    assert fx.show(unit, "LoadState")["LoadState"] == "not-found"
    assert _leftover(fx, unit) == ""
    return res.err


def _leftover(fx: SystemdFixture, unit: str) -> str:
    return fx.run(["sh", "-c", f"ls -d /sys/fs/cgroup/*/system.slice/{unit}"], check=False).stdout


def test_a_refused_property_fails_create_and_leaves_no_unit(sd, bundle):
    fx, rt = sd
    b = _resources_bundle(bundle, "true", {"cpu": {"shares": 1}}, "system.slice:bock:bad1")
    err = _create_fails(fx, rt, b, "bock-bad1.scope")
    assert "CPUShares" in err, err


def test_a_file_limit_failing_after_the_unit_started_stops_the_unit(sd, bundle):
    fx, rt = sd
    # net_cls is not mounted on this host: the fs part fails after systemd made the scope
    if "net_cls" in fx.run(["cat", "/proc/self/mountinfo"]).stdout:
        pytest.skip("net_cls is mounted here")
    b = _resources_bundle(bundle, "true", {"network": {"classID": 7}}, "system.slice:bock:bad2")
    err = _create_fails(fx, rt, b, "bock-bad2.scope")
    assert "cannot set net_cls limit" in err, err


def test_update_sets_the_unit_properties(sd, bundle):
    fx, rt = sd
    cid = rt.new_id()
    b = _resources_bundle(bundle, "sleep 600", {"memory": {"limit": 64 * MiB}}, f"system.slice:bock:{cid}")
    res = _create(rt, b, cid)
    assert res.rc == 0, (res, b.output())
    rt("update", "--memory", str(96 * MiB), "--pids-limit", "33", cid).ok()
    props = fx.show(f"bock-{cid}.scope", "MemoryLimit", "TasksMax")
    assert props == {"MemoryLimit": str(96 * MiB), "TasksMax": "33"}
    mem = fx.run(["cat", f"/sys/fs/cgroup/memory/system.slice/bock-{cid}.scope/memory.limit_in_bytes"]).stdout
    assert int(mem) == 96 * MiB
    # the other commands find the container's cgroups through the same state
    pid = rt.state(cid)["pid"]
    assert str(pid) in rt("ps", "--format", "json", cid).ok().out
    rt("start", cid).ok()
    rt("pause", cid).ok()
    assert rt.status(cid) == "paused"
    assert (
        fx.run(["cat", f"/sys/fs/cgroup/freezer/system.slice/bock-{cid}.scope/freezer.state"]).stdout.strip()
        == "FROZEN"
    )
    rt("resume", cid).ok()
    assert rt.status(cid) == "running"
    rt("delete", "--force", cid).ok()
    assert fx.show(f"bock-{cid}.scope", "LoadState")["LoadState"] == "not-found"
    assert _leftover(fx, f"bock-{cid}.scope") == ""


@pytest.mark.skipif(not shutil.which("runc"), reason="runc is the oracle")
def test_same_unit_properties_as_runc(sd, bundle):
    fx, rt = sd
    names = [
        "Slice",
        "Delegate",
        "MemoryLimit",
        "CPUShares",
        "CPUQuotaPerSecUSec",
        "CPUQuotaPeriodUSec",
        "TasksMax",
        "DevicePolicy",
        "DeviceAllow",
        "MemoryAccounting",
        "CPUAccounting",
        "BlockIOAccounting",
        "TasksAccounting",
        "DefaultDependencies",
        "AllowedCPUs",
        "AllowedMemoryNodes",
        "BlockIOWeight",
        "Description",
    ]
    resources = dict(
        RESOURCES,
        cpu={"shares": 300, "quota": 33333, "period": 100000, "cpus": "0", "mems": "0"},
        memory={"limit": 64 * MiB, "reservation": 32 * MiB},
        blockIO={"weight": 300},
        devices=[
            {"allow": False, "access": "rwm"},
            {"allow": True, "type": "c", "major": 136, "access": "rw"},  # a /proc/devices group
            {"allow": True, "type": "b", "major": 8, "minor": 0, "access": "r"},
        ],
    )
    runc_root = str(pathlib.Path(rt.root).parent / "runc-state")
    seen = {}
    for who in ("bock", "runc"):
        cid = new_id()
        rt.ids.append(cid)  # bock's teardown deletes it; runc's is deleted below
        b = _resources_bundle(bundle, "sleep 600", resources, f"system.slice:{who}:{cid}")
        try:
            if who == "bock":
                res = _create(rt, b, cid)
                assert res.rc == 0, (res, b.output())
            else:
                with open(b.out_path, "ab") as out:
                    argv = [
                        "runc",
                        "--root",
                        runc_root,
                        "--systemd-cgroup",
                        "create",
                        "--bundle",
                        b.path,
                        cid,
                    ]
                    r = fx.run(argv, check=False, stdout=out, stderr=out, capture_output=False)
                assert r.returncode == 0, b.output()
            seen[who] = fx.show(f"{who}-{cid}.scope", *names)
            seen[who]["Description"] = seen[who]["Description"].replace(cid, "ID")
        finally:
            if who == "runc":
                fx.run(["runc", "--root", runc_root, "delete", "--force", cid], check=False)
    assert "char-pts rw" in seen["bock"]["DeviceAllow"], seen
    # bock also allows /dev/console (5:1), which runc 1.1's defaults lack (see _cgroups/README.md)
    seen["bock"]["DeviceAllow"] = seen["bock"]["DeviceAllow"].replace("/dev/char/5:1 rwm; ", "")
    assert seen["bock"] == seen["runc"], json.dumps(seen, indent=1)


@pytest.mark.parametrize("sd", ["v2"], indirect=True)
def test_v2_scope_with_device_rules_and_unified_keys(sd, bundle):
    """systemd in unified mode: v2 paths and properties; the files bock writes after systemd."""
    fx, rt = sd
    ctrls = fx.run(["cat", "/sys/fs/cgroup/cgroup.controllers"]).stdout.split()
    cid = rt.new_id()
    unit = f"bock-{cid}.scope"
    unified = {"hugetlb.2MB.max": str(4 * MiB)} if "hugetlb" in ctrls else {}
    resources = {
        "devices": [
            {"allow": False, "access": "rwm"},
            {"allow": True, "type": "c", "major": 136, "access": "rw"},
        ],
        "unified": unified,
    }
    b = _resources_bundle(
        bundle,
        "cat /proc/self/cgroup; echo x > /dev/null && echo null-ok; sleep 600",
        resources,
        f"system.slice:bock:{cid}",
    )
    res = _create(rt, b, cid)
    assert res.rc == 0, (res, b.output())
    props = fx.show(unit, "ControlGroup", "DevicePolicy", "DeviceAllow", "Delegate")
    assert props["ControlGroup"] == f"/system.slice/{unit}"
    assert props["DevicePolicy"] == "strict" and "char-pts rw" in props["DeviceAllow"], props
    pid = rt.state(cid)["pid"]
    assert fx.run(["cat", f"/proc/{pid}/cgroup"]).stdout.strip().endswith(f"0::/system.slice/{unit}")
    if unified:
        got = fx.run(["cat", f"/sys/fs/cgroup/system.slice/{unit}/hugetlb.2MB.max"]).stdout
        assert int(got) == 4 * MiB
    rt("start", cid).ok()
    assert "null-ok" in _wait_output(b, "null-ok"), b.output()
    rt("delete", "--force", cid).ok()
    assert fx.show(unit, "LoadState")["LoadState"] == "not-found"
    assert fx.run(["test", "-e", f"/sys/fs/cgroup/system.slice/{unit}"], check=False).returncode == 1


# --- podman 4.3 with --cgroup-manager systemd, driving bock and runc ---------------------


@pytest.fixture
def podman_sd(bock_bin: str):
    """podman inside the systemd fixture; ``call(runtime, *args)``. A short base directory:
    conmon's socket paths must fit in 108 bytes."""
    if not shutil.which("podman") or not shutil.which("conmon"):
        pytest.skip("podman/conmon are not installed")
    if not V1_HOST:
        pytest.skip("this case reads v1 files")
    base = tempfile.mkdtemp(prefix="bsd-", dir="/tmp")
    rootfs = os.path.join(base, "rootfs")
    os.makedirs(os.path.join(rootfs, "bin"))
    shutil.copy("/bin/busybox", os.path.join(rootfs, "bin", "busybox"))
    applets = subprocess.run(["/bin/busybox", "--list"], capture_output=True, text=True, check=True).stdout
    for applet in applets.split():
        if applet != "busybox":
            os.symlink("busybox", os.path.join(rootfs, "bin", applet))
    subprocess.run(["tar", "-C", rootfs, "-cf", os.path.join(base, "bb.tar"), "."], check=True)
    with open(os.path.join(base, "containers.conf"), "w") as f:
        f.write(
            '[containers]\nlog_driver = "k8s-file"\ndefault_ulimits = []\n'
            f'[network]\nnetwork_config_dir = "{base}/net"\n'
            f'[engine]\ncgroup_manager = "systemd"\nevents_logger = "file"\n'
            f'events_logfile_path = "{base}/events.log"\ntmp_dir = "{base}/tmp"\n'
            f'volume_path = "{base}/volumes"\nruntime_supports_json = ["bock", "runc"]\n'
            f'[engine.runtimes]\nbock = ["{bock_bin}"]\nrunc = ["{shutil.which("runc") or "/usr/sbin/runc"}"]\n'
        )
    with open(os.path.join(base, "storage.conf"), "w") as f:
        f.write(f'[storage]\ndriver = "overlay"\ngraphroot = "{base}/root"\nrunroot = "{base}/runroot"\n')
    env = [
        "env",
        "-i",
        "PATH=/usr/sbin:/usr/bin:/sbin:/bin",
        f"HOME={base}",
        f"CONTAINERS_CONF={base}/containers.conf",
        f"CONTAINERS_STORAGE_CONF={base}/storage.conf",
    ]
    podman = ["podman", "--root", f"{base}/root", "--runroot", f"{base}/runroot", "--tmpdir", f"{base}/tmp"]
    podman += ["--cgroup-manager", "systemd", "--events-backend", "file"]
    binds_ro = sorted({sys.prefix, os.path.dirname(RUNTIME), os.path.dirname(os.path.realpath(bock_bin))})
    fx = SystemdFixture(binds_rw=[base], binds_ro=binds_ro)
    try:
        fx.start()

        def call(runtime: str | None, *args: str, check: bool = True) -> subprocess.CompletedProcess:
            rt = ["--runtime", runtime] if runtime else []
            return fx.run([*env, *podman, *rt, *args], check=check, timeout=120)

        call(None, "import", f"{base}/bb.tar", "localhost/bb:latest")
        call.fx = fx
        yield call
        call(None, "rm", "-a", "-f", "-t", "0", check=False)
    finally:
        left = fx.stop()  # conmon and every mount die with the namespaces
        shutil.rmtree(base, ignore_errors=True)
    assert not left, left


def test_podman_systemd_cgroup_manager_same_scope_with_bock_as_with_runc(podman_sd):
    runtimes = ["bock", "runc"] if shutil.which("runc") else ["bock"]
    seen = {}
    for rt in runtimes:
        out = podman_sd(
            rt,
            "run",
            "--rm",
            "--network",
            "none",
            "--memory",
            "64m",
            "localhost/bb",
            "sh",
            "-c",
            "cat /proc/self/cgroup; cat /sys/fs/cgroup/memory/memory.limit_in_bytes",
        ).stdout
        lines = out.splitlines()
        assert lines[-1] == str(64 * MiB), out
        scopes = {line.split(":", 2)[2] for line in lines[:-1]}
        assert len(scopes) == 1 and scopes.pop().startswith("/machine.slice/libpod-"), out
        name = f"t-{rt}"
        cid = podman_sd(
            rt,
            "run",
            "-d",
            "--name",
            name,
            "--network",
            "none",
            "--memory",
            "64m",
            "--pids-limit",
            "55",
            "--cpu-shares",
            "256",
            "localhost/bb",
            "sleep",
            "600",
        ).stdout.strip()
        unit = f"libpod-{cid}.scope"
        props = podman_sd.fx.show(
            unit,
            "ActiveState",
            "Slice",
            "Delegate",
            "MemoryLimit",
            "TasksMax",
            "CPUShares",
            "DevicePolicy",
            "DeviceAllow",
            "Description",
        )
        props["Description"] = props["Description"].replace(cid, "ID")
        seen[rt] = props
        podman_sd(rt, "rm", "-f", "-t", "0", name)
        assert podman_sd.fx.show(unit, "LoadState")["LoadState"] == "not-found"
    bock = seen["bock"]
    assert bock["ActiveState"] == "active" and bock["Slice"] == "machine.slice", bock
    assert (bock["MemoryLimit"], bock["TasksMax"], bock["CPUShares"]) == (str(64 * MiB), "55", "256")
    if "runc" in seen:
        # bock's defaults also allow /dev/console (5:1), which runc 1.1's lack (see _cgroups/README.md)
        bock["DeviceAllow"] = bock["DeviceAllow"].replace("/dev/char/5:1 rwm; ", "")
        assert bock == seen["runc"], json.dumps(seen, indent=1)

"""config-linux.md: rootfsPropagation, uid/gid mappings, personality, time offsets, intelRdt, netDevices."""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

import pytest

from bock_conformance.cases.case_namespaces import chown_rootfs, run_userns

pytestmark = pytest.mark.section("linux")


def host_root_shared() -> bool:
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        if fields[4] == "/":
            return any(f.startswith("shared:") for f in fields[6 : fields.index("-")])
    return False


def root_mount_optional_fields(out: str) -> list[str]:
    for line in out.splitlines():
        fields = line.split()
        if fields[4] == "/":
            return fields[6 : fields.index("-")]
    return []


@pytest.mark.parametrize("prop,prefix", [("shared", "shared:"), ("slave", "master:"), ("private", None)])
def test_rootfs_propagation(kit, prop, prefix):
    if prop == "slave" and not host_root_shared():
        kit.skip_host("the host's / mount is private: a slave rootfs has no master peer group to show")

    def mutate(cfg):
        cfg["linux"]["rootfsPropagation"] = prop

    res = kit.sh("cat /proc/self/mountinfo", mutate)
    optional = root_mount_optional_fields(res.out)
    if prefix is None:
        assert optional == [], optional
    else:
        assert any(f.startswith(prefix) for f in optional), optional


def test_rootfs_propagation_unbindable(kit):
    def mutate(cfg):
        cfg["linux"]["rootfsPropagation"] = "unbindable"

    optional = root_mount_optional_fields(kit.sh("cat /proc/self/mountinfo", mutate).out)
    assert "unbindable" in optional, optional


def test_rootfs_propagation_invalid_fails(kit):
    def mutate(cfg):
        cfg["linux"]["rootfsPropagation"] = "bogus"

    kit.sh("true", mutate).expect_fail()


def test_uid_mapping_written(kit):
    res = run_userns(kit, "cat /proc/self/uid_map")
    assert res.out.split() == ["0", "100000", "65536"], res


def test_gid_mapping_written(kit):
    res = run_userns(kit, "cat /proc/self/gid_map")
    assert res.out.split() == ["0", "100000", "65536"], res


def test_userns_root_inside(kit):
    assert run_userns(kit, "id -u").out.strip() == "0"


def test_userns_files_owned_by_mapped_uid_on_host(kit):
    cfg = kit.config("echo x > /created")
    from bock_conformance.cases.case_namespaces import userns

    userns(cfg)
    bdir = kit.bundle(None)
    chown_rootfs(bdir / "rootfs")
    kit.run(cfg, bundle=bdir).expect_ok()
    assert os.stat(bdir / "rootfs" / "created").st_uid == 100000


def test_userns_setgroups_allowed(kit):
    res = run_userns(kit, "cat /proc/self/setgroups")
    assert res.out.strip() == "allow", res


def test_userns_unmapped_host_root_files_show_overflow(kit):
    cfg = kit.config("stat -c %u /hostroot-owned")
    from bock_conformance.cases.case_namespaces import userns

    userns(cfg)
    bdir = kit.bundle(None)
    chown_rootfs(bdir / "rootfs")
    f = bdir / "rootfs" / "hostroot-owned"
    f.write_text("x")
    os.chown(f, 0, 0)
    assert kit.run(cfg, bundle=bdir).out.strip() == "65534"


def test_mappings_without_user_namespace_fail(kit):
    def mutate(cfg):
        cfg["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
        cfg["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]

    kit.sh("true", mutate).expect_fail()


def test_userns_devices_usable(kit):
    res = run_userns(kit, "echo x > /dev/null && head -c1 /dev/zero | wc -c")
    assert res.out.strip() == "1", res


@pytest.mark.parametrize("domain,machine", [("LINUX32", ("i686", "i386")), ("LINUX", ("x86_64",))])
def test_personality(kit, domain, machine):
    if os.uname().machine != "x86_64":
        kit.skip_host("personality case written for x86_64 hosts")

    def mutate(cfg):
        cfg["linux"]["personality"] = {"domain": domain}

    assert kit.sh("uname -m", mutate).out.strip() in machine


def time_offsets(cfg, secs):
    cfg["linux"]["namespaces"].append({"type": "time"})
    cfg["linux"]["timeOffsets"] = {
        "monotonic": {"secs": secs, "nanosecs": 0},
        "boottime": {"secs": secs, "nanosecs": 0},
    }


def test_time_offset_boottime(kit):
    if not os.path.exists("/proc/self/ns/time"):
        kit.skip_host("kernel without time namespaces")
    host_uptime = float(Path("/proc/uptime").read_text().split()[0])
    res = kit.sh("cut -d' ' -f1 /proc/uptime", lambda cfg: time_offsets(cfg, 86400 * 10))
    inside = float(res.out.strip() or 0)
    assert inside - host_uptime > 86400 * 9, res


def test_time_offset_monotonic(kit):
    if not os.path.exists("/proc/self/ns/time"):
        kit.skip_host("kernel without time namespaces")
    res = kit.sh("cat /proc/self/timens_offsets", lambda cfg: time_offsets(cfg, 12345))
    assert "monotonic" in res.out and "12345" in res.out, res


def test_intel_rdt(kit):
    if not os.path.exists("/sys/fs/resctrl/schemata"):
        kit.skip_host("no resctrl filesystem (Intel RDT) mounted")
    cfg = kit.config("sleep 300")
    cfg["linux"]["intelRdt"] = {"closID": f"bockconf{uuid.uuid4().hex[:6]}"}
    ctr = kit.create(cfg)
    path = f"/sys/fs/resctrl/{cfg['linux']['intelRdt']['closID']}/tasks"
    assert str(ctr.pid) in Path(path).read_text()


def test_net_device_moved_into_container(kit):
    name = f"bc{uuid.uuid4().hex[:8]}"
    made = subprocess.run(["ip", "link", "add", name, "type", "dummy"], capture_output=True)
    if made.returncode != 0:
        kit.skip_host(f"cannot create a dummy link: {made.stderr.decode().strip()}")
    kit.on_cleanup(lambda: subprocess.run(["ip", "link", "del", name], capture_output=True))

    def mutate(cfg):
        cfg["linux"]["netDevices"] = {name: {"name": "eth1"}}

    res = kit.sh("ls /sys/class/net", mutate)
    assert "eth1" in res.out.split(), res

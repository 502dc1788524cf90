"""config-linux.md "namespaces": new ones, joined by path, and the errors."""

from __future__ import annotations

import os

import pytest

from bock_conformance import _host

pytestmark = pytest.mark.section("namespaces")

MAPPING = [{"containerID": 0, "hostID": 100000, "size": 65536}]


def userns(cfg):
    cfg["linux"]["namespaces"].append({"type": "user"})
    cfg["linux"]["uidMappings"] = MAPPING
    cfg["linux"]["gidMappings"] = MAPPING
    # sysfs and the cgroup mount are not allowed in a user namespace without a network namespace owner
    cfg["mounts"] = [m for m in cfg["mounts"] if m["destination"] not in ("/sys/fs/cgroup",)]


def chown_rootfs(path, uid=100000):
    os.chown(path, uid, uid, follow_symlinks=False)
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            os.chown(os.path.join(root, name), uid, uid, follow_symlinks=False)


def run_userns(kit, script, mutate=None):
    cfg = kit.config(script)
    userns(cfg)
    if mutate:
        mutate(cfg)
    bdir = kit.bundle(None)
    chown_rootfs(bdir / "rootfs")
    return kit.run(cfg, bundle=bdir)


NEW = ["pid", "network", "ipc", "uts", "mount", "cgroup"]
PROC = {"network": "net", "mount": "mnt"}


@pytest.mark.parametrize("kind", NEW)
def test_new_namespace(kit, kind):
    link = PROC.get(kind, kind)

    def add(cfg):
        if not any(n["type"] == kind for n in cfg["linux"]["namespaces"]):
            cfg["linux"]["namespaces"].append({"type": kind})

    inside = kit.sh(f"readlink /proc/self/ns/{link}", add).out.strip()
    assert inside and inside != _host.ns_inode("self", link)


def test_new_user_namespace(kit):
    inside = run_userns(kit, "readlink /proc/self/ns/user").out.strip()
    assert inside and inside != _host.ns_inode("self", "user")


def test_new_time_namespace(kit):
    if not os.path.exists("/proc/self/ns/time"):
        kit.skip_host("kernel without time namespaces")

    def add(cfg):
        cfg["linux"]["namespaces"].append({"type": "time"})

    inside = kit.sh("readlink /proc/self/ns/time", add).out.strip()
    assert inside and inside != _host.ns_inode("self", "time")


@pytest.mark.parametrize("kind", ["network", "ipc", "uts"])
def test_namespace_not_listed_is_shared_with_host(kit, kind):
    link = PROC.get(kind, kind)

    def drop(cfg):
        cfg["linux"]["namespaces"] = [n for n in cfg["linux"]["namespaces"] if n["type"] != kind]
        if kind == "uts":
            cfg.pop("hostname", None)

    assert kit.sh(f"readlink /proc/self/ns/{link}", drop).out.strip() == _host.ns_inode("self", link)


def test_pid_namespace_process_is_pid1(kit):
    assert kit.sh("echo $$").out.strip() == "1"


def test_pid_namespace_hides_host_processes(kit):
    # busybox runs a pipeline's applets by re-executing itself through /proc/self/exe, so one
    # of ours may briefly be called "exe"
    res = kit.sh(
        "cat /proc/[0-9]*/comm 2>/dev/null | sort -u | grep -vxE 'sh|cat|sort|grep|exe' || echo none"
    )
    assert res.out.strip() == "none", res


def test_network_namespace_has_only_loopback(kit):
    assert kit.sh("ls /sys/class/net").out.split() == ["lo"]


def test_cgroup_namespace_root(kit):
    def add(cfg):
        cfg["linux"]["namespaces"].append({"type": "cgroup"})

    lines = kit.sh("cat /proc/self/cgroup", add).out.splitlines()
    assert lines and all(line.split(":", 2)[2] == "/" for line in lines), lines


@pytest.mark.parametrize("kind", ["network", "ipc", "uts", "pid", "cgroup"])
def test_join_namespace_by_path(kit, kind):
    link = PROC.get(kind, kind)

    def add(cfg):
        if not any(n["type"] == kind for n in cfg["linux"]["namespaces"]):
            cfg["linux"]["namespaces"].append({"type": kind})

    first_cfg = kit.config("sleep 300")
    add(first_cfg)
    first = kit.create(first_cfg)
    target = _host.ns_inode(first.pid, link)

    def join(cfg):
        add(cfg)
        for n in cfg["linux"]["namespaces"]:
            if n["type"] == kind:
                n["path"] = f"/proc/{first.pid}/ns/{link}"
        if kind == "uts":
            cfg.pop("hostname", None)

    assert kit.sh(f"readlink /proc/self/ns/{link}", join).out.strip() == target


def test_join_namespace_of_host_process(kit):
    proc = kit.spawn(["unshare", "--net", "sleep", "300"])
    import time

    for _ in range(100):
        if _host.ns_inode(proc.pid, "net") != _host.ns_inode("self", "net"):
            break
        time.sleep(0.02)
    target = _host.ns_inode(proc.pid, "net")

    def join(cfg):
        for n in cfg["linux"]["namespaces"]:
            if n["type"] == "network":
                n["path"] = f"/proc/{proc.pid}/ns/net"

    assert kit.sh("readlink /proc/self/ns/net", join).out.strip() == target


def test_join_missing_namespace_path_fails(kit):
    def join(cfg):
        for n in cfg["linux"]["namespaces"]:
            if n["type"] == "network":
                n["path"] = "/proc/999999999/ns/net"

    kit.sh("true", join).expect_fail()


def test_join_namespace_of_wrong_type_fails(kit):
    def join(cfg):
        for n in cfg["linux"]["namespaces"]:
            if n["type"] == "network":
                n["path"] = "/proc/self/ns/ipc"

    kit.sh("true", join).expect_fail()


def test_duplicate_namespace_type_fails(kit):
    def dup(cfg):
        cfg["linux"]["namespaces"].append({"type": "network"})

    kit.sh("true", dup).expect_fail()


def test_unknown_namespace_type_fails(kit):
    def bogus(cfg):
        cfg["linux"]["namespaces"].append({"type": "bogus"})

    kit.sh("true", bogus).expect_fail()

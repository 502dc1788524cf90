"""config.md "hostname", "domainname" and "root" (path, readonly)."""

from __future__ import annotations

import os
import socket

import pytest

HOST = pytest.mark.section("hostname")
ROOT = pytest.mark.section("root")


def without_ns(kind):
    def mutate(cfg):
        cfg["linux"]["namespaces"] = [n for n in cfg["linux"]["namespaces"] if n["type"] != kind]

    return mutate


@HOST
def test_hostname_set(kit):
    assert kit.sh("hostname").out.strip() == "conformance"


@HOST
def test_hostname_in_proc(kit):
    assert kit.sh("cat /proc/sys/kernel/hostname").out.strip() == "conformance"


@HOST
def test_domainname_set(kit):
    def dom(cfg):
        cfg["domainname"] = "conf.example"

    assert kit.sh("cat /proc/sys/kernel/domainname", dom).out.strip() == "conf.example"


@HOST
def test_hostname_without_uts_namespace_fails(kit):
    kit.sh("hostname", without_ns("uts")).expect_fail()


@HOST
def test_host_hostname_unchanged(kit):
    before = socket.gethostname()
    kit.sh("hostname").expect_ok()
    assert socket.gethostname() == before


@HOST
def test_uts_namespace_without_hostname_keeps_host_name(kit):
    def nohost(cfg):
        del cfg["hostname"]

    assert kit.sh("hostname", nohost).out.strip() == socket.gethostname()


@ROOT
def test_root_path_relative(kit):
    assert kit.sh("cat /etc/hostname").out.strip() == "rootfs"


@ROOT
def test_root_path_absolute(kit):
    cfg = kit.config("cat /etc/hostname")
    bdir = kit.bundle(None)
    cfg["root"]["path"] = str(bdir / "rootfs")
    assert kit.run(cfg, bundle=bdir).out.strip() == "rootfs"


@ROOT
def test_root_readonly_denies_writes(kit):
    def ro(cfg):
        cfg["root"]["readonly"] = True

    res = kit.sh("touch /newfile 2>&1; echo rc=$?", ro)
    assert "rc=0" not in res.out and "Read-only" in res.out


@ROOT
def test_root_readonly_shows_ro_mount(kit):
    def ro(cfg):
        cfg["root"]["readonly"] = True

    line = next(ln for ln in kit.sh("cat /proc/self/mountinfo", ro).out.splitlines() if ln.split()[4] == "/")
    assert "ro" in line.split()[5].split(",")


@ROOT
def test_root_readonly_keeps_tmpfs_mounts_writable(kit):
    def ro(cfg):
        cfg["root"]["readonly"] = True

    assert kit.sh("touch /dev/shm/x && echo ok", ro).out.strip() == "ok"


@ROOT
def test_root_writable_by_default(kit):
    cfg = kit.config("echo data > /written")
    bdir = kit.bundle(cfg)
    kit.run(cfg, bundle=bdir).expect_ok()
    assert kit.host_read(bdir / "rootfs" / "written") == "data\n"


@ROOT
def test_root_is_the_rootfs_only(kit):
    marker = kit.path("host-only-marker")
    marker.write_text("x")
    res = kit.sh(f"test -e {marker} && echo visible || echo hidden")
    assert res.out.strip() == "hidden"


@ROOT
def test_root_slash_is_rootfs_mount(kit):
    assert sorted(kit.sh("ls /").out.split()) == sorted(
        ["bin", "dev", "etc", "home", "mnt", "proc", "root", "run", "sbin", "sys", "tmp", "usr", "var"]
    )


@ROOT
def test_no_pivot_runs(kit):
    cfg = kit.config("cat /etc/hostname")
    bdir = kit.bundle(cfg)
    res = kit.cli("run", "--no-pivot", "--bundle", bdir, kit.new_id())
    assert res.out.strip() == "rootfs"


@ROOT
def test_root_path_symlink_followed_or_clearly_rejected(kit):
    bdir = kit.bundle(None)
    os.symlink("rootfs", bdir / "rootlink")
    cfg = kit.config("cat /etc/hostname")
    cfg["root"]["path"] = "rootlink"
    res = kit.run(cfg, bundle=bdir)
    assert res.out.strip() == "rootfs" or (res.rc != 0 and res.err.strip()), res

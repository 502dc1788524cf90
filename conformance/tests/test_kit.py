"""The per-case kit against a real runtime: normalisation and cleanup even with a running container."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from bock_conformance import _host
from bock_conformance._kit import Kit

pytestmark = pytest.mark.root


def test_normalize_replaces_ids_paths_and_cgroups():
    kit = Kit("/usr/sbin/runc")
    try:
        cid, cg = kit.new_id(), kit.new_cgroup()
        text = f"{cid} in {kit.dir}/x and {cg}"
        assert kit.normalize(text) == "<ID0> in <W>/x and /<CG0>"
    finally:
        kit.close()


def test_close_removes_running_container_cgroup_and_dir(reference_runtime):
    kit = Kit(reference_runtime)
    ctr = kit.started("sleep 300")
    pid, path = ctr.pid, ctr.config["linux"]["cgroupsPath"]
    assert _host.existing_cgroup_dirs(path)
    kit.close()
    assert not kit.dir.exists()
    assert _host.existing_cgroup_dirs(path) == []
    assert not os.path.exists(f"/proc/{pid}") or Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"


def test_rootfs_has_busybox_applets(tmp_path):
    from bock_conformance._rootfs import build_rootfs

    root = build_rootfs(tmp_path / "rootfs")
    assert (
        os.readlink(root / "bin" / "sh") == "busybox" and (root / "bin" / "busybox").stat().st_size > 100_000
    )


def test_normalize_hides_namespace_inodes_and_mount_ids():
    kit = Kit("/usr/sbin/runc")
    try:
        text = "net:[4026532301]\n123 99 0:45 / /proc rw shared:7 - proc proc rw\n"
        assert kit.normalize(text) == "net:[<INO>]\n<MNT> <MNT> <DEV> / /proc rw shared:<N> - proc proc rw\n"
    finally:
        kit.close()

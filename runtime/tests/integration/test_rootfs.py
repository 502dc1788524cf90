"""The container's root: a bind mount with rootfsPropagation, pivot_root or chroot
(--no-pivot), root.readonly, relative and absolute root.path, and a rootfs the caller
mounted already (tmpfs, overlay)."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess

import pytest
from _support.mounts import mount, mountinfo_entries, mounts_under, unmount_all_under

pytestmark = pytest.mark.root

MS_SHARED = 1 << 20


def root_entry(mountinfo: str) -> dict:
    (entry,) = [e for e in mountinfo_entries(mountinfo) if e["point"] == "/"]
    return entry


def mountinfo_from_setns(pid: int) -> str:
    """/proc/self/mountinfo of a process that setns()'d into the container's mount and pid
    namespaces from the host: its root is then the namespace's root mount."""
    return subprocess.run(
        [
            "nsenter",
            f"--mount=/proc/{pid}/ns/mnt",
            f"--pid=/proc/{pid}/ns/pid",
            "/bin/cat",
            "/proc/self/mountinfo",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout


@contextlib.contextmanager
def tmpfs_rootfs(b, template: str):
    """The caller mounts a tmpfs at bundle/rootfs and fills it (as containerd mounts layers)."""
    os.mkdir(b.rootfs)
    with mounted("tmpfs", b.rootfs, "tmpfs", "mode=755"):
        shutil.copytree(template, b.rootfs, symlinks=True, dirs_exist_ok=True)
        yield b.rootfs


@contextlib.contextmanager
def mounted(source: str, target: str, fstype: str, data: str | None = None):
    mount(source, target, fstype, 0, data)
    try:
        yield target
    finally:
        unmount_all_under([target])


def test_root_is_a_bind_of_the_rootfs_and_pivoted(runtime, bundle):
    b = bundle("cat", "/proc/self/mountinfo")
    res = runtime.run(b).ok()
    root = root_entry(res.out)
    st = os.stat(b.rootfs)
    assert root["root"].endswith(b.rootfs)  # the rootfs dir of the host filesystem, bound
    # nothing of the host's tree stays visible: every mount is / or below the container's mounts
    points = [e["point"] for e in mountinfo_entries(res.out)]
    assert not any(b.rootfs in p for p in points)
    assert st.st_ino  # rootfs still there on the host


@pytest.mark.parametrize(
    ("prop", "tag"),
    # the values the runtime-spec schema allows (runc also takes rshared, rslave, ...)
    [("shared", "shared:"), ("private", None), ("slave", None)],
)
def test_rootfs_propagation(runtime, bundle, prop, tag):
    b = bundle("cat", "/proc/self/mountinfo")
    b.config["linux"]["rootfsPropagation"] = prop
    b.save()
    root = root_entry(runtime.run(b).ok().out)
    if tag:
        assert any(t.startswith(tag) for t in root["tags"]), root
    else:
        assert not any(t.startswith(("shared:", "unbindable")) for t in root["tags"]), root
    # the fixture also checks that no mount leaked into the host's namespace


def test_rootfs_propagation_unbindable(runtime, bundle):
    # runc (1.1 to 1.5) makes / unbindable first, so binding the rootfs fails with EINVAL;
    # bock binds it private and makes the container's / unbindable after pivot_root
    b = bundle("cat", "/proc/self/mountinfo")
    b.config["linux"]["rootfsPropagation"] = "unbindable"
    b.save()
    root = root_entry(runtime.run(b).ok().out)
    assert "unbindable" in root["tags"], root


def test_pivot_root_leaves_no_host_tree(runtime, bundle):
    b = bundle("sleep", "60")
    cid = runtime.create(b)
    pid = runtime.state(cid)["pid"]
    # setns into the container's mount namespace: its root is the rootfs (pivot_root)
    mountinfo = mountinfo_from_setns(pid)
    assert not any(e["point"].startswith(b.rootfs) for e in mountinfo_entries(mountinfo))
    root = root_entry(mountinfo)
    assert root["root"].endswith(b.rootfs)


def test_no_pivot_uses_chroot(runtime, bundle):
    b = bundle("sleep", "60")
    cid = runtime.create(b, None, "--no-pivot")
    pid = runtime.state(cid)["pid"]
    # the rootfs was moved over the namespace's / (what is under it cannot be seen from here)
    mountinfo = mountinfo_from_setns(pid)
    root = root_entry(mountinfo)
    assert root["root"].endswith(b.rootfs)
    runtime.start(cid)
    res = runtime.run(
        bundle("sh", "-c", "ls /; cat /proc/self/mountinfo", name="np"), None, "--no-pivot"
    ).ok()
    assert "busybox" not in res.out.split()  # ls / lists the rootfs: bin etc proc ...
    assert "bin" in res.out.split()


def test_no_pivot_forms(runtime, bundle):
    for form in ("--no-pivot", "-no-pivot", "--no-pivot=true"):
        res = runtime.run(bundle("true"), None, form)
        assert res.rc == 0, (form, res)


def test_readonly_root(runtime, bundle):
    b = bundle("sh", "-c", "touch /newfile 2>&1; echo rc=$?; touch /tmp/x 2>&1; echo rc=$?")
    b.config["root"]["readonly"] = True
    b.save()
    out = runtime.run(b).ok().out
    assert "Read-only file system" in out
    assert "rc=1" in out
    assert not os.path.exists(os.path.join(b.rootfs, "newfile"))


def test_writable_root(runtime, bundle):
    b = bundle("sh", "-c", "echo hi > /newfile && cat /proc/self/mountinfo")
    b.config["root"]["readonly"] = False
    b.save()
    out = runtime.run(b).ok().out
    assert "rw" in root_entry(out)["options"]
    with open(os.path.join(b.rootfs, "newfile")) as f:
        assert f.read() == "hi\n"


def test_readonly_root_with_no_pivot(runtime, bundle):
    b = bundle("sh", "-c", "touch /newfile 2>&1; echo rc=$?")
    b.config["root"]["readonly"] = True
    b.save()
    out = runtime.run(b, None, "--no-pivot").ok().out
    assert "rc=1" in out and not os.path.exists(os.path.join(b.rootfs, "newfile"))


def test_absolute_root_path(runtime, bundle, tmp_path, rootfs_template):
    elsewhere = tmp_path / "elsewhere" / "myroot"
    shutil.copytree(rootfs_template, elsewhere, symlinks=True)
    (elsewhere / "marker").write_text("absolute\n")
    b = bundle("cat", "/marker", rootfs=False)
    b.config["root"]["path"] = str(elsewhere)
    b.save()
    cid = runtime.new_id()
    assert runtime.run(b, cid).ok().out == "absolute\n"


def test_relative_root_path(runtime, bundle, rootfs_template):
    b = bundle("cat", "/marker", rootfs=False)
    target = os.path.join(b.path, "deeper", "fs")
    shutil.copytree(rootfs_template, target, symlinks=True)
    with open(os.path.join(target, "marker"), "w") as f:
        f.write("relative\n")
    b.config["root"]["path"] = "deeper/fs"
    b.save()
    cid = runtime.create(b)
    assert runtime.state(cid)["rootfs"] == target
    runtime.start(cid)
    import time

    deadline = time.monotonic() + 10
    while b.output() != "relative\n":
        assert time.monotonic() < deadline, b.output()
        time.sleep(0.02)


def test_rootfs_mounted_by_the_caller_tmpfs(runtime, bundle, rootfs_template):
    b = bundle("sh", "-c", "cat /proc/self/mountinfo; echo hi > /written", rootfs=False)
    b.config["root"]["readonly"] = False
    b.save()
    with tmpfs_rootfs(b, rootfs_template):
        res = runtime.run(b).ok()
        assert root_entry(res.out)["fstype"] == "tmpfs"
        # bock did not unmount what it did not mount; the container's write landed in it
        assert mounts_under([b.rootfs]) == [b.rootfs]
        with open(os.path.join(b.rootfs, "written")) as f:
            assert f.read() == "hi\n"


def test_rootfs_mounted_by_the_caller_overlay(runtime, bundle, rootfs_template, tmp_path):
    lower, upper, work = tmp_path / "lower", tmp_path / "upper", tmp_path / "work"
    shutil.copytree(rootfs_template, lower, symlinks=True)
    upper.mkdir()
    work.mkdir()
    b = bundle("sh", "-c", "cat /proc/self/mountinfo; echo layer > /etc/new", rootfs=False)
    b.config["root"]["readonly"] = False
    b.save()
    os.mkdir(b.rootfs)
    with mounted("overlay", b.rootfs, "overlay", f"lowerdir={lower},upperdir={upper},workdir={work}"):
        res = runtime.run(b).ok()
        assert root_entry(res.out)["fstype"] == "overlay"
        assert mounts_under([b.rootfs]) == [b.rootfs]
    assert (upper / "etc" / "new").read_text() == "layer\n"
    assert not (lower / "etc" / "new").exists()


def test_rootfs_that_is_a_symlink(runtime, bundle, rootfs_template):
    b = bundle("cat", "/marker", rootfs=False)
    real = os.path.join(b.path, "real-rootfs")
    shutil.copytree(rootfs_template, real, symlinks=True)
    with open(os.path.join(real, "marker"), "w") as f:
        f.write("via link\n")
    os.symlink("real-rootfs", b.rootfs)
    assert runtime.run(b).ok().out == "via link\n"


def test_readonly_root_on_a_caller_mounted_tmpfs_keeps_the_host_mount_rw(runtime, bundle, rootfs_template):
    b = bundle("sh", "-c", "touch /x 2>&1; echo rc=$?", rootfs=False)
    b.config["root"]["readonly"] = True
    b.save()
    with tmpfs_rootfs(b, rootfs_template):
        assert "rc=1" in runtime.run(b).ok().out
        with open(os.path.join(b.rootfs, "host-can-write"), "w") as f:
            f.write("yes")


@pytest.mark.parametrize("name", ["with space", "tab\there", "uni-ñ"])
def test_bundle_path_with_odd_characters(runtime, bundle, name):
    b = bundle("sh", "-c", "echo ok; cat /proc/self/mountinfo", name=name)
    b.config["linux"]["rootfsPropagation"] = "shared"
    b.save()
    res = runtime.run(b).ok()
    assert res.out.startswith("ok\n")
    assert runtime.raw(["--root", runtime.root, "list", "-q"]).ok().out == ""


@pytest.mark.parametrize("prop", [None, "shared", "slave", "private"])
def test_rootfs_under_a_shared_mount_leaks_no_mount_to_the_host(
    runtime, bundle, tmp_path, rootfs_template, prop
):
    """containerd's and podman's state lives under shared mounts (systemd makes / shared):
    the container's mounts must not propagate back into the host's namespace."""
    shared = tmp_path / "shared"
    shared.mkdir()
    with mounted("tmpfs", str(shared), "tmpfs", "mode=755"):
        mount("", str(shared), "", MS_SHARED)
        b = bundle("sh", "-c", "cat /proc/self/mountinfo", base=shared, rootfs=False)
        shutil.copytree(rootfs_template, b.rootfs, symlinks=True)
        if prop:
            b.config["linux"]["rootfsPropagation"] = prop
            b.save()
        cid = runtime.create(b)
        try:
            # while the container exists, the host sees no new mount below the shared tmpfs
            assert mounts_under([str(shared)]) == [str(shared)]
            runtime.start(cid)
        finally:
            runtime("delete", "--force", cid)
        assert mounts_under([str(shared)]) == [str(shared)]

"""config.json mounts: in order, with options and propagation, every type the runtime-spec
lists; destinations resolved inside the rootfs (a symlink or ``..`` cannot lead out)."""

from __future__ import annotations

import os

import pytest
from _support.mounts import mountinfo_entries, mounts_under

pytestmark = pytest.mark.root


def entries_at(out: str, point: str) -> list[dict]:
    return [e for e in mountinfo_entries(out) if e["point"] == point]


def one_at(out: str, point: str) -> dict:
    found = entries_at(out, point)
    assert found, f"nothing mounted at {point}"
    return found[-1]


def test_default_mounts_and_their_options(runtime, bundle):
    out = runtime.run(bundle("cat", "/proc/self/mountinfo")).ok().out
    assert one_at(out, "/proc")["fstype"] == "proc"
    dev = one_at(out, "/dev")
    assert dev["fstype"] == "tmpfs" and "nosuid" in dev["options"]
    assert "mode=755" in dev["super"] and "size=65536k" in dev["super"]
    pts = one_at(out, "/dev/pts")
    assert pts["fstype"] == "devpts" and {"nosuid", "noexec"} <= set(pts["options"])
    assert "ptmxmode=666" in pts["super"] and "mode=620" in pts["super"] and "gid=5" in pts["super"]
    shm = one_at(out, "/dev/shm")
    assert shm["fstype"] == "tmpfs" and {"nosuid", "noexec", "nodev"} <= set(shm["options"])
    assert one_at(out, "/dev/mqueue")["fstype"] == "mqueue"
    sysfs = one_at(out, "/sys")
    assert sysfs["fstype"] == "sysfs" and "ro" in sysfs["options"]
    cg = entries_at(out, "/sys/fs/cgroup") + [
        e for e in mountinfo_entries(out) if e["point"].startswith("/sys/fs/cgroup/")
    ]
    assert cg and all("ro" in e["options"] for e in cg)
    assert any(e["fstype"] in ("cgroup", "cgroup2") for e in cg)
    # in the order of config.json: mountinfo lists a namespace's mounts in the order they were
    # made (mount ids are not ordered: the kernel reuses the ones other tests just freed)
    points = [e["point"] for e in mountinfo_entries(out)]
    wanted = ("/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys")
    order = [len(points) - 1 - points[::-1].index(p) for p in wanted]
    assert order == sorted(order), list(zip(wanted, order, strict=True))


def test_mounts_are_applied_in_order(runtime, bundle, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "file").write_text("from the bind\n")
    b = bundle("sh", "-c", "cat /a/b/file; ls /a")
    b.add_mount("/a", "tmpfs", "tmpfs", ["mode=755"])
    b.add_mount("/a/b", "bind", str(src), ["bind"])  # lands inside the tmpfs above
    out = runtime.run(b).ok().out
    assert out.splitlines() == ["from the bind", "b"]
    assert not os.path.exists(os.path.join(b.rootfs, "a", "b"))  # created in the tmpfs, not the rootfs


def test_bind_options_ro_nosuid_nodev_noexec(runtime, bundle, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    b = bundle("sh", "-c", "cat /proc/self/mountinfo; touch /data/x 2>&1; echo rc=$?")
    b.add_mount("/data", "bind", str(src), ["bind", "ro", "nosuid", "nodev", "noexec"])
    out = runtime.run(b).ok().out
    e = one_at(out, "/data")
    assert {"ro", "nosuid", "nodev", "noexec"} <= set(e["options"])
    assert "rc=1" in out and not (src / "x").exists()


def test_bind_rw_writes_through(runtime, bundle, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    b = bundle("sh", "-c", "echo written > /data/x")
    b.add_mount("/data", "none", str(src), ["bind", "rw"])
    runtime.run(b).ok()
    assert (src / "x").read_text() == "written\n"


def test_bind_of_a_file(runtime, bundle, tmp_path):
    src = tmp_path / "hosts"
    src.write_text("10.0.0.1 example\n")
    b = bundle("cat", "/etc/hosts")
    b.add_mount("/etc/hosts", "bind", str(src), ["bind", "ro"])
    assert runtime.run(b).ok().out == "10.0.0.1 example\n"


def test_rbind_carries_submounts_and_bind_does_not(runtime, bundle, tmp_path, no_mounts_left):
    from _support.mounts import mount, umount

    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    mount("tmpfs", str(src / "sub"), "tmpfs", 0, "mode=755")
    try:
        (src / "sub" / "inner").write_text("submount\n")
        b = bundle("sh", "-c", "cat /r/sub/inner; ls /b/sub | wc -l")
        b.add_mount("/r", "bind", str(src), ["rbind"])
        b.add_mount("/b", "bind", str(src), ["bind"])
        out = runtime.run(b).ok().out.split()
        assert out == ["submount", "0"]
    finally:
        umount(str(src / "sub"))


@pytest.mark.parametrize(
    ("prop", "tag"), [("shared", "shared:"), ("rshared", "shared:"), ("private", None), ("rprivate", None)]
)
def test_bind_propagation(runtime, bundle, tmp_path, prop, tag):
    src = tmp_path / "src"
    src.mkdir()
    b = bundle("cat", "/proc/self/mountinfo")
    b.add_mount("/data", "bind", str(src), ["rbind", prop])
    e = one_at(runtime.run(b).ok().out, "/data")
    if tag:
        assert any(t.startswith(tag) for t in e["tags"]), e
    else:
        assert not any(t.startswith("shared:") for t in e["tags"]), e


def test_tmpfs_options(runtime, bundle):
    b = bundle("sh", "-c", "cat /proc/self/mountinfo; stat -c %a /scratch")
    b.add_mount("/scratch", "tmpfs", "tmpfs", ["nosuid", "nodev", "noexec", "size=1m", "mode=1770"])
    out = runtime.run(b).ok().out
    e = one_at(out, "/scratch")
    assert e["fstype"] == "tmpfs" and {"nosuid", "nodev", "noexec"} <= set(e["options"])
    assert "size=1024k" in e["super"] and "mode=1770" in e["super"]
    assert out.splitlines()[-1] == "1770"


def test_proc_sysfs_devpts_mqueue_at_other_places(runtime, bundle):
    b = bundle("cat", "/proc/self/mountinfo")
    b.add_mount("/mnt/proc2", "proc", "proc", ["nosuid", "noexec"])
    b.add_mount("/mnt/sys2", "sysfs", "sysfs", ["ro"])
    b.add_mount("/mnt/pts2", "devpts", "devpts", ["newinstance", "ptmxmode=0600"])
    b.add_mount("/mnt/mq2", "mqueue", "mqueue", ["nodev"])
    out = runtime.run(b).ok().out
    assert one_at(out, "/mnt/proc2")["fstype"] == "proc"
    assert "noexec" in one_at(out, "/mnt/proc2")["options"]
    assert one_at(out, "/mnt/sys2")["fstype"] == "sysfs" and "ro" in one_at(out, "/mnt/sys2")["options"]
    assert (
        one_at(out, "/mnt/pts2")["fstype"] == "devpts" and "ptmxmode=600" in one_at(out, "/mnt/pts2")["super"]
    )
    assert one_at(out, "/mnt/mq2")["fstype"] == "mqueue"


def test_cgroup_mount_shows_the_containers_own_cgroup(runtime, bundle):
    b = bundle("sh", "-c", "cat /proc/self/mountinfo; cat /proc/self/cgroup")
    out = runtime.run(b).ok().out
    cg = [e for e in mountinfo_entries(out) if e["fstype"] in ("cgroup", "cgroup2")]
    assert cg
    assert all(e["point"].startswith("/sys/fs/cgroup") for e in cg)


def test_relative_destination_is_inside_the_rootfs(runtime, bundle):
    b = bundle("cat", "/proc/self/mountinfo")
    b.add_mount("relative/dir", "tmpfs", "tmpfs")
    assert one_at(runtime.run(b).ok().out, "/relative/dir")["fstype"] == "tmpfs"


# -- destinations that try to leave the rootfs ------------------------------------------------


def _host_dir(tmp_path):
    host = tmp_path / "host-target"
    host.mkdir()
    (host / "keep").write_text("host data\n")
    return host


def _assert_host_untouched(host, tmp_path):
    assert sorted(os.listdir(host)) == ["keep"]
    assert (host / "keep").read_text() == "host data\n"
    assert not mounts_under([str(host)])


@pytest.mark.parametrize("kind", ["absolute", "relative"])
def test_symlink_destination_stays_inside(runtime, bundle, tmp_path, kind):
    host = _host_dir(tmp_path)
    b = bundle("sh", "-c", f"cat /proc/self/mountinfo; echo x > /evil/new; ls {host}")
    link = os.path.join(b.rootfs, "evil")
    os.symlink(str(host) if kind == "absolute" else "../" * 30 + str(host).lstrip("/"), link)
    b.config["root"]["readonly"] = False
    b.add_mount("/evil", "tmpfs", "tmpfs")
    cid = runtime.new_id()
    out = runtime.run(b, cid).ok().out
    # the tmpfs landed on <rootfs>/<host path>: inside the container, not on the host
    assert one_at(out, str(host))["fstype"] == "tmpfs"
    _assert_host_untouched(host, tmp_path)
    assert os.path.isdir(os.path.join(b.rootfs, str(host).lstrip("/")))


def test_dotdot_destination_stays_inside(runtime, bundle, tmp_path):
    host = _host_dir(tmp_path)
    rel = os.path.relpath(str(host), "/")
    b = bundle("sh", "-c", "cat /proc/self/mountinfo; echo x > /" + rel + "/new")
    b.config["root"]["readonly"] = False
    b.add_mount("/../../../../../../../../" + rel, "tmpfs", "tmpfs")
    out = runtime.run(b).ok().out
    assert one_at(out, "/" + rel)["fstype"] == "tmpfs"
    _assert_host_untouched(host, tmp_path)


def test_bind_destination_through_symlinked_parent_stays_inside(runtime, bundle, tmp_path):
    host = _host_dir(tmp_path)
    src = tmp_path / "src"
    src.mkdir()
    (src / "payload").write_text("payload\n")
    b = bundle("true")
    os.symlink(str(host), os.path.join(b.rootfs, "etc", "evil-parent"))
    b.add_mount("/etc/evil-parent/sub", "bind", str(src), ["bind"])
    runtime.run(b).ok()
    _assert_host_untouched(host, tmp_path)


def test_bind_source_is_not_resolved_in_the_rootfs(runtime, bundle, tmp_path):
    """The source of a bind mount is a host path (runc); the destination is the one confined."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "f").write_text("host source\n")
    b = bundle("cat", "/m/f")
    b.add_mount("/m", "bind", str(src), ["bind"])
    assert runtime.run(b).ok().out == "host source\n"


def test_missing_bind_source_fails_create_cleanly(runtime, bundle, tmp_path):
    b = bundle("true")
    b.add_mount("/m", "bind", str(tmp_path / "does-not-exist"), ["bind"])
    assert "does-not-exist" in runtime.create_fails(b).err


def test_proc_onto_a_symlink_to_a_file_is_refused(runtime, bundle, tmp_path):
    b = bundle("true")
    os.rename(os.path.join(b.rootfs, "proc"), os.path.join(b.rootfs, "proc.orig"))
    os.symlink("/etc/passwd", os.path.join(b.rootfs, "proc"))
    res = runtime.run(b)
    assert res.rc == 1 and "not a directory" in res.err


def test_bind_inside_proc_is_refused_like_runc(runtime, bundle, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    b = bundle("true")
    b.add_mount("/proc/sys/kernel", "bind", str(src), ["bind"])
    assert "cannot be mounted because it is inside /proc" in runtime.create_fails(b).err


def test_bind_over_an_lxcfs_proc_file_is_allowed(runtime, bundle, tmp_path):
    fake = tmp_path / "uptime"
    fake.write_text("12345.00 1.00\n")
    b = bundle("cat", "/proc/uptime")
    b.add_mount("/proc/uptime", "bind", str(fake), ["bind", "ro"])
    assert runtime.run(b).ok().out == "12345.00 1.00\n"


def test_mount_error_names_the_destination(runtime, bundle):
    b = bundle("true")
    b.add_mount("/x", "nosuchfs", "none")
    err = runtime.create_fails(b).err
    assert 'error mounting \\"none\\" to rootfs at \\"/x\\": No such device' in err
    assert "/proc/self/fd/" not in err

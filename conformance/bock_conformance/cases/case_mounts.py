"""config.md "mounts": types, options, order, propagation, bind mounts, symlinks in destinations."""

from __future__ import annotations

import ctypes
import os

import pytest

pytestmark = pytest.mark.section("mounts")

_libc = ctypes.CDLL(None, use_errno=True)
MS_SHARED = 1 << 20


def mountinfo_line(out: str, target: str) -> list[str]:
    """The last /proc/self/mountinfo line for mount point *target* (split), or []."""
    found: list[str] = []
    for line in out.splitlines():
        fields = line.split()
        if len(fields) > 4 and fields[4] == target:
            found = fields
    return found


def with_mount(mount, script):
    def mutate(cfg):
        cfg["mounts"].append(mount)

    return mutate


def tmpfs(dest, *options):
    return {"destination": dest, "type": "tmpfs", "source": "tmpfs", "options": list(options)}


def bind(src, dest, *options):
    return {"destination": dest, "type": "bind", "source": str(src), "options": ["bind", *options]}


def run_with(kit, script, *mounts):
    def mutate(cfg):
        cfg["mounts"].extend(mounts)

    return kit.sh(script, mutate)


def test_tmpfs_mounted(kit):
    out = run_with(kit, "cat /proc/self/mountinfo", tmpfs("/mnt/t")).out
    fields = mountinfo_line(out, "/mnt/t")
    assert fields and fields[fields.index("-") + 1] == "tmpfs"


def test_tmpfs_size_option(kit):
    out = run_with(kit, "cat /proc/self/mountinfo", tmpfs("/mnt/t", "size=1m")).out
    assert "size=1024k" in mountinfo_line(out, "/mnt/t")[-1]


def test_tmpfs_mode_option(kit):
    assert run_with(kit, "stat -c %a /mnt/t", tmpfs("/mnt/t", "mode=0700")).out.strip() == "700"


def test_ro_option_denies_writes(kit):
    res = run_with(kit, "touch /mnt/t/x 2>&1; echo rc=$?", tmpfs("/mnt/t", "ro"))
    assert "rc=0" not in res.out


@pytest.mark.parametrize("flag", ["nosuid", "nodev", "noexec", "noatime"])
def test_mount_flag_applied(kit, flag):
    out = run_with(kit, "cat /proc/self/mountinfo", tmpfs("/mnt/t", flag)).out
    assert flag in mountinfo_line(out, "/mnt/t")[5].split(",")


def test_exec_allowed_without_noexec(kit):
    res = run_with(kit, "cp /bin/busybox /mnt/t/echo && /mnt/t/echo exec-ok", tmpfs("/mnt/t", "exec"))
    assert res.out.strip() == "exec-ok"


def test_noexec_blocks_exec(kit):
    res = run_with(
        kit, "cp /bin/busybox /mnt/t/echo; /mnt/t/echo exec-ok 2>&1; echo rc=$?", tmpfs("/mnt/t", "noexec")
    )
    assert "exec-ok" not in res.out


def host_dir(kit, name="hostdir"):
    d = kit.path(name)
    d.mkdir()
    (d / "file").write_text("from-host\n")
    return d


def test_bind_mount_shows_host_files(kit):
    d = host_dir(kit)
    assert run_with(kit, "cat /mnt/h/file", bind(d, "/mnt/h")).out == "from-host\n"


def test_bind_mount_writes_reach_host(kit):
    d = host_dir(kit)
    run_with(kit, "echo from-ctr > /mnt/h/new", bind(d, "/mnt/h")).expect_ok()
    assert kit.host_read(d / "new") == "from-ctr\n"


def test_bind_mount_readonly(kit):
    d = host_dir(kit)
    res = run_with(kit, "echo x > /mnt/h/new 2>&1; echo rc=$?", bind(d, "/mnt/h", "ro"))
    assert "rc=0" not in res.out and not (d / "new").exists()


def test_bind_mount_without_type(kit):
    d = host_dir(kit)
    mount = {"destination": "/mnt/h", "source": str(d), "options": ["rbind"]}
    assert run_with(kit, "cat /mnt/h/file", mount).out == "from-host\n"


def test_bind_mount_of_a_file(kit):
    d = host_dir(kit)
    assert run_with(kit, "cat /etc/conf-file", bind(d / "file", "/etc/conf-file")).out == "from-host\n"


def submount(kit, d):
    sub = d / "sub"
    sub.mkdir()
    assert _libc.mount(b"tmpfs", str(sub).encode(), b"tmpfs", 0, None) == 0, os.strerror(ctypes.get_errno())
    (sub / "inner").write_text("submount\n")
    kit.on_cleanup(lambda: _libc.umount2(str(sub).encode(), 2))


def test_rbind_includes_submounts(kit):
    d = host_dir(kit)
    submount(kit, d)
    mount = {"destination": "/mnt/h", "type": "bind", "source": str(d), "options": ["rbind"]}
    assert run_with(kit, "cat /mnt/h/sub/inner", mount).out == "submount\n"


def test_bind_excludes_submounts(kit):
    d = host_dir(kit)
    submount(kit, d)
    res = run_with(kit, "cat /mnt/h/sub/inner 2>/dev/null; ls /mnt/h/sub | wc -l", bind(d, "/mnt/h"))
    assert "submount" not in res.out and res.out.strip().endswith("0")


def test_mounts_applied_in_order_same_destination(kit):
    first, second = host_dir(kit, "first"), host_dir(kit, "second")
    (second / "file").write_text("second\n")
    assert run_with(kit, "cat /mnt/h/file", bind(first, "/mnt/h"), bind(second, "/mnt/h")).out == "second\n"


def test_mounts_nested_in_order(kit):
    d = host_dir(kit)
    res = run_with(kit, "cat /mnt/h/file; stat -f -c %T /mnt/h/t", bind(d, "/mnt/h"), tmpfs("/mnt/h/t"))
    assert res.out.split() == ["from-host", "tmpfs"]


def test_mount_destination_created(kit):
    out = run_with(kit, "cat /proc/self/mountinfo", tmpfs("/deep/new/path")).out
    assert mountinfo_line(out, "/deep/new/path")


def test_mount_destination_symlink_resolved_in_rootfs(kit):
    cfg = kit.config("cat /proc/self/mountinfo")
    cfg["mounts"].append(tmpfs("/link/x"))
    bdir = kit.bundle(cfg)
    (bdir / "rootfs" / "target").mkdir()
    os.symlink("/target", bdir / "rootfs" / "link")
    out = kit.run(cfg, bundle=bdir).out
    assert mountinfo_line(out, "/target/x")


def test_mount_destination_relative_symlink_resolved(kit):
    cfg = kit.config("cat /proc/self/mountinfo")
    cfg["mounts"].append(tmpfs("/mnt/rel"))
    bdir = kit.bundle(cfg)
    (bdir / "rootfs" / "data").mkdir()
    os.symlink("../data", bdir / "rootfs" / "mnt" / "rel")
    out = kit.run(cfg, bundle=bdir).out
    assert mountinfo_line(out, "/data")


@pytest.mark.parametrize(
    "dest,fstype",
    [
        ("/proc", "proc"),
        ("/sys", "sysfs"),
        ("/dev/pts", "devpts"),
        ("/dev/mqueue", "mqueue"),
        ("/dev/shm", "tmpfs"),
    ],
)
def test_default_mount_types(kit, dest, fstype):
    fields = mountinfo_line(kit.sh("cat /proc/self/mountinfo").out, dest)
    assert fields and fields[fields.index("-") + 1] == fstype


def test_cgroup_mount_shows_controllers(kit):
    out = kit.sh("ls /sys/fs/cgroup").out.split()
    assert "memory" in out or "cgroup.controllers" in out


def test_sysfs_readonly(kit):
    res = kit.sh("touch /sys/kernel/x 2>&1; echo rc=$?")
    assert "rc=0" not in res.out


def test_bind_source_missing_fails(kit):
    res = run_with(kit, "true", bind(kit.path("no-such-source"), "/mnt/h"))
    res.expect_fail()


def test_unknown_mount_type_fails(kit):
    run_with(kit, "true", {"destination": "/mnt/x", "type": "bockfs-no-such", "source": "none"}).expect_fail()


@pytest.mark.parametrize("prop,field", [("rprivate", None), ("rshared", "shared:"), ("rslave", "master:")])
def test_bind_mount_propagation(kit, prop, field):
    d = host_dir(kit)
    submount(kit, d)
    d = d / "sub"
    assert _libc.mount(None, str(d).encode(), None, MS_SHARED, None) == 0, os.strerror(ctypes.get_errno())

    def mutate(cfg):
        cfg["linux"]["rootfsPropagation"] = "shared" if prop != "rprivate" else "private"
        cfg["mounts"].append(bind(d, "/mnt/h", prop))

    fields = mountinfo_line(kit.sh("cat /proc/self/mountinfo", mutate).out, "/mnt/h")
    optional = fields[6 : fields.index("-")]
    if field is None:
        assert optional == [], fields
    else:
        assert any(f.startswith(field) for f in optional), fields


def test_rro_makes_submounts_readonly(kit):
    d = host_dir(kit)
    submount(kit, d)
    mount = {"destination": "/mnt/h", "type": "bind", "source": str(d), "options": ["rbind", "rro"]}
    res = run_with(kit, "touch /mnt/h/sub/x 2>&1; echo rc=$?", mount)
    assert res.rc == 0 and "rc=0" not in res.out, res


def test_tmpfs_data_option_passed(kit):
    out = run_with(kit, "cat /proc/self/mountinfo", tmpfs("/mnt/t", "nr_inodes=1000")).out
    assert "nr_inodes=1000" in mountinfo_line(out, "/mnt/t")[-1]

"""The rootfs setup sequence behind the recording syscall seam (no root needed).

Mount targets go through ``/proc/self/fd/N`` (an O_PATH descriptor); the recorder here
resolves them while the descriptor is open, so the tests see the real host path.
"""

from __future__ import annotations

import os
import stat

import pytest
from bock import _syscalls as s
from bock._init import rootfs as rfs
from bock._pathsafe import PathEscape
from bock._spec.config import Mount, Spec


class Recorder(s.RecordingSyscalls):
    def mount(self, source, target, fstype, flags, data=None):
        if target.startswith("/proc/self/fd/"):
            target = "fd:" + os.readlink(target)
        super().mount(source, target, fstype, flags, data)


def spec_of(**kw) -> Spec:
    doc = {"ociVersion": "1.3.0", "process": {"args": ["sh"], "cwd": "/"}, "root": {"path": "rootfs"}}
    linux = kw.pop("linux", {})
    doc["linux"] = {"namespaces": [{"type": "mount"}], **linux}
    doc.update(kw)
    return Spec.from_json(doc)


@pytest.fixture
def rootfs(tmp_path):
    r = tmp_path / "bundle" / "rootfs"
    (r / "etc").mkdir(parents=True)
    (r / "etc" / "hosts").write_text("127.0.0.1 localhost\n")
    return str(r)


@pytest.fixture
def sys_():
    return Recorder()


def mounts(sys_) -> list[tuple]:
    return [c[1:] for c in sys_.calls if c[0] == "mount"]


# -- prepare_root -----------------------------------------------------------------------


def test_prepare_root_default_rslave_then_rbind(sys_, rootfs):
    rfs.prepare_root(sys_, spec_of(), rootfs)
    calls = mounts(sys_)
    assert calls[0] == (None, "/", None, s.MS_SLAVE | s.MS_REC, None)
    assert calls[-1] == (rootfs, rootfs, "bind", s.MS_BIND | s.MS_REC, None)


@pytest.mark.parametrize(
    ("prop", "flag"),
    [("rshared", s.MS_SHARED | s.MS_REC), ("private", s.MS_PRIVATE), ("rslave", s.MS_SLAVE | s.MS_REC)],
)
def test_prepare_root_rootfs_propagation(sys_, rootfs, prop, flag):
    rfs.prepare_root(sys_, spec_of(linux={"rootfsPropagation": prop}), rootfs)
    assert mounts(sys_)[0] == (None, "/", None, flag, None)


def test_prepare_root_makes_a_shared_parent_private(sys_, rootfs, tmp_path, monkeypatch):
    parent = str(tmp_path)
    fake = tmp_path / "mountinfo"
    fake.write_text(f"1 0 8:1 / / rw - ext4 /dev/sda rw\n2 1 0:5 / {parent} rw shared:7 - tmpfs tmpfs rw\n")
    real_open = open

    def fake_open(path, *a, **kw):
        return real_open(fake if path == "/proc/self/mountinfo" else path, *a, **kw)

    monkeypatch.setattr("builtins.open", fake_open)
    rfs.prepare_root(sys_, spec_of(linux={"rootfsPropagation": "shared"}), rootfs)
    assert (None, parent, None, s.MS_PRIVATE, None) in mounts(sys_)


# -- mount_one --------------------------------------------------------------------------


def test_bind_mount_with_options_and_propagation(sys_, rootfs, tmp_path):
    src = tmp_path / "data"
    src.mkdir()
    m = Mount.from_json(
        {
            "destination": "/data",
            "type": "bind",
            "source": str(src),
            "options": ["rbind", "ro", "nosuid", "rprivate"],
        }
    )
    rfs.mount_one(sys_, m, rootfs, str(tmp_path / "bundle"))
    dest = os.path.join(rootfs, "data")
    assert os.path.isdir(dest)
    assert mounts(sys_) == [
        (str(src), "fd:" + dest, "bind", s.MS_BIND | s.MS_REC, None),
        (None, "fd:" + dest, None, s.MS_BIND | s.MS_REMOUNT | s.MS_RDONLY | s.MS_NOSUID, None),
        (None, "fd:" + dest, None, s.MS_PRIVATE | s.MS_REC, None),
    ]


def test_bind_of_a_file_creates_a_file_mountpoint(sys_, rootfs, tmp_path):
    src = tmp_path / "resolv.conf"
    src.write_text("nameserver 1.1.1.1\n")
    m = Mount.from_json(
        {"destination": "/etc/resolv.conf", "type": "none", "source": str(src), "options": ["bind"]}
    )
    rfs.mount_one(sys_, m, rootfs, str(tmp_path / "bundle"))
    dest = os.path.join(rootfs, "etc", "resolv.conf")
    assert stat.S_ISREG(os.lstat(dest).st_mode)
    assert mounts(sys_) == [(str(src), "fd:" + dest, "bind", s.MS_BIND, None)]


def test_bind_source_relative_to_the_bundle(sys_, rootfs, tmp_path):
    (tmp_path / "bundle" / "rel").mkdir()
    m = Mount.from_json({"destination": "/rel", "type": "bind", "source": "rel", "options": ["bind"]})
    rfs.mount_one(sys_, m, rootfs, str(tmp_path / "bundle"))
    assert mounts(sys_)[0][0] == str(tmp_path / "bundle" / "rel")


def test_bind_missing_source_is_a_clear_error(sys_, rootfs, tmp_path):
    m = Mount.from_json(
        {"destination": "/x", "type": "bind", "source": "/nonexistent-src", "options": ["bind"]}
    )
    with pytest.raises(rfs.RootfsError, match="stat /nonexistent-src: no such file or directory"):
        rfs.mount_one(sys_, m, rootfs, str(tmp_path))
    assert sys_.calls == []


def test_tmpfs_flags_and_data(sys_, rootfs, tmp_path):
    m = Mount.from_json(
        {
            "destination": "/dev",
            "type": "tmpfs",
            "source": "tmpfs",
            "options": ["nosuid", "strictatime", "mode=755", "size=65536k"],
        }
    )
    rfs.mount_one(sys_, m, rootfs, str(tmp_path))
    dest = os.path.join(rootfs, "dev")
    assert mounts(sys_) == [
        ("tmpfs", "fd:" + dest, "tmpfs", s.MS_NOSUID | s.MS_STRICTATIME, "mode=755,size=65536k")
    ]


def test_proc_and_relative_destination(sys_, rootfs, tmp_path):
    m = Mount.from_json({"destination": "proc", "type": "proc", "source": "proc"})
    rfs.mount_one(sys_, m, rootfs, str(tmp_path))
    assert mounts(sys_) == [("proc", "fd:" + os.path.join(rootfs, "proc"), "proc", 0, None)]


def test_proc_onto_a_file_is_refused(sys_, rootfs, tmp_path):
    (open(os.path.join(rootfs, "proc"), "w")).close()
    m = Mount.from_json({"destination": "/proc", "type": "proc", "source": "proc"})
    with pytest.raises(rfs.RootfsError, match="not a directory"):
        rfs.mount_one(sys_, m, rootfs, str(tmp_path))


@pytest.mark.parametrize("dest", ["/../../../escape", "/a/../../escape"])
def test_dotdot_destination_stays_inside(sys_, rootfs, tmp_path, dest):
    m = Mount.from_json({"destination": dest, "type": "tmpfs", "source": "tmpfs"})
    rfs.mount_one(sys_, m, rootfs, str(tmp_path))
    assert mounts(sys_)[0][1] == "fd:" + os.path.join(rootfs, "escape")
    assert not (tmp_path / "escape").exists()


def test_symlink_destination_to_outside_stays_inside(sys_, rootfs, tmp_path):
    outside = tmp_path / "host-dir"
    outside.mkdir()
    os.symlink(str(outside), os.path.join(rootfs, "evil"))
    os.symlink("../../../../../../" + str(outside), os.path.join(rootfs, "evil-rel"))
    for dest in ("/evil", "/evil-rel/sub"):
        m = Mount.from_json({"destination": dest, "type": "tmpfs", "source": "tmpfs"})
        rfs.mount_one(sys_, m, rootfs, str(tmp_path))
    for call in mounts(sys_):
        assert call[1].startswith("fd:" + rootfs + "/"), call
    assert os.listdir(outside) == []


def test_idmapped_mounts_are_refused_clearly(sys_, rootfs, tmp_path):
    m = Mount.from_json(
        {"destination": "/x", "type": "bind", "source": str(tmp_path), "options": ["bind", "idmap"]}
    )
    with pytest.raises(rfs.RootfsError, match="idmapped"):
        rfs.mount_one(sys_, m, rootfs, str(tmp_path))


def test_mount_all_keeps_the_order(sys_, rootfs, tmp_path):
    spec = spec_of(
        mounts=[
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs"},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["newinstance"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue"},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["ro"]},
        ]
    )
    rfs.mount_all(sys_, spec, rootfs, str(tmp_path), None)
    assert [c[2] for c in mounts(sys_)] == ["proc", "tmpfs", "devpts", "mqueue", "sysfs"]
    assert mounts(sys_)[2][4] == "newinstance"
    assert mounts(sys_)[4][3] == s.MS_RDONLY


def test_cgroup_mount_goes_to_the_cgroup_mounter(sys_, rootfs, tmp_path):
    seen = []
    spec = spec_of(
        mounts=[
            {
                "destination": "/sys/fs/cgroup",
                "type": "cgroup",
                "source": "cgroup",
                "options": ["ro", "nosuid"],
            }
        ]
    )
    rfs.mount_all(
        sys_, spec, rootfs, str(tmp_path), lambda sys, root, dest, opts: seen.append((dest, opts.flags))
    )
    assert seen == [(os.path.join(rootfs, "sys/fs/cgroup"), s.MS_RDONLY | s.MS_NOSUID)]


# -- /dev -------------------------------------------------------------------------------


def test_setup_dev_default_devices_and_symlinks(sys_, rootfs):
    os.mkdir(os.path.join(rootfs, "dev"))
    rfs.setup_dev(sys_, spec_of(), rootfs, userns=False)
    dev = os.path.join(rootfs, "dev")
    mknods = [c[1:] for c in sys_.calls if c[0] == "mknod"]
    assert [(p, stat.S_IFMT(m), stat.S_IMODE(m), os.major(d), os.minor(d)) for p, m, d in mknods] == [
        (f"{dev}/null", stat.S_IFCHR, 0o666, 1, 3),
        (f"{dev}/zero", stat.S_IFCHR, 0o666, 1, 5),
        (f"{dev}/full", stat.S_IFCHR, 0o666, 1, 7),
        (f"{dev}/random", stat.S_IFCHR, 0o666, 1, 8),
        (f"{dev}/urandom", stat.S_IFCHR, 0o666, 1, 9),
        (f"{dev}/tty", stat.S_IFCHR, 0o666, 5, 0),
    ]
    links = {c[2]: c[1] for c in sys_.calls if c[0] == "symlink"}
    assert links[f"{dev}/fd"] == "/proc/self/fd"
    assert links[f"{dev}/stdin"] == "/proc/self/fd/0"
    assert links[f"{dev}/stdout"] == "/proc/self/fd/1"
    assert links[f"{dev}/stderr"] == "/proc/self/fd/2"
    assert links[f"{dev}/ptmx"] == "pts/ptmx"
    chowns = [c for c in sys_.calls if c[0] == "chown"]
    assert all(c[2:] == (0, 0) for c in chowns) and len(chowns) == 6


def test_setup_dev_spec_devices_override_defaults(sys_, rootfs):
    spec = spec_of(
        linux={
            "devices": [
                {
                    "type": "c",
                    "path": "/dev/null",
                    "major": 1,
                    "minor": 3,
                    "fileMode": 0o600,
                    "uid": 5,
                    "gid": 6,
                },
                {"type": "b", "path": "/dev/sub/loop9", "major": 7, "minor": 9},
                {"type": "p", "path": "/dev/myfifo"},
            ]
        }
    )
    rfs.setup_dev(sys_, spec, rootfs, userns=False)
    dev = os.path.join(rootfs, "dev")
    mknods = {c[1]: (c[2], c[3]) for c in sys_.calls if c[0] == "mknod"}
    assert mknods[f"{dev}/null"] == (stat.S_IFCHR | 0o600, os.makedev(1, 3))
    assert mknods[f"{dev}/sub/loop9"] == (stat.S_IFBLK | 0o666, os.makedev(7, 9))
    assert stat.S_ISFIFO(mknods[f"{dev}/myfifo"][0])
    assert [c for c in sys_.calls if c[0] == "mknod" and c[1] == f"{dev}/null"].__len__() == 1
    assert ("chown", f"{dev}/null", 5, 6) in sys_.calls
    assert os.path.isdir(f"{dev}/sub")


def test_setup_dev_in_a_user_namespace_binds_host_nodes(sys_, rootfs):
    rfs.setup_dev(sys_, spec_of(), rootfs, userns=True)
    dev = os.path.join(rootfs, "dev")
    assert not [c for c in sys_.calls if c[0] == "mknod"]
    binds = mounts(sys_)
    assert ("/dev/null", f"fd:{dev}/null", "bind", s.MS_BIND, None) in binds
    assert len(binds) == 6


def test_device_outside_dev_is_refused(sys_, rootfs):
    spec = spec_of(linux={"devices": [{"type": "c", "path": "/etc/evil", "major": 1, "minor": 3}]})
    with pytest.raises(rfs.RootfsError, match="under /dev"):
        rfs.setup_dev(sys_, spec, rootfs, userns=False)


def test_device_over_a_symlink_is_refused(sys_, rootfs, tmp_path):
    os.makedirs(os.path.join(rootfs, "dev"))
    os.symlink(str(tmp_path / "target"), os.path.join(rootfs, "dev", "evil"))
    spec = spec_of(linux={"devices": [{"type": "c", "path": "/dev/evil", "major": 1, "minor": 3}]})
    with pytest.raises((rfs.RootfsError, PathEscape)):
        rfs.setup_dev(sys_, spec, rootfs, userns=False)
    assert not (tmp_path / "target").exists()


def test_existing_ptmx_node_is_replaced_by_a_symlink(sys_, rootfs):
    os.makedirs(os.path.join(rootfs, "dev"))
    open(os.path.join(rootfs, "dev", "ptmx"), "w").close()
    rfs.setup_dev(sys_, spec_of(), rootfs, userns=False)
    assert ("symlink", "pts/ptmx", os.path.join(rootfs, "dev", "ptmx")) in sys_.calls


# -- pivot_root, chroot, masks ------------------------------------------------------------


def test_pivot_root_sequence(sys_, rootfs, monkeypatch):
    monkeypatch.chdir(rootfs)
    rfs.pivot_root(sys_, rootfs)
    assert sys_.calls == [
        ("pivot_root", ".", "."),
        ("mount", None, ".", None, s.MS_SLAVE | s.MS_REC, None),
        ("umount", ".", s.MNT_DETACH),
    ]


def test_no_pivot_moves_and_chroots(sys_, rootfs, monkeypatch):
    monkeypatch.chdir(rootfs)
    rfs.move_root(sys_, rootfs)
    assert sys_.calls == [("mount", rootfs, "/", None, s.MS_MOVE, None), ("chroot", ".")]


def test_mask_paths(sys_, tmp_path):
    d = tmp_path / "dir"
    d.mkdir()
    f = tmp_path / "file"
    f.write_text("secret")
    link = tmp_path / "link"
    os.symlink(str(f), link)
    rfs.mask_paths(sys_, [str(d), str(f), str(tmp_path / "missing"), str(link)])
    assert mounts(sys_) == [
        ("tmpfs", str(d), "tmpfs", s.MS_RDONLY, None),
        ("/dev/null", str(f), None, s.MS_BIND, None),
    ]


def test_readonly_paths(sys_, tmp_path):
    d = tmp_path / "dir"
    d.mkdir()
    rfs.readonly_paths(sys_, [str(d), str(tmp_path / "missing")])
    assert mounts(sys_) == [
        (str(d), str(d), None, s.MS_BIND | s.MS_REC, None),
        (None, str(d), None, s.MS_BIND | s.MS_REMOUNT | s.MS_RDONLY | s.MS_REC, None),
    ]


def test_readonly_paths_retry_with_locked_flags(tmp_path):
    d = tmp_path / "dir"
    d.mkdir()
    calls = []

    class FailFirstRemount(Recorder):
        def mount(self, source, target, fstype, flags, data=None):
            calls.append(flags)
            if flags & s.MS_REMOUNT and len(calls) == 2:
                raise PermissionError(1, "locked")

    rfs.readonly_paths(FailFirstRemount(), [str(d)])
    assert len(calls) == 3 and calls[2] & s.MS_RDONLY and calls[2] & s.MS_REMOUNT


def test_readonly_root(sys_):
    rfs.readonly_root(sys_)
    assert mounts(sys_) == [(None, "/", None, s.MS_BIND | s.MS_REMOUNT | s.MS_RDONLY, None)]


def test_recording_seam_raises_configured_errors(rootfs):
    sys_ = Recorder(fail={"pivot_root": PermissionError(1, "nope")})
    with pytest.raises(PermissionError):
        sys_.pivot_root(".", ".")
    assert sys_.calls == [("pivot_root", ".", ".")]


@pytest.mark.parametrize(
    "dest", ["/proc/sys/kernel", "/proc/self/attr", "/proc/../proc/sysrq-trigger", "/proc"]
)
def test_bind_inside_proc_is_refused_like_runc(sys_, rootfs, tmp_path, dest):
    m = Mount.from_json({"destination": dest, "type": "bind", "source": str(tmp_path), "options": ["bind"]})
    with pytest.raises(rfs.RootfsError, match="cannot be mounted because it is"):
        rfs.mount_one(sys_, m, rootfs, str(tmp_path))
    assert sys_.calls == []


@pytest.mark.parametrize(
    "dest", ["/proc/uptime", "/proc/meminfo", "/proc/sys/kernel/ns_last_pid", "/procfoo"]
)
def test_bind_over_lxcfs_proc_files_is_allowed(sys_, rootfs, tmp_path, dest):
    src = tmp_path / "f"
    src.write_text("x")
    m = Mount.from_json({"destination": dest, "type": "bind", "source": str(src), "options": ["bind"]})
    rfs.mount_one(sys_, m, rootfs, str(tmp_path))
    assert mounts(sys_)[0][2] == "bind"

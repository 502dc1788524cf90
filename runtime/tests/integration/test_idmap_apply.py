"""User-namespace maps for a real child, an idmapped bind mount, and time-namespace offsets."""

from __future__ import annotations

import os
import time

import pytest
from bock._libc import libc
from bock._security import idmap
from bock._spec.config import IDMapping, TimeOffset
from bock.errors import SystemError_

pytestmark = pytest.mark.root

CLONE_NEWNS = 0x00020000
MAPS = [IDMapping(container_id=0, host_id=100000, size=65536)]


def read(path: str) -> str:
    with open(path) as f:
        return f.read()


def fork_waiting(before_ready, after_go):
    """Fork a child that runs ``before_ready()``, says ready, waits for go, runs ``after_go()``
    and sends its result text. Returns (pid, ready_fd, go_fd, result_fd)."""
    ready_r, ready_w = os.pipe()
    go_r, go_w = os.pipe()
    res_r, res_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            for fd in (ready_r, go_w, res_r):
                os.close(fd)
            try:
                before_ready()
                os.write(ready_w, b"1")
                os.read(go_r, 1)
                os.write(res_w, str(after_go()).encode())
            except BaseException as exc:
                os.write(res_w, f"error: {exc}".encode())
        finally:
            os._exit(0)
    for fd in (ready_w, go_r, res_w):
        os.close(fd)
    return pid, ready_r, go_w, res_r


def test_write_id_maps_for_a_child_in_a_new_user_namespace():
    def unshare():
        assert libc.unshare(idmap.CLONE_NEWUSER) == 0

    def become_root():
        # still host root (unmapped: the overflow id), until it switches to the mapped container root
        before = f"{os.getuid()}:{os.getgid()}"
        os.setresgid(0, 0, 0)
        os.setresuid(0, 0, 0)
        return f"{before} {os.getuid()}:{os.getgid()}"

    pid, ready, go, res = fork_waiting(unshare, become_root)
    try:
        assert os.read(ready, 1) == b"1"
        maps = [
            IDMapping(container_id=0, host_id=100000, size=1000),
            IDMapping(container_id=1000, host_id=5000, size=1),
        ]
        idmap.write_id_maps(pid, maps, MAPS, deny_setgroups=True)
        uid_map = read(f"/proc/{pid}/uid_map").split()
        gid_map = read(f"/proc/{pid}/gid_map").split()
        setgroups = read(f"/proc/{pid}/setgroups").strip()
        with pytest.raises(
            SystemError_, match=r"^failed to write uid_map: write /proc/\d+/uid_map: operation not permitted$"
        ):
            idmap.write_id_maps(pid, MAPS, [])  # a map can be written only once
        os.write(go, b"1")
        ids = os.read(res, 100).decode()
        with open(f"/proc/{pid}/status") as f:  # the host's view of the same process
            host_view = [line.split()[1] for line in f if line.startswith(("Uid:", "Gid:"))]
    finally:
        for fd in (ready, go, res):
            os.close(fd)
        os.waitpid(pid, 0)
    assert uid_map == ["0", "100000", "1000", "1000", "5000", "1"]
    assert gid_map == ["0", "100000", "65536"]
    assert setgroups == "deny"
    assert ids == "65534:65534 0:0"
    assert host_view == ["100000", "100000"]


def test_make_userns_fd_carries_the_maps():
    fd = idmap.make_userns_fd(MAPS, MAPS)
    try:
        link = os.readlink(f"/proc/self/fd/{fd}")
        assert link.startswith("user:[") and link != os.readlink("/proc/self/ns/user")
        # join it in a child (setns) and read the map from inside: the namespace outlived its maker
        pid, ready, go, res = fork_waiting(
            lambda: None, lambda: (libc.setns(fd, idmap.CLONE_NEWUSER), read("/proc/self/uid_map").split())[1]
        )
        try:
            os.read(ready, 1)
            os.write(go, b"1")
            assert os.read(res, 200).decode() == "['0', '100000', '65536']"
        finally:
            for f in (ready, go, res):
                os.close(f)
            os.waitpid(pid, 0)
    finally:
        os.close(fd)


def test_idmapped_bind_mount_shows_shifted_ownership(tmp_path):
    src = tmp_path / "src"
    dst = tmp_path / "dst"
    src.mkdir()
    dst.mkdir()
    for name, uid in (("root", 0), ("five", 5), ("unmapped", 70000)):
        (src / name).write_text(name)
        os.chown(src / name, uid, uid)
    maps = [IDMapping(container_id=0, host_id=100000, size=65536)]

    def mount_and_stat():
        # a private mount namespace: the mount disappears with this child, whatever happens
        assert libc.unshare(CLONE_NEWNS) == 0
        assert libc.mount(b"none", b"/", None, 0x40000 | 0x4000, None) == 0  # MS_REC | MS_PRIVATE
        idmap.idmapped_bind(str(src), str(dst), maps, maps)
        owners = {n: (os.stat(dst / n).st_uid, os.stat(dst / n).st_gid) for n in ("root", "five", "unmapped")}
        with open(dst / "root") as f:
            content = f.read()
        return owners, content

    pid, ready, go, res = fork_waiting(lambda: None, mount_and_stat)
    try:
        os.read(ready, 1)
        os.write(go, b"1")
        out = os.read(res, 1000).decode()
    finally:
        for f in (ready, go, res):
            os.close(f)
        os.waitpid(pid, 0)
    assert out == str(
        ({"root": (100000, 100000), "five": (100005, 100005), "unmapped": (65534, 65534)}, "root")
    )
    # nothing leaked into our mount namespace; the source is untouched
    assert not os.listdir(dst)
    assert os.stat(src / "root").st_uid == 0


def test_idmap_mount_fd_error_is_clear(tmp_path):
    with pytest.raises(
        SystemError_, match=r"^failed to clone mount tree .*/nope: open_tree: no such file or directory$"
    ):
        idmap.idmap_mount_fd(str(tmp_path / "nope"), 0)


CLOCK_BOOTTIME = 7


def _clock(clock_id: int) -> float:
    return time.clock_gettime(clock_id)


def test_time_namespace_offsets_seen_by_the_first_child():
    offsets = {
        "monotonic": TimeOffset(secs=3600, nanosecs=0),
        "boottime": TimeOffset(secs=7 * 86400, nanosecs=0),
    }
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            try:
                assert libc.unshare(idmap.CLONE_NEWTIME) == 0
                idmap.write_time_offsets("self", offsets)
                inner = os.fork()
                if inner == 0:
                    try:
                        uptime = float(read("/proc/uptime").split()[0])
                        os.write(
                            w, f"{_clock(time.CLOCK_MONOTONIC)} {_clock(CLOCK_BOOTTIME)} {uptime}".encode()
                        )
                    finally:
                        os._exit(0)
                os.waitpid(inner, 0)
                # the namespace now has a process: its offsets are frozen
                try:
                    idmap.write_time_offsets("self", offsets)
                    os.write(w, b" late-write-accepted")
                except SystemError_ as exc:
                    os.write(w, f" |{exc}".encode())
            except BaseException as exc:
                os.write(w, f"error: {exc}".encode())
        finally:
            os._exit(0)
    os.close(w)
    out = b""
    while chunk := os.read(r, 4096):
        out += chunk
    os.close(r)
    os.waitpid(pid, 0)
    host_mono, host_boot = _clock(time.CLOCK_MONOTONIC), _clock(CLOCK_BOOTTIME)
    values, _, late = out.decode().partition(" |")
    mono, boot, uptime = (float(v) for v in values.split())
    assert abs(mono - host_mono - 3600) < 5
    assert abs(boot - host_boot - 7 * 86400) < 5
    assert abs(uptime - host_boot - 7 * 86400) < 5
    assert late == "failed to write timens_offsets: write /proc/self/timens_offsets: permission denied"

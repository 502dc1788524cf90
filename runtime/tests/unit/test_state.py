"""State on disk and the status derivation (init alive + start time, exec.fifo)."""

from __future__ import annotations

import json
import os
import re
import subprocess

import pytest
from bock._state import FIFO, Container, list_ids, proc_start_time, rfc3339_now, validate_id
from bock.errors import ContainerNotExist, InvalidID


def _container(root, pid, start_time, cid="c1") -> Container:
    os.makedirs(os.path.join(root, cid), exist_ok=True)
    c = Container(
        str(root),
        cid,
        {
            "ociVersion": "1.0.2-dev",
            "pid": pid,
            "start_time": start_time,
            "bundle": "/b",
            "rootfs": "/b/rootfs",
            "created": rfc3339_now(),
            "owner": "",
            "config": {"annotations": {"a": "b"}},
            "cgroup": None,
        },
    )
    c.save()
    return c


@pytest.fixture
def child():
    proc = subprocess.Popen(["sleep", "60"])
    yield proc
    proc.kill()
    proc.wait()


def test_created_while_fifo_exists(tmp_path, child):
    c = _container(tmp_path, child.pid, proc_start_time(child.pid))
    os.mkfifo(os.path.join(c.dir, FIFO))
    assert c.status() == "created"


def test_running_without_fifo(tmp_path, child):
    c = _container(tmp_path, child.pid, proc_start_time(child.pid))
    assert c.status() == "running"


def test_stopped_when_the_pid_was_reused(tmp_path, child):
    c = _container(tmp_path, child.pid, proc_start_time(child.pid) - 1)
    assert c.status() == "stopped"
    assert c.oci_state()["pid"] == 0


def test_stopped_when_the_init_is_a_zombie(tmp_path):
    proc = subprocess.Popen(["sleep", "60"])
    start = proc_start_time(proc.pid)
    assert start is not None
    proc.kill()
    os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)  # exited, not reaped: a zombie
    try:
        assert proc_start_time(proc.pid) is None
        c = _container(tmp_path, proc.pid, start)
        os.mkfifo(os.path.join(c.dir, FIFO))
        assert c.status() == "stopped"
    finally:
        proc.wait()


def test_stopped_when_the_init_is_gone(tmp_path):
    proc = subprocess.Popen(["sleep", "60"])
    start = proc_start_time(proc.pid)
    assert start is not None
    proc.kill()
    proc.wait()
    c = _container(tmp_path, proc.pid, start)
    assert c.status() == "stopped"


def test_proc_start_time_is_field_22():
    with open("/proc/self/stat") as f:
        raw = f.read()
    expected = int(raw[raw.rfind(")") + 2 :].split()[19])
    assert proc_start_time(os.getpid()) == expected


def test_proc_start_time_handles_parens_in_comm(tmp_path):
    exe = tmp_path / "a) b ("
    os.symlink("/bin/sleep", exe)
    proc = subprocess.Popen([str(exe), "30"])
    try:
        assert isinstance(proc_start_time(proc.pid), int)
    finally:
        proc.kill()
        proc.wait()


def test_oci_state_shape(tmp_path, child):
    c = _container(tmp_path, child.pid, proc_start_time(child.pid))
    st = c.oci_state()
    assert list(st) == [
        "ociVersion", "id", "pid", "status", "bundle", "rootfs", "created", "annotations", "owner"
    ]  # fmt: skip
    assert st["ociVersion"] == "1.0.2-dev"  # config.json's version, not the runtime's
    assert st["pid"] == child.pid and st["status"] == "running" and st["annotations"] == {"a": "b"}


def test_load_roundtrip_and_missing(tmp_path, child):
    c = _container(tmp_path, child.pid, proc_start_time(child.pid))
    again = Container.load(str(tmp_path), "c1")
    assert again.data == c.data
    with pytest.raises(ContainerNotExist, match="container does not exist"):
        Container.load(str(tmp_path), "other")


def test_save_is_atomic_json(tmp_path, child):
    c = _container(tmp_path, child.pid, 5)
    with open(os.path.join(c.dir, "state.json")) as f:
        assert json.load(f)["start_time"] == 5
    assert not os.path.exists(os.path.join(c.dir, "state.json.tmp"))


def test_list_ids_only_dirs_with_state(tmp_path, child):
    _container(tmp_path, child.pid, 1, "b")
    _container(tmp_path, child.pid, 1, "a")
    os.mkdir(tmp_path / "half-created")
    assert list_ids(str(tmp_path)) == ["a", "b"]
    assert list_ids(str(tmp_path / "missing")) == []


@pytest.mark.parametrize("cid", ["a", "A-b_c+d.e", "t-0123456789ab", "x" * 1024, "..a"])
def test_valid_ids(cid):
    validate_id(cid)


@pytest.mark.parametrize("cid", ["", ".", "..", "a/b", "../x", "a b", "é", "a\n", "x" * 1025, "a:b"])
def test_invalid_ids(cid):
    with pytest.raises(InvalidID, match="invalid container ID format"):
        validate_id(cid)


def test_rfc3339_now():
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z", rfc3339_now())

"""Namespaced sysctls written in a real child's new IPC/UTS/net namespaces, seen through nsenter."""

from __future__ import annotations

import os
import subprocess

import pytest
from bock._libc import libc
from bock._security import sysctl as S
from bock._spec.config import Linux
from bock.errors import ConfigError

pytestmark = pytest.mark.root

CLONE_NEWIPC = 0x08000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWNET = 0x40000000

VALUES = {
    "kernel.shmmax": "12345678",
    "kernel/msgmax": "4321",
    "fs.mqueue.msg_max": "17",
    "kernel.domainname": "bock.test",
    "net.ipv4.ip_forward": "1",
    "net/ipv4/conf/lo/forwarding": "1",
}
FILES = {
    "kernel/shmmax": "12345678",
    "kernel/msgmax": "4321",
    "fs/mqueue/msg_max": "17",
    "kernel/domainname": "bock.test",
    "net/ipv4/ip_forward": "1",
    "net/ipv4/conf/lo/forwarding": "1",
}


def read(path: str) -> str:
    with open(path) as f:
        return f.read().strip()


def test_sysctls_applied_in_new_namespaces_only():
    linux = Linux.from_json({"namespaces": [{"type": "ipc"}, {"type": "uts"}, {"type": "network"}]})
    S.validate(VALUES, linux)
    host_before = {f: read(f"/proc/sys/{f}") for f in FILES}
    r, w = os.pipe()
    go_r, go_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            os.close(go_w)
            msg = b"ok"
            if libc.unshare(CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWNET) != 0:
                msg = b"unshare failed"
            else:
                try:
                    S.apply(VALUES)
                except Exception as exc:
                    msg = str(exc).encode()
            os.write(w, msg)
            os.read(go_r, 1)
        finally:
            os._exit(0)
    os.close(w)
    os.close(go_r)
    try:
        assert os.read(r, 4096) == b"ok"
        inside = {}
        for f in FILES:
            out = subprocess.run(
                ["nsenter", "-t", str(pid), "-i", "-u", "-n", "cat", f"/proc/sys/{f}"],
                capture_output=True,
                text=True,
                check=True,
            )
            inside[f] = out.stdout.strip()
    finally:
        os.close(go_w)
        os.close(r)
        os.waitpid(pid, 0)
    assert inside == FILES
    assert {f: read(f"/proc/sys/{f}") for f in FILES} == host_before


def test_non_namespaced_sysctl_is_refused_and_host_untouched():
    before = read("/proc/sys/kernel/pid_max")
    linux = Linux.from_json(
        {"namespaces": [{"type": "ipc"}, {"type": "uts"}, {"type": "network"}, {"type": "pid"}]}
    )
    with pytest.raises(ConfigError, match=r'^sysctl "kernel.pid_max" is not in a separate kernel namespace$'):
        S.validate({"kernel.pid_max": "1000"}, linux)
    assert read("/proc/sys/kernel/pid_max") == before


def test_joined_netns_that_is_not_ours_is_allowed():
    # a named netns made for this test (unique name), removed afterwards
    name = f"bock-t-{os.getpid()}-{os.urandom(3).hex()}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        linux = Linux.from_json({"namespaces": [{"type": "network", "path": f"/run/netns/{name}"}]})
        S.validate({"net.ipv4.ip_forward": "1"}, linux)
    finally:
        subprocess.run(["ip", "netns", "del", name], check=True)


def test_write_error_is_reported():
    # kernel.shmmni accepts at most IPCMNI (32768): the kernel refuses with EINVAL
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            msg = b"unshare failed"
            if libc.unshare(CLONE_NEWIPC) == 0:
                try:
                    S.apply({"kernel.shmmni": "99999999"})
                    msg = b"no error"
                except Exception as exc:
                    msg = str(exc).encode()
            os.write(w, msg)
        finally:
            os._exit(0)
    os.close(w)
    msg = os.read(r, 4096).decode()
    os.close(r)
    os.waitpid(pid, 0)
    assert (
        msg == 'failed to write sysctl kernel.shmmni = "99999999": /proc/sys/kernel/shmmni: invalid argument'
    )

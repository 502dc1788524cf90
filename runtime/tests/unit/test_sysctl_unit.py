"""Unit tests of bock._security.sysctl: runc's namespaced-sysctl rules and wording."""

from __future__ import annotations

import pytest
from bock._security import sysctl as S
from bock._spec.config import Linux
from bock.errors import ConfigError


def linux(*kinds: str, **paths: str) -> Linux:
    return Linux.from_json(
        {"namespaces": [{"type": k, **({"path": paths[k]} if k in paths else {})} for k in kinds]}
    )


@pytest.mark.parametrize(
    ("key", "ns", "ok"),
    [
        ("kernel.shmmax", ("ipc",), True),
        ("kernel.msgmnb", ("ipc",), True),
        ("fs.mqueue.msg_max", ("ipc",), True),
        ("net.ipv4.ip_forward", ("network",), True),
        ("net/ipv4/conf/eth0.100/rp_filter", ("network",), True),
        ("kernel.domainname", ("uts",), True),
        ("user.max_user_namespaces", ("user",), True),
        ("kernel.shmmax", ("network",), False),
        ("net.ipv4.ip_forward", ("ipc",), False),
    ],
)
def test_allowed_by_namespace(key, ns, ok):
    if ok:
        S.validate({key: "1"}, linux(*ns))
    else:
        with pytest.raises(ConfigError):
            S.validate({key: "1"}, linux(*ns))


@pytest.mark.parametrize(
    ("key", "ns", "message"),
    [
        (
            "kernel.pid_max",
            ("ipc", "uts", "network", "user"),
            'sysctl "kernel.pid_max" is not in a separate kernel namespace',
        ),
        ("vm.swappiness", (), 'sysctl "vm.swappiness" is not in a separate kernel namespace'),
        ("kernel.sem", ("network",), 'sysctl "kernel.sem" is not allowed in the hosts ipc namespace'),
        (
            "fs.mqueue.queues_max",
            (),
            'sysctl "fs.mqueue.queues_max" is not allowed in the hosts ipc namespace',
        ),
        ("net.core.somaxconn", ("ipc",), 'sysctl "net.core.somaxconn" not allowed in host network namespace'),
        (
            "kernel.hostname",
            ("uts",),
            'sysctl "kernel.hostname" is not allowed as it conflicts with the OCI "hostname" field',
        ),
        ("kernel.domainname", ("ipc",), 'sysctl "kernel.domainname" is not in a separate kernel namespace'),
        (
            "user.max_user_namespaces",
            ("ipc",),
            "setting ucounts without a user namespace not allowed: user.max_user_namespaces",
        ),
        ("kernel/shmmax", (), 'sysctl "kernel.shmmax" is not allowed in the hosts ipc namespace'),
        ("kernel..shmmax", ("ipc",), "invalid sysctl key 'kernel..shmmax'"),
        ("net.ipv4.conf.all...", ("network",), "invalid sysctl key 'net.ipv4.conf.all...'"),
    ],
)
def test_refusals_match_runc(key, ns, message):
    with pytest.raises(ConfigError) as err:
        S.validate({key: "1"}, linux(*ns))
    assert str(err.value) == message


def test_netns_path_of_the_runtime_itself_is_the_host():
    with pytest.raises(ConfigError, match="not allowed in host network namespace"):
        S.validate({"net.ipv4.ip_forward": "1"}, linux("network", network="/proc/self/ns/net"))
    with pytest.raises(
        ConfigError, match=r"^invalid netns path: stat /nonexistent/ns: no such file or directory$"
    ):
        S.validate({"net.ipv4.ip_forward": "1"}, linux("network", network="/nonexistent/ns"))


@pytest.mark.parametrize(
    ("key", "path"),
    [
        ("kernel.shmmax", "kernel/shmmax"),
        ("kernel/shmmax", "kernel/shmmax"),
        ("net/ipv4/conf/eth0.100/rp_filter", "net/ipv4/conf/eth0.100/rp_filter"),
        ("net.ipv4.conf.eth0/100.rp_filter", "net/ipv4/conf/eth0.100/rp_filter"),
    ],
)
def test_key_path(key, path):
    assert S.key_path(key) == path


def test_to_dots_is_runcs_conversion():
    assert S.to_dots("net/ipv4/conf/eno2.100.rp_filter") == "net.ipv4.conf.eno2/100/rp_filter"
    assert S.to_dots("net.ipv4.ip_forward") == "net.ipv4.ip_forward"
    assert S.to_dots("") == ""


def test_apply_error_names_the_key(tmp_path):
    (tmp_path / "sys" / "kernel").mkdir(parents=True)
    with pytest.raises(
        Exception, match=r"^open sysctl kernel\.nope file: .*/sys/kernel/nope: no such file or directory$"
    ):
        S.apply({"kernel.nope": "1"}, proc=str(tmp_path))
    (tmp_path / "sys" / "kernel" / "shmmax").write_text("0")
    S.apply({"kernel.shmmax": "4096"}, proc=str(tmp_path))
    assert (tmp_path / "sys" / "kernel" / "shmmax").read_text() == "4096"

"""Pure functions of the drop-in commands: durations, sizes, flag mapping, process overrides."""

from __future__ import annotations

import pytest
from bock._lifecycle.events import parse_duration
from bock._lifecycle.exec import _parse_cgroup_flags, process_from_args
from bock._lifecycle.update import merge, ram_in_bytes, resources_from_flags
from bock.errors import BockError, ConfigError, UsageError


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("5s", 5), ("100ms", 0.1), ("1m30s", 90), ("1.5h", 5400), ("250us", 0.00025), ("0", 0), ("2µs", 2e-6)],
)
def test_parse_duration_go_syntax(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("bad", ["", "5", "s", "5x", "1..2s"])
def test_parse_duration_rejects(bad):
    with pytest.raises(UsageError):
        parse_duration(bad)


@pytest.mark.parametrize(
    ("text", "value"),
    [("1024", 1024), ("64k", 64 << 10), ("32m", 32 << 20), ("1.5g", 3 << 29), ("2GiB", 2 << 30), ("-1", -1)],
)
def test_ram_in_bytes(text, value):
    assert ram_in_bytes(text) == value


def test_ram_in_bytes_rejects_garbage():
    with pytest.raises(UsageError):
        ram_in_bytes("lots")


def test_update_flags_map_to_linux_resources():
    got = resources_from_flags({"memory": "64m", "cpu-quota": "-1", "cpuset-cpus": "0-1", "pids-limit": "10"})
    assert got == {"memory": {"limit": 64 << 20}, "cpu": {"quota": -1, "cpus": "0-1"}, "pids": {"limit": 10}}
    with pytest.raises(UsageError):
        resources_from_flags({"cpu-shares": "-5"})
    with pytest.raises(BockError, match="Intel RDT"):
        resources_from_flags({"l3-cache-schema": "L3:0=f"})


def test_merge_keeps_untouched_keys():
    old = {"memory": {"limit": 1, "swap": 2}, "devices": [{"allow": False}]}
    assert merge(old, {"memory": {"limit": 5}}) == {
        "memory": {"limit": 5, "swap": 2},
        "devices": [{"allow": False}],
    }


def test_cgroup_flag_forms():
    assert _parse_cgroup_flags(["sub"]) == {"": "sub"}
    assert _parse_cgroup_flags(["cpu,cpuacct:a", "pids:b"]) == {"cpu": "a", "cpuacct": "a", "pids": "b"}
    with pytest.raises(UsageError):
        _parse_cgroup_flags(["a", "b"])


CONFIG = {
    "process": {
        "user": {"uid": 0, "gid": 0},
        "args": ["sleep", "1"],
        "env": ["PATH=/bin"],
        "cwd": "/",
        "terminal": True,
        "capabilities": {"bounding": ["CAP_KILL"], "effective": ["CAP_KILL"], "permitted": ["CAP_KILL"]},
    }
}


def test_process_from_args_overrides_like_runc():
    p = process_from_args(
        CONFIG, ["sh"], tty=False, cwd="/tmp", env=["A=1"], user="10:20", additional_gids=["3"],
        cap=["CAP_NET_ADMIN"], no_new_privs=True,
    )  # fmt: skip
    assert (p.args, p.terminal, p.cwd, p.env) == (["sh"], False, "/tmp", ["PATH=/bin", "A=1"])
    assert (p.user.uid, p.user.gid, p.user.additional_gids) == (10, 20, [3])
    assert p.capabilities.bounding == ["CAP_KILL", "CAP_NET_ADMIN"]
    assert p.capabilities.ambient == []  # no inheritable set: runc adds no ambient caps
    assert p.no_new_privileges is True
    assert CONFIG["process"]["env"] == ["PATH=/bin"]  # the container's config is not modified


def test_process_from_args_rejects_bad_input():
    with pytest.raises(UsageError, match="parsing x as int for uid failed"):
        process_from_args(CONFIG, ["sh"], user="x")
    with pytest.raises(ConfigError):
        process_from_args(CONFIG, ["sh"], cwd="relative")

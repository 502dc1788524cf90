"""Unit tests of bock._security.idmap: mapping and time-offset validation, map text."""

from __future__ import annotations

import pytest
from bock._security import idmap
from bock._spec.config import IDMapping, Linux, Mount, TimeOffset
from bock.errors import ConfigError

M = {"containerID": 0, "hostID": 100000, "size": 65536}


def lx(**kw) -> Linux:
    return Linux.from_json(kw)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (
            {"uidMappings": [M], "gidMappings": [M]},
            "user namespace mappings specified, but user namespace isn't enabled in the config",
        ),
        ({"namespaces": [{"type": "user"}]}, "User namespaces enabled, but no uid mappings found."),
        (
            {"namespaces": [{"type": "user"}], "uidMappings": [M]},
            "User namespaces enabled, but no gid mappings found.",
        ),
        (
            {"namespaces": [{"type": "user"}], "uidMappings": [dict(M, containerID=1)], "gidMappings": [M]},
            "User namespaces enabled, but no user mapping found.",
        ),
        (
            {"namespaces": [{"type": "user"}], "uidMappings": [M], "gidMappings": [dict(M, containerID=1)]},
            "User namespaces enabled, but no group mapping found.",
        ),
        (
            {
                "namespaces": [{"type": "user"}],
                "uidMappings": [M, dict(M, containerID=65535)],
                "gidMappings": [M],
            },
            "overlapping uid mappings 0:100000:65536 and 65535:100000:65536",
        ),
        (
            {"namespaces": [{"type": "user"}], "uidMappings": [M], "gidMappings": [dict(M, size=0)]},
            "invalid gid mapping 0:100000:0: size must be > 0",
        ),
        (
            {"timeOffsets": {"monotonic": {"secs": 10}}},
            "time namespace offsets specified, but time namespace isn't enabled in the config",
        ),
        (
            {
                "namespaces": [{"type": "time", "path": "/proc/1/ns/time"}],
                "timeOffsets": {"boottime": {"secs": 1}},
            },
            "time namespace enabled, but both namespace path and time offsets specified"
            " -- you may only provide one",
        ),
        (
            {"namespaces": [{"type": "time"}], "timeOffsets": {"realtime": {"secs": 1}}},
            "invalid time offset clock 'realtime': must be one of monotonic, boottime",
        ),
    ],
)
def test_validate_refuses(config, message):
    with pytest.raises(ConfigError) as err:
        idmap.validate(lx(**config))
    assert str(err.value) == message


def test_validate_accepts_and_warns():
    good = lx(
        namespaces=[{"type": "user"}, {"type": "time"}],
        uidMappings=[M],
        gidMappings=[M],
        timeOffsets={"monotonic": {"secs": 3600, "nanosecs": 5}},
    )
    assert idmap.validate(good) == []
    joined = lx(namespaces=[{"type": "user", "path": "/proc/1/ns/user"}], uidMappings=[M], gidMappings=[M])
    assert idmap.validate(joined) == [
        "config.json has both a userns path to join and a userns mapping specified"
        " -- you may only provide one"
    ]


def test_mount_mappings():
    bind = Mount.from_json(
        {
            "destination": "/data",
            "source": "/srv",
            "type": "bind",
            "options": ["rbind"],
            "uidMappings": [M],
            "gidMappings": [M],
        }
    )
    assert idmap.validate(lx(), [bind]) == []
    tmpfs = Mount.from_json({"destination": "/t", "type": "tmpfs", "uidMappings": [M], "gidMappings": [M]})
    with pytest.raises(
        ConfigError, match=r"^invalid mount /t: id-mapped mounts are only supported for bind-mounts$"
    ):
        idmap.validate(lx(), [tmpfs])
    half = Mount.from_json({"destination": "/h", "source": "/srv", "options": ["bind"], "uidMappings": [M]})
    with pytest.raises(ConfigError, match=r"must have both uid and gid mappings specified$"):
        idmap.validate(lx(), [half])


def test_host_id_and_map_text():
    maps = [
        IDMapping(container_id=0, host_id=1000, size=1),
        IDMapping(container_id=1, host_id=100000, size=65535),
    ]
    assert idmap.host_id(maps, 0) == 1000
    assert idmap.host_id(maps, 5) == 100004
    assert idmap.host_id(maps, 65536) is None
    assert idmap.map_text(maps) == b"0 1000 1\n1 100000 65535\n"


def test_time_offsets_text():
    text = idmap.time_offsets_text(
        {"monotonic": TimeOffset(secs=-5, nanosecs=7), "boottime": TimeOffset(secs=9)}
    )
    assert text == b"monotonic -5 7\nboottime 9 0\n"


def test_too_many_lines():
    maps = [IDMapping(container_id=i, host_id=i, size=1) for i in range(341)]
    with pytest.raises(ConfigError, match="too many uid mappings: 341"):
        idmap.check_mappings(maps, "uid")

"""The init's context across the sealed re-exec: marshal plus tagged tuples (no pickle)."""

from __future__ import annotations

import _socket
import ctypes
import os

import pytest
from bock._init import ctxcodec, stages
from bock._init.security import Security
from bock._security.seccomp import SeccompFilter
from bock._spec.config import Spec


def roundtrip(obj: object) -> object:
    return ctxcodec.loads(ctxcodec.dumps(obj))


def test_plain_values_and_containers():
    value = {
        "n": None, "b": True, "i": -3, "f": 1.5, "s": "x", "y": b"\x00",
        "l": [1, (2, 3)], "t": ((),), (1, "k"): "tuple key", 5: {"nested": [{"a": (None,)}]},
        "set": {1, 2}, "fs": frozenset({"a"}),
    }  # fmt: skip
    got = roundtrip(value)
    assert got == value
    assert type(got["l"][1]) is tuple and type(got["t"][0]) is tuple
    assert type(got["set"]) is set and type(got["fs"]) is frozenset


def test_strings_that_look_like_tags_stay_strings():
    value = ["\x00t", ("\x00o", 1), {"\x00r": "\x00m"}]
    assert roundtrip(value) == value


def test_a_spec_comes_back_equal_and_shared_objects_stay_shared():
    doc = {
        "ociVersion": "1.3.0",
        "process": {"args": ["sh"], "cwd": "/", "env": ["A=b"], "capabilities": {"bounding": ["CAP_KILL"]},
                    "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 10, "soft": 5}]},
        "root": {"path": "rootfs", "readonly": True},
        "mounts": [{"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid"]}],
        "linux": {"namespaces": [{"type": "pid"}, {"type": "network", "path": "/proc/1/ns/net"}],
                  "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 10}],
                  "resources": {"memory": {"limit": 1 << 20}}},
        "annotations": {"a": "b"},
    }  # fmt: skip
    spec = Spec.from_json(doc)
    security = Security(spec)
    ctx = stages.InitContext(spec=spec, security=security, state_for_hooks=stages.HookState("c", "/b", {}))
    got = roundtrip({"ctx": ctx, "entry": stages.stage1, "module": os})
    assert got["ctx"].spec == spec
    assert got["ctx"].spec.to_json() == spec.to_json()
    assert got["ctx"].security.spec is got["ctx"].spec  # one object, as before
    assert got["ctx"].security._finalize is security._finalize
    assert got["ctx"].state_for_hooks("created", 1)["id"] == "c"
    assert got["entry"] is stages.stage1 and got["module"] is os
    assert type(got["ctx"]) is stages.InitContext


def test_a_seccomp_filter_is_rebuilt_with_its_own_buffer():
    flt = SeccompFilter(bytes(range(16)), 3, needs_notify=True, ignored=("x",))
    got = roundtrip(flt)
    assert (got.program, got.flags, got.needs_notify, got.ignored) == (flt.program, 3, True, ("x",))
    assert got._fprog.filter == ctypes.addressof(got._buf) != ctypes.addressof(flt._buf)


def test_a_socket_travels_by_its_fd():
    a, b = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_SEQPACKET)
    try:
        got = roundtrip(a)
        assert got.fileno() == a.fileno() and got.type == _socket.SOCK_SEQPACKET
        got.detach()
    finally:
        a.close()
        b.close()


def _local_function():
    def inner():
        return 1

    return inner


@pytest.mark.parametrize(
    "bad, what",
    [
        (ctypes.c_int(1), "ctypes object"),
        (lambda: 1, "local function"),
        (_local_function(), "local function"),
        (type("I", (int,), {})(3), "subclass of a built-in"),
    ],
    ids=["ctypes", "lambda", "closure", "int-subclass"],
)
def test_what_cannot_cross_is_refused_at_once(bad, what):
    with pytest.raises(TypeError, match=what):
        ctxcodec.dumps({"x": [bad]})

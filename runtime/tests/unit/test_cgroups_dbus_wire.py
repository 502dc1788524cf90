"""bock's D-Bus wire format against jeepney (a well-kept implementation), both ways."""

from __future__ import annotations

import pytest
from bock._cgroups import dbus_wire as wire

jeepney = pytest.importorskip("jeepney")
from jeepney import DBusAddress, HeaderFields, MessageType, Parser, new_method_call, new_signal  # noqa: E402

# every shape the systemd driver sends or receives, and the basic types around them
CASES = [
    ("s", ("system.slice",)),
    (
        "ssa(sv)a(sa(sv))",
        ("u.scope", "replace", [("Delegate", ("b", True)), ("PIDs", ("au", [1, 70000]))], []),
    ),
    (
        "sba(sv)",
        (
            "u.scope",
            True,
            [
                ("MemoryLimit", ("t", (1 << 64) - 1)),
                ("CPUShares", ("t", 512)),
                ("AllowedCPUs", ("ay", b"\x87\x01")),
                ("Wants", ("as", ["a.slice", "b.slice"])),
                ("DeviceAllow", ("a(ss)", [("/dev/char/1:3", "rwm"), ("char-pts", "rw")])),
                ("DevicePolicy", ("s", "strict")),
                ("Nested", ("v", ("s", "x"))),
            ],
        ),
    ),
    ("uoss", (7, "/org/freedesktop/systemd1/job/7", "u.scope", "done")),
    ("ynqiuxtd", (255, -2, 65535, -(1 << 31), (1 << 32) - 1, -(1 << 63), (1 << 64) - 1, 1.5)),
    ("a{sv}", ({"a": ("u", 1), "bb": ("s", "x")},)),
    ("g(ybs)", ("a(sv)", (1, False, ""))),
    ("aay", ([b"", b"\x01\x02\x03"],)),
]


def _jeepney_bytes(signature: str, body: tuple, serial: int) -> bytes:
    addr = DBusAddress("/org/freedesktop/systemd1", bus_name="org.freedesktop.systemd1", interface="i.f")
    return new_method_call(addr, "M", signature, body).serialise(serial=serial)


def _jeepney_parse(data: bytes):
    p = Parser()
    p.add_data(data)
    return p.get_next_message()


def _normal(value):
    """jeepney gives arrays as lists, structs as tuples, ay as bytes: compare through one shape."""
    if isinstance(value, (bytes, bytearray)):
        return [int(b) for b in value]
    if isinstance(value, dict):
        return {k: _normal(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return (
            type(value)(_normal(v) for v in value)
            if isinstance(value, tuple)
            else [_normal(v) for v in value]
        )
    return value


@pytest.mark.parametrize(("signature", "body"), CASES)
def test_jeepney_reads_what_bock_writes(signature, body):
    data = wire.method_call(
        9, "org.freedesktop.systemd1", "/org/freedesktop/systemd1", "i.f", "M", signature, body
    )
    msg = _jeepney_parse(data)
    assert msg is not None
    assert msg.header.message_type == MessageType.method_call
    assert msg.header.serial == 9
    assert msg.header.fields[HeaderFields.member] == "M"
    assert msg.header.fields[HeaderFields.destination] == "org.freedesktop.systemd1"
    assert msg.header.fields[HeaderFields.signature] == signature
    assert _normal(msg.body) == _normal(body)


@pytest.mark.parametrize(("signature", "body"), CASES)
def test_bock_reads_what_jeepney_writes(signature, body):
    data = _jeepney_bytes(signature, body, 11)
    msg, used = wire.parse(data + b"next")
    assert used == len(data)
    assert msg.kind == wire.METHOD_CALL and msg.serial == 11 and msg.member == "M"
    assert _normal(msg.body) == _normal(body)
    # and byte for byte what bock writes for the same call
    mine = wire.method_call(
        11, "org.freedesktop.systemd1", "/org/freedesktop/systemd1", "i.f", "M", signature, body
    )
    assert wire.parse(mine)[0].body == msg.body


def test_big_endian_messages_are_read():
    sig = new_signal(DBusAddress("/o", interface="i.f"), "JobRemoved", "uoss", (3, "/j/3", "u.scope", "done"))
    sig.header.endianness = jeepney.low_level.Endianness.big
    data = sig.serialise(serial=5)
    assert data[:1] == b"B"
    msg, _ = wire.parse(data)
    assert (
        msg.kind == wire.SIGNAL and msg.member == "JobRemoved" and msg.body == (3, "/j/3", "u.scope", "done")
    )


def test_incomplete_and_malformed_input():
    data = wire.method_call(1, "d.e", "/p", "i.f", "M", "s", ("x",))
    for cut in (0, 10, 16, len(data) - 1):
        assert wire.parse(data[:cut]) == (None, 0)
    with pytest.raises(wire.WireError, match="byte order"):
        wire.parse(b"X" + data[1:])
    broken = bytearray(data)
    broken[-6] = 0xFF  # the string's length now runs past the body
    with pytest.raises(wire.WireError, match="truncated"):
        wire.parse(bytes(broken))
    with pytest.raises(wire.WireError, match="does not fit"):
        wire.marshal_body("y", (256,))
    with pytest.raises(wire.WireError, match="unbalanced signature"):
        wire.marshal_body("a(s", (["x"],))
    with pytest.raises(wire.WireError, match="bad signature"):
        wire.marshal_body("z", (1,))
    assert wire.split_signature("sa(sv)a{sv}aay(i(ss))") == ["s", "a(sv)", "a{sv}", "aay", "(i(ss))"]

"""Device rules: runc's defaults, the v1 emulator/transition, and the v2 eBPF program.

The eBPF program is checked by running it: a small interpreter for the opcodes the
generator emits decides every (type, major, minor, access) probe, and must agree
with the emulator (the v1 semantics the program has to reproduce).
"""

from __future__ import annotations

import itertools
import struct

import pytest
from bock._cgroups.devices import (
    DEFAULT_RULES,
    RWM,
    Emulator,
    M,
    R,
    W,
    cgroup_string,
    device_filter,
    rules_from_spec,
)
from bock._cgroups.errors import CgroupConfigError
from bock._spec.resources import DeviceRule

DENY_ALL = [DeviceRule(allow=False, access="rwm")]
CONTAINERD_ALLOW = (
    DENY_ALL
    + [DeviceRule(allow=True, type="c", major=1, minor=n, access="rwm") for n in (3, 5, 7, 8, 9)]
    + [DeviceRule(allow=True, type="c", major=5, minor=n, access="rwm") for n in (0, 1, 2)]
    + [DeviceRule(allow=True, type="c", major=136, access="rwm")]
)


def run_bpf(prog: bytes, dev_type: int, access: int, major: int, minor: int) -> int:
    """Interpret the subset of eBPF that device_filter emits."""
    regs = [0] * 11
    ctx = struct.pack("<III", (access << 16) | dev_type, major, minor)
    insns = [struct.unpack("<BBhi", prog[i : i + 8]) for i in range(0, len(prog), 8)]
    pc = 0
    for _ in range(10000):
        code, regbyte, off, imm = insns[pc]
        dst, src = regbyte & 0xF, regbyte >> 4
        pc += 1
        if code == 0x61:  # ldxw dst, [src+off]
            assert src == 1
            regs[dst] = struct.unpack_from("<I", ctx, off)[0]
        elif code == 0x54:
            regs[dst] = (regs[dst] & imm) & 0xFFFFFFFF
        elif code == 0x74:
            regs[dst] = (regs[dst] & 0xFFFFFFFF) >> imm
        elif code == 0xB4:
            regs[dst] = imm & 0xFFFFFFFF
        elif code == 0xBC:
            regs[dst] = regs[src] & 0xFFFFFFFF
        elif code == 0x55:
            if regs[dst] != imm:
                pc += off
        elif code == 0x15:
            if regs[dst] == imm:
                pc += off
        elif code == 0x5D:
            if regs[dst] != regs[src]:
                pc += off
        elif code == 0x95:
            return regs[0]
        else:
            raise AssertionError(f"unexpected opcode {code:#x}")
    raise AssertionError("program did not terminate")


def emulator_allows(emu: Emulator, kind: str, major: int, minor: int, perms: int) -> bool:
    """What a v1 devices cgroup in this state answers (the kernel's match_exception{,_partial})."""
    matching = [
        p for (k, ma, mi), p in emu.rules.items() if k == kind and ma in (-1, major) and mi in (-1, minor)
    ]
    if emu.default_allow:
        return not any(p & perms for p in matching)
    return any(perms & ~p == 0 for p in matching)


def test_defaults_are_appended_after_the_spec_rules():
    rules = rules_from_spec(DENY_ALL)
    assert rules[0] == ("a", -1, -1, RWM, False)
    assert rules[1:] == list(DEFAULT_RULES)
    text = [cgroup_string(r) for r in rules]
    for line in ("c *:* m", "b *:* m", "c 1:3 rwm", "c 1:5 rwm", "c 1:7 rwm", "c 1:8 rwm", "c 1:9 rwm"):
        assert line in text
    for line in ("c 5:0 rwm", "c 5:1 rwm", "c 5:2 rwm", "c 136:* rwm", "c 10:200 rwm"):
        assert line in text


def test_bad_rules_are_config_errors():
    with pytest.raises(CgroupConfigError, match="device access at 0 field cannot be empty"):
        rules_from_spec([DeviceRule(allow=True, type="c", major=1, minor=3, access="")])
    with pytest.raises(CgroupConfigError, match='invalid cgroup device type "x"'):
        rules_from_spec([DeviceRule(allow=True, type="x", access="r")])
    with pytest.raises(CgroupConfigError, match="unknown mode"):
        rules_from_spec([DeviceRule(allow=True, type="c", access="rwx")])


def test_transition_from_a_fresh_v1_cgroup_is_deny_all_then_the_allow_list():
    current = Emulator.from_list("a *:* rwm\n")
    assert current.default_allow
    target = Emulator.from_rules(rules_from_spec(DENY_ALL))
    writes = [(r[4], cgroup_string(r)) for r in current.transition(target)]
    assert writes[0] == (False, "a *:* rwm")
    assert all(allow for allow, _ in writes[1:])
    assert {line for _, line in writes[1:]} == {cgroup_string(r) for r in DEFAULT_RULES}
    # sorted like runc: by major, then minor, then type
    assert [line for _, line in writes[1:3]] == ["b *:* m", "c *:* m"]


def test_transition_between_allow_lists_is_minimal():
    current = Emulator.from_list("c 1:3 rwm\nc 1:5 rwm\nc 4:* rw\n")
    assert not current.default_allow
    target = Emulator.from_list("c 1:3 rwm\nc 4:* r\nc 7:7 m\n")
    writes = [(r[4], cgroup_string(r)) for r in current.transition(target)]
    assert writes == [(False, "c 1:5 rwm"), (False, "c 4:* w"), (True, "c 7:7 m")]


def test_devices_list_round_trip():
    emu = Emulator.from_rules(rules_from_spec(CONTAINERD_ALLOW))
    listing = "\n".join(cgroup_string((k, ma, mi, p, True)) for (k, ma, mi), p in emu.ordered())
    assert Emulator.from_list(listing) == emu


def test_punching_a_hole_in_a_wildcard_is_refused():
    with pytest.raises(CgroupConfigError, match="cannot punch hole in existing wildcard rule"):
        Emulator.from_rules(
            [
                ("a", -1, -1, RWM, False),
                ("c", 1, -1, RWM, True),
                ("c", 1, 3, R, False),
            ]
        )


def test_allow_all_then_deny_keeps_a_deny_list():
    emu = Emulator.from_rules([("a", -1, -1, RWM, True), ("c", 1, 3, W, False)])
    assert emu.default_allow
    assert emu.rules == {("c", 1, 3): W}


@pytest.mark.parametrize(
    "spec",
    [
        DENY_ALL,
        CONTAINERD_ALLOW,
        [DeviceRule(allow=True, access="rwm")],
        DENY_ALL + [DeviceRule(allow=True, type="b", major=8, access="r")],
        [
            DeviceRule(allow=True, access="rwm"),
            DeviceRule(allow=False, type="c", major=1, minor=11, access="w"),
        ],
    ],
)
def test_the_ebpf_program_decides_like_the_v1_controller(spec):
    rules = rules_from_spec(spec)
    emu = Emulator.from_rules(rules)
    prog = device_filter(rules)
    assert len(prog) % 8 == 0
    majors = (1, 4, 5, 8, 10, 136, 250)
    minors = (0, 1, 2, 3, 5, 7, 8, 9, 11, 200)
    for kind, major, minor, perms in itertools.product("bc", majors, minors, (R, W, M, R | W, RWM)):
        # the kernel's access bits: mknod 1, read 2, write 4
        access = (1 if perms & M else 0) | (2 if perms & R else 0) | (4 if perms & W else 0)
        got = run_bpf(prog, 1 if kind == "b" else 2, access, major, minor)
        assert got == int(emulator_allows(emu, kind, major, minor, perms)), (kind, major, minor, perms)


def test_deny_all_program_still_allows_the_defaults():
    prog = device_filter(rules_from_spec(DENY_ALL))
    read_write = 2 | 4
    assert run_bpf(prog, 2, read_write, 1, 3) == 1  # /dev/null
    assert run_bpf(prog, 2, read_write, 136, 4) == 1  # /dev/pts/4
    assert run_bpf(prog, 2, read_write, 1, 11) == 0  # /dev/kmsg
    assert run_bpf(prog, 1, 1, 8, 0) == 1  # mknod of any block device
    assert run_bpf(prog, 1, 2, 8, 0) == 0  # but no reading it


def test_a_spec_device_at_a_default_path_replaces_its_default_rule():
    # runc's createDevices: the spec's /dev/null wins; its cgroup access is then the spec's to give.
    rules = rules_from_spec(DENY_ALL, device_paths=["/dev/null", "/dev/fuse"])
    lines = {cgroup_string(r) for r in rules}
    assert "c 1:3 rwm" not in lines
    assert {"c 1:5 rwm", "c 136:* rwm", "c 10:200 rwm"} <= lines
    emu = Emulator.from_rules(rules)
    assert not emulator_allows(emu, "c", 1, 3, R)
    assert emulator_allows(emu, "c", 1, 5, R)

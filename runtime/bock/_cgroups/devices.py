"""Device access rules: runc's defaults, its cgroup v1 emulator, and the v2 eBPF filter.

A rule is ``(type, major, minor, perms, allow)`` with type ``a``/``b``/``c``, ``-1``
for a wildcard number and ``perms`` a bit set of r/w/m. The emulator (a port of
runc's ``devices_emulator.go``) reduces a rule list to an allow- or deny-list with
exceptions, exactly as the v1 ``devices`` controller would; it refuses to "punch
holes" in a wildcard rule (which v1 silently ignores). From it we get

- for v1: the minimal sequence of ``devices.allow``/``devices.deny`` writes that
  turns the cgroup's current ``devices.list`` into the target;
- for v2: a ``BPF_PROG_TYPE_CGROUP_DEVICE`` program (runc's ``devicefilter.go``,
  itself from crun), as raw instructions.
"""

from __future__ import annotations

import _struct

from bock._cgroups.errors import CgroupConfigError, CgroupError

R, W, M = 1, 2, 4
RWM = R | W | M
_PERM_BITS = {"r": R, "w": W, "m": M}

Rule = tuple  # (type: str, major: int, minor: int, perms: int, allow: bool)

# runc's AllowedDevices (libcontainer/specconv): appended after the spec's rules, so a
# spec that only says "deny all" (podman) still gets them. Plus /dev/console (5:1),
# which a container with a terminal has.
DEFAULT_RULES: tuple[Rule, ...] = (
    ("c", -1, -1, M, True),
    ("b", -1, -1, M, True),
    ("c", 1, 3, RWM, True),  # /dev/null
    ("c", 1, 8, RWM, True),  # /dev/random
    ("c", 1, 7, RWM, True),  # /dev/full
    ("c", 5, 0, RWM, True),  # /dev/tty
    ("c", 1, 5, RWM, True),  # /dev/zero
    ("c", 1, 9, RWM, True),  # /dev/urandom
    ("c", 5, 1, RWM, True),  # /dev/console
    ("c", 136, -1, RWM, True),  # /dev/pts/*
    ("c", 5, 2, RWM, True),  # /dev/ptmx
    ("c", 10, 200, RWM, True),  # /dev/net/tun
)


def perms_str(perms: int) -> str:
    return ("r" if perms & R else "") + ("w" if perms & W else "") + ("m" if perms & M else "")


def parse_perms(text: str) -> int:
    bits = 0
    for ch in text:
        bit = _PERM_BITS.get(ch)
        if bit is None:
            raise CgroupConfigError(f"invalid device access {text!r}: unknown mode {ch!r}")
        bits |= bit
    return bits


def _num(n: int) -> str:
    return "*" if n < 0 else str(n)


def cgroup_string(rule: Rule) -> str:
    """The ``devices.allow``/``deny`` line: ``c 1:3 rwm``, ``a *:* rwm``."""
    kind, major, minor, perms, _ = rule
    if kind == "a":
        return "a *:* rwm"
    return f"{kind} {_num(major)}:{_num(minor)} {perms_str(perms)}"


# The default rules that stand for a device node runc creates: a spec that lists a device
# at the same path (``linux.devices``) replaces the node, and its rule is dropped (runc's
# createDevices); the spec's own ``linux.resources.devices`` then decide.
DEFAULT_PATHS = {
    "/dev/null": (1, 3),
    "/dev/random": (1, 8),
    "/dev/full": (1, 7),
    "/dev/tty": (5, 0),
    "/dev/zero": (1, 5),
    "/dev/urandom": (1, 9),
    "/dev/console": (5, 1),
}


def rules_from_spec(spec_rules: list, device_paths=()) -> list[Rule]:
    """``linux.resources.devices`` (typed ``DeviceRule``) as rules, runc's defaults appended.

    ``device_paths``: the paths of the spec's ``linux.devices``; their default rules are left out.
    """
    out: list[Rule] = []
    for i, d in enumerate(spec_rules):
        kind = d.type or "a"
        if kind not in ("a", "b", "c"):
            raise CgroupConfigError(f'invalid cgroup device type "{kind}"')
        if not d.access:
            raise CgroupConfigError(f"device access at {i} field cannot be empty")
        major = -1 if d.major is None else d.major
        minor = -1 if d.minor is None else d.minor
        out.append((kind, major, minor, parse_perms(d.access), bool(d.allow)))
    dropped = {DEFAULT_PATHS[p] for p in device_paths if p in DEFAULT_PATHS}
    out.extend(r for r in DEFAULT_RULES if (r[1], r[2]) not in dropped or r[0] != "c")
    return out


class Emulator:
    """The state of a v1 devices cgroup: default policy + exceptions (runc's emulator)."""

    __slots__ = ("default_allow", "rules")

    def __init__(self, default_allow: bool = False) -> None:
        self.default_allow = default_allow
        self.rules: dict[tuple[str, int, int], int] = {}

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Emulator)
            and self.default_allow == other.default_allow
            and self.rules == other.rules
        )

    __hash__ = None  # type: ignore[assignment]

    @classmethod
    def from_rules(cls, rules: list[Rule]) -> Emulator:
        emu = cls()
        for rule in rules:
            emu.apply(rule)
        return emu

    @classmethod
    def from_list(cls, text: str) -> Emulator:
        """Rebuild from ``devices.list`` (an allow list; ``a *:* rwm`` = allow-all mode)."""
        emu = cls(default_allow=False)
        for line in text.splitlines():
            line = line.strip()
            if not line:
                continue
            kind, nums, perms = line.split(" ")
            if kind == "a":
                emu.apply(("a", -1, -1, RWM, True))
                continue
            major, minor = nums.split(":")
            emu.apply(
                (
                    kind,
                    -1 if major == "*" else int(major),
                    -1 if minor == "*" else int(minor),
                    parse_perms(perms),
                    True,
                )
            )
        return emu

    def apply(self, rule: Rule) -> None:
        kind, major, minor, perms, allow = rule
        if kind == "a":
            self.default_allow = allow
            self.rules = {}
            return
        key = (kind, major, minor)
        if allow == self.default_allow:
            self._remove(key, perms)
        else:
            self.rules[key] = self.rules.get(key, 0) | perms

    def _remove(self, key: tuple[str, int, int], perms: int) -> None:
        kind, major, minor = key
        for partial in ((kind, -1, minor), (kind, major, -1), (kind, -1, -1)):
            if partial == key:
                continue
            if self.rules.get(partial, 0) & perms:
                raise CgroupConfigError(
                    f"requested rule [{cgroup_string((kind, major, minor, perms, True))}] not supported by"
                    f" devices cgroupv1 (cannot punch hole in existing wildcard rule"
                    f" [{cgroup_string((kind, partial[1], partial[2], self.rules[partial], True))}])"
                )
        left = self.rules.get(key, 0) & ~perms
        if left:
            self.rules[key] = left
        else:
            self.rules.pop(key, None)

    def ordered(self) -> list[tuple[tuple[str, int, int], int]]:
        # runc sorts by (major, minor, type)
        return sorted(self.rules.items(), key=lambda kv: (kv[0][1], kv[0][2], kv[0][0]))

    def transition(self, target: Emulator) -> list[Rule]:
        """The fewest rules that turn this state into ``target`` (runc's ``Transition``)."""
        out: list[Rule] = []
        old = self.rules
        if self.default_allow or self.default_allow != target.default_allow:
            # A deny-list's exceptions cannot be read back: start from a clean slate.
            out.append(("a", -1, -1, RWM, target.default_allow))
            old = {}
        for key, old_perms in sorted(old.items(), key=lambda kv: (kv[0][1], kv[0][2], kv[0][0])):
            dropped = old_perms & ~target.rules.get(key, 0)
            if dropped:
                out.append((*key, dropped, target.default_allow))
        for key, new_perms in target.ordered():
            gained = new_perms & ~old.get(key, 0)
            if gained:
                out.append((*key, gained, not target.default_allow))
        return out


# --- cgroup v2: the eBPF program -------------------------------------------------

# struct bpf_insn {u8 code; u8 dst:4, src:4; s16 off; s32 imm;}
_INSN = _struct.Struct("<BBhi")
_R0, _R1, _R2, _R3, _R4, _R5 = range(6)
_LDX_MEM_W = 0x61
_ALU_AND_K = 0x54
_ALU_RSH_K = 0x74
_ALU_MOV_K = 0xB4
_ALU_MOV_X = 0xBC
_JMP_JNE_K = 0x55
_JMP_JNE_X = 0x5D
_JMP_JEQ_K = 0x15
_JMP_EXIT = 0x95
_DEVCG_DEV_BLOCK = 1
_DEVCG_DEV_CHAR = 2
# BPF_DEVCG_ACC_{MKNOD,READ,WRITE} = 1, 2, 4
_ACC = {M: 1, R: 2, W: 4}
LICENSE = b"Apache\0"


def _bpf_access(perms: int) -> int:
    return sum(bit for p, bit in _ACC.items() if perms & p)


def device_filter(rules: list[Rule]) -> bytes:
    """The cgroup device program for ``rules``, as raw ``bpf_insn`` bytes.

    ctx is ``struct bpf_cgroup_dev_ctx {u32 access_type; u32 major; u32 minor;}`` with
    the device type in the low and the access in the high 16 bits of access_type.
    Each rule is a block that jumps to the next one on mismatch; the program ends
    with the default verdict.
    """
    emu = Emulator.from_rules(rules)
    # Clean rules relative to an empty deny-all cgroup; the leading "a" rule only sets the mode.
    clean = [r for r in Emulator().transition(emu) if r[0] != "a"]
    blocks: list[list[tuple[int, int, int, int, object]]] = []
    for kind, major, minor, perms, allow in clean:
        if allow == emu.default_allow:
            raise CgroupError(
                f"[internal error] no-op device rule {cgroup_string((kind, major, minor, perms, allow))}"
            )
        block: list[tuple[int, int, int, int, object]] = [
            (_JMP_JNE_K, _R2, 0, _DEVCG_DEV_CHAR if kind == "c" else _DEVCG_DEV_BLOCK, "next")
        ]
        access = _bpf_access(perms)
        if allow:
            # An allow rule matches when it grants every requested access (skip the test for rwm).
            if access != 7:
                block += [
                    (_ALU_MOV_X, _R1, _R3, 0, None),
                    (_ALU_AND_K, _R1, 0, access, None),
                    (_JMP_JNE_X, _R1, _R3, 0, "next"),
                ]
        else:
            # A deny exception (allow-all mode) matches when it covers ANY requested access,
            # as the v1 controller's match_exception_partial() does (runc's program only
            # denies a request its rule fully covers: O_RDWR slips past a "w" deny there).
            block += [
                (_ALU_MOV_X, _R1, _R3, 0, None),
                (_ALU_AND_K, _R1, 0, access, None),
                (_JMP_JEQ_K, _R1, 0, 0, "next"),
            ]
        if major >= 0:
            block.append((_JMP_JNE_K, _R4, 0, major, "next"))
        if minor >= 0:
            block.append((_JMP_JNE_K, _R5, 0, minor, "next"))
        block += [(_ALU_MOV_K, _R0, 0, 1 if allow else 0, None), (_JMP_EXIT, 0, 0, 0, None)]
        blocks.append(block)
    prog = [
        _INSN.pack(_LDX_MEM_W, _R2 | (_R1 << 4), 0, 0),
        _INSN.pack(_ALU_AND_K, _R2, 0, 0xFFFF),
        _INSN.pack(_LDX_MEM_W, _R3 | (_R1 << 4), 0, 0),
        _INSN.pack(_ALU_RSH_K, _R3, 0, 16),
        _INSN.pack(_LDX_MEM_W, _R4 | (_R1 << 4), 4, 0),
        _INSN.pack(_LDX_MEM_W, _R5 | (_R1 << 4), 8, 0),
    ]
    for block in blocks:
        n = len(block)
        for i, (code, dst, src, imm, jump) in enumerate(block):
            off = n - i - 1 if jump == "next" else 0  # to the first instruction of the next block
            prog.append(_INSN.pack(code, dst | (src << 4), off, imm))
    prog.append(_INSN.pack(_ALU_MOV_K, _R0, 0, 1 if emu.default_allow else 0))
    prog.append(_INSN.pack(_JMP_EXIT, 0, 0, 0))
    return b"".join(prog)

"""seccomp: the typed model, compile errors, runc's rules, and the compiled cBPF program.

The programs are checked with a small classic-BPF interpreter over ``struct seccomp_data``
(the kernel's input), so that the -ENOSYS stub and libseccomp's output are judged by what
they return for a given (arch, syscall, args), not by their bytes.
"""

from __future__ import annotations

import json
import operator
import os
import struct
import sys

import pytest
from bock._security import seccomp as sc
from bock._security.seccomp import SeccompFilter
from bock._spec.config import Linux
from bock._spec.seccomp import LinuxSeccomp
from bock.errors import ConfigError

DATA = os.path.join(os.path.dirname(os.path.dirname(__file__)), "data")
X86_64, X86, X32 = 0xC000003E, 0x40000003, 0xC000003E
X32_BIT = 0x40000000
ALLOW, ERRNO, KILL_THREAD, KILL_PROCESS, TRAP, LOG, NOTIFY = (
    0x7FFF0000,
    0x00050000,
    0,
    0x80000000,
    0x00030000,
    0x7FFC0000,
    0x7FC00000,
)

pytestmark = pytest.mark.skipif(os.uname().machine != "x86_64", reason="syscall numbers below are x86_64")


_ALU = {
    0x00: operator.add,
    0x10: operator.sub,
    0x40: operator.or_,
    0x50: operator.and_,
    0x60: operator.lshift,
    0x70: operator.rshift,
    0xA0: operator.xor,
}


def run_bpf(program: bytes, nr: int, arch: int = X86_64, args: tuple[int, ...] = ()) -> int:
    """Interpret a classic BPF seccomp program; return the 32-bit action."""
    args = tuple(args) + (0,) * (6 - len(args))
    data = struct.pack("=iIQ6Q", nr, arch, 0, *args)
    insns = [struct.unpack_from("=HBBI", program, i) for i in range(0, len(program), 8)]
    a = x = 0
    mem = [0] * 16
    pc = 0
    while True:
        code, jt, jf, k = insns[pc]
        pc += 1
        cls = code & 0x07
        if cls == 0x00:  # LD
            mode = code & 0xE0
            if mode == 0x20:
                a = struct.unpack_from("=I", data, k)[0]
            elif mode == 0x00:
                a = k
            elif mode == 0x60:
                a = mem[k]
            else:
                raise AssertionError(f"LD mode {code:#x}")
        elif cls == 0x01:  # LDX
            x = k if code & 0xE0 == 0x00 else mem[k]
        elif cls == 0x02:
            mem[k] = a
        elif cls == 0x03:
            mem[k] = x
        elif cls == 0x04:  # ALU
            src = x if code & 0x08 else k
            op = code & 0xF0
            a = _ALU[op](a, src) & 0xFFFFFFFF
        elif cls == 0x05:  # JMP
            op = code & 0xF0
            src = x if code & 0x08 else k
            if op == 0x00:
                pc += k
                continue
            cond = {0x10: a == src, 0x20: a > src, 0x30: a >= src, 0x40: bool(a & src)}[op]
            pc += jt if cond else jf
        elif cls == 0x06:
            return a if code & 0x18 == 0x10 else k
        elif cls == 0x07:
            if code & 0xF8 == 0x00:
                x = a
            else:
                a = x
        else:
            raise AssertionError(f"opcode {code:#x}")


def compile_json(doc: dict) -> SeccompFilter:
    return SeccompFilter.compile(LinuxSeccomp.from_json(doc))


def load_profile(name: str) -> dict:
    with open(os.path.join(DATA, name)) as f:
        return json.load(f)


# --- the typed model ------------------------------------------------------------------


def test_model_parses_every_field():
    doc = {
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": 38,
        "architectures": ["SCMP_ARCH_X86_64"],
        "flags": ["SECCOMP_FILTER_FLAG_LOG"],
        "listenerPath": "/run/agent.sock",
        "listenerMetadata": "meta",
        "syscalls": [
            {
                "names": ["personality"],
                "action": "SCMP_ACT_ALLOW",
                "errnoRet": 5,
                "args": [{"index": 0, "value": 8, "valueTwo": 9, "op": "SCMP_CMP_MASKED_EQ"}],
            }
        ],
    }
    spec = LinuxSeccomp.from_json(doc)
    assert spec.default_errno_ret == 38
    assert spec.flags == ["SECCOMP_FILTER_FLAG_LOG"]
    assert spec.listener_path == "/run/agent.sock" and spec.listener_metadata == "meta"
    (call,) = spec.syscalls
    assert call.errno_ret == 5
    (arg,) = call.args
    assert (arg.index, arg.value, arg.value_two, arg.op) == (0, 8, 9, "SCMP_CMP_MASKED_EQ")
    assert spec.to_json() == doc
    assert LinuxSeccomp.from_json(Linux.from_json({"seccomp": doc}).seccomp) == spec


def test_model_flags_absent_vs_empty():
    assert LinuxSeccomp.from_json({"defaultAction": "SCMP_ACT_ALLOW"}).flags is None
    assert LinuxSeccomp.from_json({"defaultAction": "SCMP_ACT_ALLOW", "flags": []}).flags == []
    assert (
        LinuxSeccomp.from_json(
            {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_LOG"}]}
        )
        .syscalls[0]
        .args
        == []
    )


def test_model_requires_names_and_action():
    with pytest.raises(KeyError):
        LinuxSeccomp.from_json({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"]}]})


# --- compile errors (runc's wording where runc has one) ---------------------------------


def base(**over) -> dict:
    doc = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]}
    doc.update(over)
    return doc


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        (base(defaultAction="SCMP_ACT_MAYBE"), "string SCMP_ACT_MAYBE is not a valid action for seccomp"),
        (
            base(syscalls=[{"names": ["mkdir"], "action": "SCMP_ACT_DENY"}]),
            "string SCMP_ACT_DENY is not a valid action for seccomp",
        ),
        (
            base(
                syscalls=[
                    {
                        "names": ["mkdir"],
                        "action": "SCMP_ACT_ERRNO",
                        "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_XX"}],
                    }
                ]
            ),
            "string SCMP_CMP_XX is not a valid operator for seccomp",
        ),
        (
            base(
                syscalls=[
                    {
                        "names": ["mkdir"],
                        "action": "SCMP_ACT_ERRNO",
                        "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}],
                    }
                ]
            ),
            "argument index 6 out of range",
        ),
        (base(architectures=["SCMP_ARCH_Z80"]), "string SCMP_ARCH_Z80 is not a valid arch for seccomp"),
        (base(flags=["SECCOMP_FILTER_FLAG_FAST"]), "seccomp flag SECCOMP_FILTER_FLAG_FAST is not known"),
        (base(syscalls=[{"names": [""], "action": "SCMP_ACT_ERRNO"}]), "empty string is not a valid syscall"),
        (
            base(defaultAction="SCMP_ACT_NOTIFY", listenerPath="/x"),
            "SCMP_ACT_NOTIFY cannot be used as default action",
        ),
        (
            base(listenerPath="/x", syscalls=[{"names": ["write"], "action": "SCMP_ACT_NOTIFY"}]),
            "SCMP_ACT_NOTIFY cannot be used for the write syscall",
        ),
        (
            base(syscalls=[{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]),
            "seccomp listenerPath is not set",
        ),
        (base(flags=["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]), "needs an SCMP_ACT_NOTIFY rule"),
    ],
)
def test_compile_errors(doc, message):
    with pytest.raises(ConfigError) as err:
        compile_json(doc)
    assert message in str(err.value)


def test_arch_unknown_to_this_libseccomp():
    if sc.libseccomp().seccomp_arch_resolve_name(b"loongarch64"):
        pytest.skip("this libseccomp knows loongarch64")
    with pytest.raises(ConfigError, match="SCMP_ARCH_LOONGARCH64 is not supported by libseccomp"):
        compile_json(base(architectures=["SCMP_ARCH_LOONGARCH64"]))


def test_unknown_syscall_name_is_ignored_like_runc():
    flt = compile_json(
        base(syscalls=[{"names": ["mkdir", "no_such_syscall", "rmdir"], "action": "SCMP_ACT_ERRNO"}])
    )
    assert flt.ignored == ("no_such_syscall",)
    assert run_bpf(flt.program, 83) == ERRNO | 1  # mkdir
    assert run_bpf(flt.program, 84) == ERRNO | 1  # rmdir


def test_disabled_when_no_default_action_and_no_syscalls():
    flt = compile_json({"defaultAction": ""})
    assert not flt.enabled and flt.load() is None


# --- actions and runc's special cases -------------------------------------------------


def test_actions_and_errno_defaults():
    flt = compile_json(
        {
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [
                {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"},
                {"names": ["rmdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
                {"names": ["chdir"], "action": "SCMP_ACT_KILL"},
                {"names": ["fchdir"], "action": "SCMP_ACT_KILL_PROCESS"},
                {"names": ["sync"], "action": "SCMP_ACT_TRAP"},
                {"names": ["getpid"], "action": "SCMP_ACT_LOG"},
                {"names": ["getppid"], "action": "SCMP_ACT_TRACE"},
                {"names": ["getpgrp"], "action": "SCMP_ACT_KILL_THREAD"},
            ],
        }
    )
    p = flt.program
    assert run_bpf(p, 0) == ALLOW  # read
    assert run_bpf(p, 83) == ERRNO | 1  # no errnoRet: EPERM, as runc
    assert run_bpf(p, 84) == ERRNO | 13
    assert run_bpf(p, 80) == KILL_THREAD  # SCMP_ACT_KILL is KILL_THREAD in runc
    assert run_bpf(p, 81) == KILL_PROCESS
    assert run_bpf(p, 162) == TRAP
    assert run_bpf(p, 39) == LOG
    assert run_bpf(p, 110) == 0x7FF00000 | 1  # TRACE, EPERM data
    assert run_bpf(p, 111) == KILL_THREAD


def test_default_errno_ret():
    flt = compile_json(
        {
            "defaultAction": "SCMP_ACT_ERRNO",
            "defaultErrnoRet": 38,
            "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW"}],
        }
    )
    assert run_bpf(flt.program, 0) == ALLOW
    assert run_bpf(flt.program, 1) == ERRNO | 38


def test_rule_with_default_action_is_skipped():
    rule = {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}
    with_redundant = compile_json(
        {
            "defaultAction": "SCMP_ACT_ERRNO",
            "syscalls": [rule, {"names": ["read"], "action": "SCMP_ACT_ALLOW"}],
        }
    )
    without = compile_json(
        {
            "defaultAction": "SCMP_ACT_ERRNO",
            "syscalls": [{"names": ["read", "mkdir"], "action": "SCMP_ACT_ALLOW"}],
        }
    )
    assert run_bpf(with_redundant.program, 83) == ERRNO | 1
    assert run_bpf(without.program, 83) == ALLOW
    # But an ERRNO rule with another errno is not redundant.
    other = compile_json(
        {
            "defaultAction": "SCMP_ACT_ERRNO",
            "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 2}],
        }
    )
    assert run_bpf(other.program, 83) == ERRNO | 2


@pytest.mark.parametrize(
    ("op", "value", "hits", "misses"),
    [
        ("SCMP_CMP_EQ", 8, [8], [7, 9]),
        ("SCMP_CMP_NE", 8, [7, 9], [8]),
        ("SCMP_CMP_LT", 8, [0, 7], [8, 9]),
        ("SCMP_CMP_LE", 8, [7, 8], [9]),
        ("SCMP_CMP_GT", 8, [9, 1 << 40], [8, 0]),
        ("SCMP_CMP_GE", 8, [8, 9], [7]),
    ],
)
def test_operators(op, value, hits, misses):
    flt = compile_json(
        {
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [
                {
                    "names": ["personality"],
                    "action": "SCMP_ACT_ERRNO",
                    "errnoRet": 22,
                    "args": [{"index": 0, "value": value, "op": op}],
                }
            ],
        }
    )
    for v in hits:
        assert run_bpf(flt.program, 135, args=(v,)) == ERRNO | 22, v
    for v in misses:
        assert run_bpf(flt.program, 135, args=(v,)) == ALLOW, v


def test_masked_eq_uses_value_as_mask_and_value_two():
    flt = compile_json(
        {
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [
                {
                    "names": ["clone"],
                    "action": "SCMP_ACT_ERRNO",
                    "args": [{"index": 0, "value": 0xF0, "valueTwo": 0x30, "op": "SCMP_CMP_MASKED_EQ"}],
                }
            ],
        }
    )
    assert run_bpf(flt.program, 56, args=(0x3F,)) == ERRNO | 1
    assert run_bpf(flt.program, 56, args=(0x131,)) == ERRNO | 1
    assert run_bpf(flt.program, 56, args=(0x70,)) == ALLOW
    assert run_bpf(flt.program, 56, args=(0x0F,)) == ALLOW


def test_conditions_on_distinct_args_are_anded():
    flt = compile_json(
        {
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [
                {
                    "names": ["kill"],
                    "action": "SCMP_ACT_ERRNO",
                    "args": [
                        {"index": 0, "value": 1, "op": "SCMP_CMP_EQ"},
                        {"index": 1, "value": 9, "op": "SCMP_CMP_EQ"},
                    ],
                }
            ],
        }
    )
    assert run_bpf(flt.program, 62, args=(1, 9)) == ERRNO | 1
    assert run_bpf(flt.program, 62, args=(1, 15)) == ALLOW
    assert run_bpf(flt.program, 62, args=(2, 9)) == ALLOW


def test_conditions_on_the_same_arg_become_separate_rules():
    # runc's fallback: each condition is a rule of its own, i.e. they are ORed.
    flt = compile_json(
        {
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [
                {
                    "names": ["personality"],
                    "action": "SCMP_ACT_ERRNO",
                    "args": [
                        {"index": 0, "value": 1, "op": "SCMP_CMP_EQ"},
                        {"index": 0, "value": 2, "op": "SCMP_CMP_EQ"},
                    ],
                }
            ],
        }
    )
    assert run_bpf(flt.program, 135, args=(1,)) == ERRNO | 1
    assert run_bpf(flt.program, 135, args=(2,)) == ERRNO | 1
    assert run_bpf(flt.program, 135, args=(3,)) == ALLOW


# --- runc's -ENOSYS stub ---------------------------------------------------------------


def test_enosys_for_syscalls_newer_than_the_profile():
    doc = {
        "defaultAction": "SCMP_ACT_ERRNO",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [{"names": ["read", "write", "openat"], "action": "SCMP_ACT_ALLOW"}],
    }
    p = compile_json(doc).program
    assert run_bpf(p, 0) == ALLOW
    assert run_bpf(p, 83) == ERRNO | 1  # mkdir (83 < openat 257): the default
    assert run_bpf(p, 258) == ERRNO | 38  # above the highest named syscall: ENOSYS
    assert run_bpf(p, 435) == ERRNO | 38  # clone3
    # i386: openat is 295 there.
    assert run_bpf(p, 3, arch=X86) == ALLOW
    assert run_bpf(p, 200, arch=X86) == ERRNO | 1
    assert run_bpf(p, 296, arch=X86) == ERRNO | 38
    # x32: same audit arch as x86_64, syscall numbers carry bit 30.
    assert run_bpf(p, X32_BIT | 0, arch=X32) == ALLOW
    assert run_bpf(p, X32_BIT | 83, arch=X32) == ERRNO | 1
    assert run_bpf(p, X32_BIT | 300, arch=X32) == ERRNO | 38
    # An arch outside the filter gets libseccomp's bad-arch action (kill).
    assert run_bpf(p, 0, arch=0xC00000B7) == KILL_THREAD


def test_no_stub_for_permissive_default_or_enosys_default():
    for doc in (
        {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]},
        {"defaultAction": "SCMP_ACT_LOG", "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]},
    ):
        p = compile_json(doc).program
        assert run_bpf(p, 440) in (ALLOW, LOG)
    p = compile_json(
        {
            "defaultAction": "SCMP_ACT_ERRNO",
            "defaultErrnoRet": 38,
            "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW"}],
        }
    ).program
    assert run_bpf(p, 440) == ERRNO | 38
    assert run_bpf(p, 1) == ERRNO | 38


def test_stub_with_kill_default():
    p = compile_json(
        {
            "defaultAction": "SCMP_ACT_KILL_PROCESS",
            "syscalls": [{"names": ["read", "mkdir"], "action": "SCMP_ACT_ALLOW"}],
        }
    ).program
    assert run_bpf(p, 83) == ALLOW
    assert run_bpf(p, 1) == KILL_PROCESS
    assert run_bpf(p, 84) == ERRNO | 38


@pytest.mark.parametrize(
    "profile", ["podman-4.3-default-seccomp.json", "containerd-1.6-ctr-run-seccomp.json"]
)
def test_real_profiles(profile):
    doc = load_profile(profile)
    flt = compile_json(doc)
    p = flt.program
    assert flt.flags == 1 << 2  # SPEC_ALLOW by default (no "flags" in these profiles)
    assert run_bpf(p, 0) == ALLOW  # read
    assert run_bpf(p, 59) == ALLOW  # execve
    # clone3: podman allows it; containerd 1.6 answers ENOSYS so that glibc falls back to clone.
    assert run_bpf(p, 435) == (ALLOW if "podman" in profile else ERRNO | 38)
    # kexec_load: podman's explicit EPERM rule; containerd's default (EPERM, no defaultErrnoRet).
    assert run_bpf(p, 246) == ERRNO | 1
    assert run_bpf(p, 174) == ERRNO | (38 if "podman" in profile else 1)  # create_module: in neither profile
    assert run_bpf(p, 135, args=(0,)) == ALLOW  # personality(PER_LINUX)
    assert run_bpf(p, 135, args=(0x0400000,)) != ALLOW  # personality(ADDR_NO_RANDOMIZE): denied
    assert run_bpf(p, 999) == ERRNO | 38  # beyond everything: ENOSYS


@pytest.mark.parametrize(
    "profile", ["podman-4.3-default-seccomp.json", "containerd-1.6-ctr-run-seccomp.json"]
)
def test_every_unconditional_rule_of_real_profiles(profile):
    """Each name of a rule without conditions gets that rule's action on x86_64."""
    doc = load_profile(profile)
    p = compile_json(doc).program
    resolve = sc.libseccomp().seccomp_syscall_resolve_name
    seen: dict[str, int] = {}
    for call in doc["syscalls"]:
        if call.get("args"):
            continue
        action = sc._action(call["action"], call.get("errnoRet"))
        for name in call["names"]:
            seen[name] = -1 if name in seen else action
    checked = 0
    for name, action in seen.items():
        nr = resolve(name.encode())
        if nr < 0 or action < 0:
            continue  # not an x86_64 syscall, or listed twice
        assert run_bpf(p, nr) == action, name
        checked += 1
    assert checked > 280


def test_containerd_clone_namespace_flags_masked():
    p = compile_json(load_profile("containerd-1.6-ctr-run-seccomp.json")).program
    assert run_bpf(p, 56, args=(0x11,)) == ALLOW  # clone(SIGCHLD|...): no namespace flags
    assert run_bpf(p, 56, args=(0x10000000,)) == ERRNO | 1  # CLONE_NEWUSER


def test_flags():
    assert compile_json(base(flags=[])).flags == 0
    assert compile_json(base(flags=["SECCOMP_FILTER_FLAG_LOG"])).flags == 1 << 1
    assert compile_json(base(flags=["SECCOMP_FILTER_FLAG_TSYNC"])).flags == 0  # recognised, ignored (runc)
    flt = compile_json(base(listenerPath="/x", syscalls=[{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]))
    assert flt.needs_notify and flt.flags == (1 << 2) | (1 << 3)
    assert run_bpf(flt.program, 83) == NOTIFY


def test_features():
    feats = sc.features()
    assert feats["enabled"] is True
    assert "SCMP_ACT_KILL_PROCESS" in feats["actions"] and "SCMP_ACT_NOTIFY" in feats["actions"]
    assert len(feats["operators"]) == 7
    assert "SCMP_ARCH_X86_64" in feats["archs"] and "SCMP_ARCH_X32" in feats["archs"]
    assert feats["knownFlags"] == [
        "SECCOMP_FILTER_FLAG_TSYNC",
        "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
        "SECCOMP_FILTER_FLAG_LOG",
        "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
    ]
    assert set(feats["supportedFlags"]) <= set(feats["knownFlags"])
    assert "SECCOMP_FILTER_FLAG_LOG" in feats["supportedFlags"]  # any kernel since 4.14


def test_version_is_a_dotted_triple():
    assert sc.version().count(".") == 2


def test_enosys_stub_alone():
    # The stub in front of a one-instruction filter that allows everything.
    last = {0xC000003E: {0xC000003E: 334, 0x4000003E: X32_BIT | 547}, 0x40000003: {0x40000003: 450}}
    prog = sc.enosys_stub(last) + struct.pack("=HBBI", 0x06, 0, 0, ALLOW)
    assert run_bpf(prog, 334) == ALLOW
    assert run_bpf(prog, 335) == ERRNO | 38
    assert run_bpf(prog, X32_BIT | 547, arch=X32) == ALLOW
    assert run_bpf(prog, X32_BIT | 548, arch=X32) == ERRNO | 38
    assert run_bpf(prog, 450, arch=X86) == ALLOW
    assert run_bpf(prog, 451, arch=X86) == ERRNO | 38
    assert run_bpf(prog, 9999, arch=0xC00000B7) == ALLOW  # an arch without a section: into the filter
    only_amd64 = sc.enosys_stub({0xC000003E: {0xC000003E: 10}}) + struct.pack("=HBBI", 0x06, 0, 0, ALLOW)
    assert run_bpf(only_amd64, 11) == ERRNO | 38
    assert run_bpf(only_amd64, X32_BIT | 11, arch=X32) == ALLOW  # x32 calls are the filter's business
    only_x32 = sc.enosys_stub({0xC000003E: {0x4000003E: X32_BIT | 10}}) + struct.pack(
        "=HBBI", 0x06, 0, 0, ALLOW
    )
    assert run_bpf(only_x32, X32_BIT | 11, arch=X32) == ERRNO | 38
    assert run_bpf(only_x32, 11) == ALLOW
    assert sys.byteorder == "little"


# --- the compiled-program cache ----------------------------------------------------------


def test_cache_hit_skips_libseccomp(tmp_path, monkeypatch):
    doc = load_profile("podman-4.3-default-seccomp.json")
    doc["listenerPath"] = "/run/agent.sock"
    doc["syscalls"].append({"names": ["create_module"], "action": "SCMP_ACT_NOTIFY"})
    first = SeccompFilter.compile(LinuxSeccomp.from_json(doc), cache_dir=str(tmp_path))
    (entry,) = [p for p in tmp_path.iterdir()]
    assert entry.stat().st_mode & 0o777 == 0o600

    def boom(spec):
        raise AssertionError("compiled again")

    monkeypatch.setattr(SeccompFilter, "_compile", classmethod(lambda cls, spec: boom(spec)))
    again = SeccompFilter.compile(LinuxSeccomp.from_json(doc), cache_dir=str(tmp_path))
    assert again.program == first.program and again.flags == first.flags
    assert again.needs_notify and again.listener_path == "/run/agent.sock"
    assert run_bpf(again.program, 174) == NOTIFY
    # Another profile is another entry.
    monkeypatch.undo()
    other = SeccompFilter.compile(LinuxSeccomp.from_json(base()), cache_dir=str(tmp_path))
    assert len(list(tmp_path.iterdir())) == 2
    assert run_bpf(other.program, 83) == ERRNO | 1


def test_cache_ignores_a_torn_entry(tmp_path):
    spec = LinuxSeccomp.from_json(base())
    good = SeccompFilter.compile(spec, cache_dir=str(tmp_path))
    (entry,) = list(tmp_path.iterdir())
    data = entry.read_bytes()
    entry.write_bytes(data[:-3])
    again = SeccompFilter.compile(spec, cache_dir=str(tmp_path))
    assert again.program == good.program
    assert entry.read_bytes() == data  # rewritten whole


def test_cache_key_covers_the_profile():
    a = sc._cache_key(LinuxSeccomp.from_json(base()))
    b = sc._cache_key(LinuxSeccomp.from_json(base(defaultAction="SCMP_ACT_LOG")))
    assert a and b and a != b
    assert a == sc._cache_key(LinuxSeccomp.from_json(base()))


def test_stub_always_covers_the_native_arch():
    # Docker on ppc64le sends no architectures at all; runc still adds the native one.
    doc = {
        "defaultAction": "SCMP_ACT_ERRNO",
        "syscalls": [{"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"}],
    }
    p = compile_json(doc).program
    assert run_bpf(p, 1) == ALLOW
    assert run_bpf(p, 0, arch=X86) == KILL_THREAD  # not in the filter: libseccomp's bad-arch action
    assert run_bpf(p, 2) == ERRNO | 38  # open is above write (1): ENOSYS


def test_no_stub_when_the_largest_syscall_is_zero():
    # runc skips an arch whose largest named syscall is 0 ("could not find any syscalls").
    doc = {"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW"}]}
    assert run_bpf(compile_json(doc).program, 1) == ERRNO | 1


def test_cache_refuses_a_group_writable_entry(tmp_path):
    spec = LinuxSeccomp.from_json(base())
    SeccompFilter.compile(spec, cache_dir=str(tmp_path))
    (entry,) = list(tmp_path.iterdir())
    allow_all = b'{"len":8,"flags":0,"notify":false,"ignored":[]}\n' + struct.pack("=HBBI", 0x06, 0, 0, ALLOW)
    entry.write_bytes(allow_all)
    assert run_bpf(SeccompFilter.compile(spec, cache_dir=str(tmp_path)).program, 83) == ALLOW  # a valid entry
    entry.write_bytes(allow_all)
    entry.chmod(0o620)
    again = SeccompFilter.compile(spec, cache_dir=str(tmp_path))
    assert run_bpf(again.program, 83) == ERRNO | 1  # group-writable: recompiled, not loaded


def test_the_compiled_program_cache_keeps_only_the_newest_entries(tmp_path):
    from bock._security import seccomp

    for i in range(seccomp.CACHE_ENTRIES + 6):
        path = tmp_path / f"{i:064x}"
        path.write_bytes(b"x")
        os.utime(path, ns=(i * 10**9, i * 10**9))
    (tmp_path / ".partial.123").write_bytes(b"x")  # a writer's temporary file is not an entry
    seccomp._cache_trim(str(tmp_path))
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == [".partial.123"] + [f"{i:064x}" for i in range(6, seccomp.CACHE_ENTRIES + 6)]

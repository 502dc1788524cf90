"""``linux.seccomp`` as typed objects (runtime-spec config-linux.md, "Seccomp").

Only the shape is typed here; the names (actions, operators, architectures, flags)
are judged by :mod:`bock._security.seccomp` when the filter is compiled, so that a
bad one gets runc's error text.
"""

from __future__ import annotations

from bock._spec.struct import Struct, field, struct_list


class SeccompArg(Struct):
    index: int = field(required=True)
    value: int = field(required=True)
    value_two: int = 0
    op: str = field(required=True)


class SeccompSyscall(Struct):
    names: list[str] = field(required=True)
    action: str = field(required=True)
    errno_ret: int | None = None
    args: list[SeccompArg] = field(conv=struct_list(SeccompArg), factory=list)


class LinuxSeccomp(Struct):
    default_action: str = field(required=True)
    default_errno_ret: int | None = None
    architectures: list[str] = field(factory=list)
    # None (absent) and [] (explicitly empty) differ: runc sets SPEC_ALLOW by default only for None.
    flags: list[str] | None = None
    listener_path: str | None = None
    listener_metadata: str | None = None
    syscalls: list[SeccompSyscall] = field(conv=struct_list(SeccompSyscall), factory=list)


__all__ = ["LinuxSeccomp", "SeccompArg", "SeccompSyscall"]

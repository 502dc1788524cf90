"""seccomp: compile ``linux.seccomp`` with libseccomp (ctypes) in the parent, load it in the child.

libseccomp is arch-aware and well kept, so bock does not write its own compiler. It is
opened lazily, only when a config has ``linux.seccomp`` (or for ``bock features``).

The split follows runc (libcontainer/seccomp and seccomp/patchbpf), with one change of
place: everything that needs libseccomp happens in the parent, before the fork.

* :meth:`SeccompFilter.compile` checks the names (runc's wording: ``string X is not a
  valid action for seccomp``, ``... operator ...``, ``... arch ...``), builds the
  libseccomp context, exports the cBPF program and prepends runc's ``-ENOSYS`` stub:
  syscalls numbered above the highest one the profile names (per architecture) get
  ENOSYS instead of the default action, so that libcs fall back from syscalls newer
  than the profile (clone3 → clone and the like).
* :meth:`SeccompFilter.load` runs in the container's init, as late as runc does it
  (right before execve when ``noNewPrivileges`` is set; otherwise before the
  capabilities are dropped, because without no_new_privs loading a filter needs
  CAP_SYS_ADMIN). It is one ``seccomp(SECCOMP_SET_MODE_FILTER)`` syscall with the
  prepared program: no library, no allocation worth mentioning.

runc's rules that bock keeps:

* a rule whose action equals the default action is skipped (libseccomp would refuse it);
* a syscall name libseccomp does not know is ignored (runc: "unknown seccomp syscall
  ... ignored"; profiles list syscalls of newer kernels and other architectures). The
  ignored names are kept in :attr:`SeccompFilter.ignored`. An empty name is an error;
* several conditions on one rule are ANDed, unless two of them test the same argument:
  then each condition becomes a rule of its own (runc's "old behaviour");
* ``SCMP_CMP_MASKED_EQ``: ``value`` is the mask, ``valueTwo`` the value compared;
* ``SCMP_ACT_KILL`` means KILL_THREAD; ERRNO and TRACE without ``errnoRet`` use EPERM;
* ``flags`` absent → ``SECCOMP_FILTER_FLAG_SPEC_ALLOW`` when the kernel has it;
  ``SECCOMP_FILTER_FLAG_TSYNC`` is recognised and ignored (the init is single-threaded);
* ``SCMP_ACT_NOTIFY`` is refused as the default action and for ``write``; with a notify
  rule the filter is loaded with ``SECCOMP_FILTER_FLAG_NEW_LISTENER`` and
  :meth:`~SeccompFilter.load` returns the listener fd, which the parent passes to the
  agent at ``listenerPath`` with :func:`send_notify_fd` (runc's ContainerProcessState).
* more than 32 rules → libseccomp's binary-tree optimisation.

Optional cache: ``compile(spec, cache_dir=D)`` keeps the compiled program in ``D``
(0700, files 0600, written atomically) under a SHA-256 of the profile, the kernel
release, the machine and the libseccomp file's identity; a hit costs about 1 ms
instead of 15-20 ms of libseccomp for podman's default profile. ``D`` must be writable
by its owner only, and the owner must be us (checked on every read, for the directory
and the file): its content is loaded into containers as their filter. ``D`` is made
without parents. ``create`` and ``exec`` use ``<root>/@seccomp-cache`` (``@`` is not
allowed in a container id, so no container can collide with it), which keeps its 64 newest
entries.

Differences: ``SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV`` works whenever the kernel has it
(runc needs libseccomp ≥ 2.6 for it; bock loads the program itself), and needs a notify
rule (the kernel refuses the flag without a listener; bock says so at compile time).
"""

from __future__ import annotations

import ctypes
import os
import sys

from bock._libc import libc, nr
from bock.errors import ConfigError, SystemError_

ENOSYS = 38
EPERM = 1

# SCMP_ACT_* values from seccomp.h; ERRNO and TRACE carry a 16-bit data part.
_ACT_KILL_PROCESS = 0x80000000
_ACT_KILL_THREAD = 0x00000000
_ACT_TRAP = 0x00030000
_ACT_NOTIFY = 0x7FC00000
_ACT_ERRNO = 0x00050000
_ACT_TRACE = 0x7FF00000
_ACT_LOG = 0x7FFC0000
_ACT_ALLOW = 0x7FFF0000

ACTIONS = {
    "SCMP_ACT_KILL": _ACT_KILL_THREAD,
    "SCMP_ACT_KILL_THREAD": _ACT_KILL_THREAD,
    "SCMP_ACT_KILL_PROCESS": _ACT_KILL_PROCESS,
    "SCMP_ACT_TRAP": _ACT_TRAP,
    "SCMP_ACT_ERRNO": _ACT_ERRNO,
    "SCMP_ACT_TRACE": _ACT_TRACE,
    "SCMP_ACT_ALLOW": _ACT_ALLOW,
    "SCMP_ACT_LOG": _ACT_LOG,
    "SCMP_ACT_NOTIFY": _ACT_NOTIFY,
}
# Actions for which runc's -ENOSYS stub is not generated ("allow" actions).
_PERMISSIVE = {"SCMP_ACT_ALLOW", "SCMP_ACT_LOG", "SCMP_ACT_TRACE"}

OPERATORS = {
    "SCMP_CMP_NE": 1,
    "SCMP_CMP_LT": 2,
    "SCMP_CMP_LE": 3,
    "SCMP_CMP_EQ": 4,
    "SCMP_CMP_GE": 5,
    "SCMP_CMP_GT": 6,
    "SCMP_CMP_MASKED_EQ": 7,
}

# OCI name → libseccomp's arch name (seccomp_arch_resolve_name). Which of these the
# installed libseccomp knows is asked at run time (2.5.4 lacks loongarch64, m68k, sh).
ARCHES = {
    "SCMP_ARCH_X86": "x86",
    "SCMP_ARCH_X86_64": "x86_64",
    "SCMP_ARCH_X32": "x32",
    "SCMP_ARCH_ARM": "arm",
    "SCMP_ARCH_AARCH64": "aarch64",
    "SCMP_ARCH_MIPS": "mips",
    "SCMP_ARCH_MIPS64": "mips64",
    "SCMP_ARCH_MIPS64N32": "mips64n32",
    "SCMP_ARCH_MIPSEL": "mipsel",
    "SCMP_ARCH_MIPSEL64": "mipsel64",
    "SCMP_ARCH_MIPSEL64N32": "mipsel64n32",
    "SCMP_ARCH_PPC": "ppc",
    "SCMP_ARCH_PPC64": "ppc64",
    "SCMP_ARCH_PPC64LE": "ppc64le",
    "SCMP_ARCH_S390": "s390",
    "SCMP_ARCH_S390X": "s390x",
    "SCMP_ARCH_PARISC": "parisc",
    "SCMP_ARCH_PARISC64": "parisc64",
    "SCMP_ARCH_RISCV64": "riscv64",
    "SCMP_ARCH_LOONGARCH64": "loongarch64",
    "SCMP_ARCH_M68K": "m68k",
    "SCMP_ARCH_SH": "sh",
    "SCMP_ARCH_SHEB": "sheb",
}

FLAG_TSYNC = "SECCOMP_FILTER_FLAG_TSYNC"
FLAGS = {  # spec name → seccomp(2) flag bit (TSYNC: recognised, not used, as in runc)
    FLAG_TSYNC: 0,
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW": 1 << 2,
    "SECCOMP_FILTER_FLAG_LOG": 1 << 1,
    "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV": 1 << 5,
}
_FLAG_TSYNC_BIT = 1 << 0
_FLAG_NEW_LISTENER = 1 << 3
_FLAG_WAIT_KILLABLE_RECV = 1 << 5

SECCOMP_SET_MODE_FILTER = 1
_SCMP_FLTATR_CTL_OPTIMIZE = 8
_SCMP_ARCH_X32 = 0x4000003E
_AUDIT_ARCH_X86_64 = 0xC000003E
_AUDIT_ARCH_S390 = 0x00000016
_AUDIT_ARCH_S390X = 0x80000016
_X32_SYSCALL_BIT = 0x40000000
_MAX_ARGS = 6


class _ArgCmp(ctypes.Structure):
    _fields_ = (
        ("arg", ctypes.c_uint),
        ("op", ctypes.c_int),
        ("datum_a", ctypes.c_uint64),
        ("datum_b", ctypes.c_uint64),
    )


class _SockFprog(ctypes.Structure):
    _fields_ = (("len", ctypes.c_ushort), ("filter", ctypes.c_void_p))


class _Version(ctypes.Structure):
    _fields_ = (("major", ctypes.c_uint), ("minor", ctypes.c_uint), ("micro", ctypes.c_uint))


_lib = None


def _strerror(err: int) -> str:
    """errno text as Go (runc) prints it, lower case: callers match "operation not permitted"."""
    return os.strerror(err).lower()


def libseccomp() -> ctypes.CDLL:
    """Open libseccomp.so.2 once, with prototypes for what bock calls."""
    global _lib
    if _lib is not None:
        return _lib
    try:
        lib = ctypes.CDLL("libseccomp.so.2")
    except OSError as e:
        raise SystemError_(f"seccomp is not supported: cannot load libseccomp.so.2 ({e})") from None
    u32, cint, vp, cp = ctypes.c_uint32, ctypes.c_int, ctypes.c_void_p, ctypes.c_char_p
    for name, restype, argtypes in (
        ("seccomp_init", vp, (u32,)),
        ("seccomp_release", None, (vp,)),
        ("seccomp_arch_resolve_name", u32, (cp,)),
        ("seccomp_arch_native", u32, ()),
        ("seccomp_arch_add", cint, (vp, u32)),
        ("seccomp_attr_set", cint, (vp, cint, u32)),
        ("seccomp_syscall_resolve_name", cint, (cp,)),
        ("seccomp_syscall_resolve_name_arch", cint, (u32, cp)),
        ("seccomp_rule_add_array", cint, (vp, u32, cint, ctypes.c_uint, ctypes.POINTER(_ArgCmp))),
        ("seccomp_export_bpf", cint, (vp, cint)),
        ("seccomp_api_get", ctypes.c_uint, ()),
        ("seccomp_version", ctypes.POINTER(_Version), ()),
    ):
        fn = getattr(lib, name)
        fn.restype = restype
        fn.argtypes = argtypes
    _lib = lib
    return lib


def _action(name: str, errno_ret: int | None) -> int:
    base = ACTIONS.get(name)
    if base is None:
        raise ConfigError(f"string {name} is not a valid action for seccomp")
    if base in (_ACT_ERRNO, _ACT_TRACE):
        return base | ((EPERM if errno_ret is None else errno_ret) & 0xFFFF)
    return base


def _arch_token(lib: ctypes.CDLL, name: str) -> int:
    libname = ARCHES.get(name)
    if libname is None:
        raise ConfigError(f"string {name} is not a valid arch for seccomp")
    token = lib.seccomp_arch_resolve_name(libname.encode())
    if not token:
        raise ConfigError(
            f"error validating Seccomp architecture: {name} is not supported by libseccomp {version()}"
        )
    return token


def _kernel_has_flag(bit: int) -> bool:
    """Probe like libseccomp: with a NULL program the kernel answers EFAULT for a flag it knows."""
    if bit == _FLAG_WAIT_KILLABLE_RECV:
        bit |= _FLAG_NEW_LISTENER  # the kernel refuses WAIT_KILLABLE_RECV without a listener
    ret = libc.syscall(nr("seccomp"), SECCOMP_SET_MODE_FILTER, bit, None)
    return ret < 0 and ctypes.get_errno() == 14  # EFAULT


def supported_flags() -> list[str]:
    """Spec flags this kernel accepts (TSYNC always: it is recognised and ignored)."""
    return [name for name, bit in FLAGS.items() if not bit or _kernel_has_flag(bit)]


def _flag_bits(flags: list[str] | None) -> int:
    spec_allow = FLAGS["SECCOMP_FILTER_FLAG_SPEC_ALLOW"]
    if flags is None:
        return spec_allow if _kernel_has_flag(spec_allow) else 0
    bits = 0
    for flag in flags:
        bit = FLAGS.get(flag)
        if bit is None:
            raise ConfigError(f"seccomp flag {flag} is not known to bock")
        if bit and not _kernel_has_flag(bit):
            raise ConfigError(f"seccomp flag {flag} is not supported by the running kernel")
        bits |= bit
    return bits


class _Rule:
    __slots__ = ("action", "conds", "name", "notify")

    def __init__(self, name: str, action: int, conds: list[tuple[int, int, int, int]], notify: bool) -> None:
        self.name = name
        self.action = action
        self.conds = conds
        self.notify = notify


def _rules(spec: object) -> list[_Rule]:
    """Flatten ``syscalls`` into one rule per name, judging actions, operators and indexes."""
    rules = []
    for call in spec.syscalls:
        action = _action(call.action, call.errno_ret)
        conds = []
        for arg in call.args:
            op = OPERATORS.get(arg.op)
            if op is None:
                raise ConfigError(f"string {arg.op} is not a valid operator for seccomp")
            if not 0 <= arg.index < _MAX_ARGS:
                raise ConfigError(
                    f"seccomp: argument index {arg.index} out of range (a syscall has 6 arguments)"
                )
            conds.append((arg.index, op, arg.value, arg.value_two))
        notify = call.action == "SCMP_ACT_NOTIFY"
        for name in call.names:
            if not name:
                raise ConfigError("empty string is not a valid syscall")
            if notify and name == "write":
                raise ConfigError("SCMP_ACT_NOTIFY cannot be used for the write syscall")
            rules.append(_Rule(name, action, conds, notify))
    return rules


def _add_rule(lib: ctypes.CDLL, ctx: int, sysno: int, rule: _Rule) -> None:
    conds = rule.conds
    indexes = [c[0] for c in conds]
    # Two conditions on one argument: each becomes a rule of its own (runc's fallback).
    groups = [[c] for c in conds] if len(set(indexes)) < len(indexes) else [conds]
    for group in groups:
        arr = (_ArgCmp * max(len(group), 1))(*[_ArgCmp(*c) for c in group])
        ret = lib.seccomp_rule_add_array(ctx, rule.action, sysno, len(group), arr)
        if ret < 0:
            raise ConfigError(f"error adding seccomp filter rule for syscall {rule.name}: {_strerror(-ret)}")


def _export(lib: ctypes.CDLL, ctx: int) -> bytes:
    fd = os.memfd_create("bock-seccomp", os.MFD_CLOEXEC)
    try:
        ret = lib.seccomp_export_bpf(ctx, fd)
        if ret < 0:
            raise SystemError_(f"error exporting seccomp filter: {_strerror(-ret)}")
        size = os.lseek(fd, 0, os.SEEK_CUR)
        return os.pread(fd, size, 0)
    finally:
        os.close(fd)


# --- runc's -ENOSYS stub (patchbpf/enosys_linux.go), as cBPF instructions ---------------

_LD_W_ABS = 0x20
_JEQ_K = 0x15
_JGT_K = 0x25
_JSET_K = 0x45
_JA = 0x05
_RET_K = 0x06


def _insn(code: int, jt: int, jf: int, k: int) -> bytes:
    return code.to_bytes(2, sys.byteorder) + bytes((jt, jf)) + (k & 0xFFFFFFFF).to_bytes(4, sys.byteorder)


def _audit_arch(token: int) -> int:
    return _AUDIT_ARCH_X86_64 if token == _SCMP_ARCH_X32 else token


def _last_syscalls(lib: ctypes.CDLL, tokens: list[int], names: list[str]) -> dict[int, dict[int, int]]:
    """Highest syscall number the profile names, per audit arch and libseccomp arch."""
    out: dict[int, dict[int, int]] = {}
    for token in tokens:
        largest = 0
        for name in names:
            num = lib.seccomp_syscall_resolve_name_arch(token, name.encode())
            if num > largest:
                largest = num
        if largest:
            out.setdefault(_audit_arch(token), {})[token] = largest
    return out


def enosys_stub(last: dict[int, dict[int, int]]) -> bytes:
    """cBPF that returns ENOSYS for syscalls above the profile's highest, then falls into the filter.

    Layout: load arch; one ``jeq`` per arch to its section; ``ja`` to the filter;
    sections (load nr; compare); a shared "to filter" ``ja``; ``ret ERRNO(ENOSYS)``.
    """
    sections: list[tuple[int, list[tuple]]] = []  # (audit arch, insns with symbolic targets)
    for audit, per_arch in last.items():
        body: list[tuple] = [("ld", 0)]
        if audit in (_AUDIT_ARCH_S390, _AUDIT_ARCH_S390X):
            body.append(("jeq", 0, "enosys", None))  # multiplexed unknown syscalls arrive as 0
        if audit == _AUDIT_ARCH_X86_64:
            amd64, x32 = per_arch.get(_AUDIT_ARCH_X86_64), per_arch.get(_SCMP_ARCH_X32)
            if amd64 is not None and x32 is not None:
                body += [("jset", _X32_SYSCALL_BIT, "+1", None), ("jgt", amd64, "enosys", "filter")]
                body += [("jgt", x32, "enosys", "filter")]
            elif amd64 is not None:
                body += [("jset", _X32_SYSCALL_BIT, "filter", None), ("jgt", amd64, "enosys", "filter")]
            else:
                body += [("jset", _X32_SYSCALL_BIT, None, "filter"), ("jgt", x32, "enosys", "filter")]
        else:
            (largest,) = per_arch.values()
            body.append(("jgt", largest, "enosys", "filter"))
        sections.append((audit, body))
    # Assign positions.
    pos = 1 + len(sections) + 1  # ld arch, jeqs, ja filter
    starts = []
    for _audit, body in sections:
        starts.append(pos)
        pos += len(body)
    to_filter = pos
    enosys = pos + 1
    total = pos + 2

    def rel(at: int, target: object) -> int:
        if target is None:
            return 0
        dest = {"enosys": enosys, "filter": to_filter}.get(target)
        if dest is None:  # "+N": skip N instructions
            dest = at + 1 + int(target[1:])
        off = dest - at - 1
        if not 0 <= off <= 255:
            raise SystemError_("seccomp -ENOSYS stub too large")
        return off

    out = [_insn(_LD_W_ABS, 0, 0, 4)]
    for i, (audit, _body) in enumerate(sections):
        at = 1 + i
        out.append(_insn(_JEQ_K, starts[i] - at - 1, 0, audit))
    out.append(_insn(_JA, 0, 0, to_filter - (1 + len(sections)) - 1))
    for i, (_audit, body) in enumerate(sections):
        at = starts[i]
        for ins in body:
            kind = ins[0]
            if kind == "ld":
                out.append(_insn(_LD_W_ABS, 0, 0, 0))
            else:
                code = {"jeq": _JEQ_K, "jgt": _JGT_K, "jset": _JSET_K}[kind]
                out.append(_insn(code, rel(at, ins[2]), rel(at, ins[3]), ins[1]))
            at += 1
    out.append(_insn(_JA, 0, 0, 1))  # to_filter: skip the ENOSYS return
    out.append(_insn(_RET_K, 0, 0, _ACT_ERRNO | ENOSYS))
    assert len(out) == total
    return b"".join(out)


def _rebuild_filter(program, flags, needs_notify, listener_path, listener_metadata, ignored) -> SeccompFilter:
    return SeccompFilter(
        program,
        flags,
        needs_notify=needs_notify,
        listener_path=listener_path,
        listener_metadata=listener_metadata,
        ignored=ignored,
    )


class SeccompFilter:
    """A compiled filter: the cBPF program and the seccomp(2) flags to load it with."""

    __slots__ = (
        "_buf",
        "_fprog",
        "flags",
        "ignored",
        "listener_metadata",
        "listener_path",
        "needs_notify",
        "program",
    )

    def __init__(
        self,
        program: bytes | None,
        flags: int = 0,
        *,
        needs_notify: bool = False,
        listener_path: str | None = None,
        listener_metadata: str | None = None,
        ignored: tuple[str, ...] = (),
    ) -> None:
        self.program = program
        self.flags = flags
        self.needs_notify = needs_notify
        self.listener_path = listener_path
        self.listener_metadata = listener_metadata
        self.ignored = ignored
        self._buf = self._fprog = None
        if program:
            # Prepared here, in the parent: load() in the child only makes the syscall.
            self._buf = ctypes.create_string_buffer(program, len(program))
            self._fprog = _SockFprog(len(program) // 8, ctypes.addressof(self._buf))

    def __reduce__(self):
        """Pickled (bock._init.exeseal) without the ctypes buffers: the program pointer is
        only valid in this process; the copy prepares its own."""
        return (_rebuild_filter, (self.program, self.flags, self.needs_notify, self.listener_path,
                                  self.listener_metadata, self.ignored))  # fmt: skip

    @property
    def enabled(self) -> bool:
        return self.program is not None

    @classmethod
    def compile(cls, spec: object, *, cache_dir: str | None = None) -> SeccompFilter:
        """Compile a :class:`bock._spec.seccomp.LinuxSeccomp` (or its JSON dict).

        Raises :class:`ConfigError` for an unknown action, operator, architecture or flag,
        an empty syscall name, an argument index above 5, NOTIFY as the default action or
        on ``write``, or NOTIFY without ``listenerPath``.

        With ``cache_dir`` (a root-owned directory), the result is kept there under a
        hash of the profile, the kernel release and the libseccomp file, so that the next
        container with the same profile skips libseccomp (about 15 ms for podman's).
        """
        if isinstance(spec, dict):
            from bock._spec.seccomp import LinuxSeccomp

            spec = LinuxSeccomp.from_json(spec)
        if not spec.default_action and not spec.syscalls:
            return cls(None)  # runc: no default action and no syscalls = seccomp disabled
        key = _cache_key(spec) if cache_dir else None
        if key is not None:
            cached = _cache_read(cache_dir, key, spec)
            if cached is not None:
                return cached
        flt = cls._compile(spec)
        if key is not None:
            _cache_write(cache_dir, key, flt)
        return flt

    @classmethod
    def _compile(cls, spec: object) -> SeccompFilter:
        if spec.default_action == "SCMP_ACT_NOTIFY":
            raise ConfigError("SCMP_ACT_NOTIFY cannot be used as default action")
        default = _action(spec.default_action, spec.default_errno_ret)
        rules = _rules(spec)
        needs_notify = any(r.notify for r in rules)
        if needs_notify and not spec.listener_path:
            raise ConfigError("seccomp listenerPath is not set")
        flags = _flag_bits(spec.flags)
        if flags & _FLAG_WAIT_KILLABLE_RECV and not needs_notify:
            raise ConfigError(
                "seccomp flag SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV needs an SCMP_ACT_NOTIFY rule "
                "(the kernel accepts it only with a listener)"
            )
        lib = libseccomp()
        tokens = [_arch_token(lib, a) for a in spec.architectures]
        if needs_notify:
            if lib.seccomp_api_get() < 6:
                raise SystemError_(
                    f"seccomp notify unsupported: API level: got {lib.seccomp_api_get()}, want at least 6. "
                    "Please try with libseccomp >= 2.5.0 and Linux >= 5.7"
                )
            flags |= _FLAG_NEW_LISTENER
        ctx = lib.seccomp_init(default)
        if not ctx:
            raise ConfigError("error initializing seccomp - invalid default action")
        ignored: list[str] = []
        try:
            for token in tokens:
                ret = lib.seccomp_arch_add(ctx, token)
                if ret < 0 and ret != -17:  # EEXIST: the native arch is already there
                    raise ConfigError(f"error adding architecture to seccomp filter: {_strerror(-ret)}")
            if len(rules) > 32:
                lib.seccomp_attr_set(ctx, _SCMP_FLTATR_CTL_OPTIMIZE, 2)  # not fatal: an old libseccomp
            for rule in rules:
                if rule.action == default:
                    continue  # redundant: libseccomp refuses it, runc skips it
                sysno = lib.seccomp_syscall_resolve_name(rule.name.encode())
                if sysno == -1:  # __NR_SCMP_ERROR: unknown to libseccomp, not supported here
                    ignored.append(rule.name)
                    continue
                _add_rule(lib, ctx, sysno, rule)
            program = _export(lib, ctx)
            if not (spec.default_action in _PERMISSIVE or (default == _ACT_ERRNO | ENOSYS)):
                native = lib.seccomp_arch_native()
                arch_tokens = list(dict.fromkeys([*tokens, native]))
                last = _last_syscalls(lib, arch_tokens, [r.name for r in rules])
                program = enosys_stub(last) + program
        finally:
            lib.seccomp_release(ctx)
        return cls(
            program,
            flags,
            needs_notify=needs_notify,
            listener_path=spec.listener_path,
            listener_metadata=spec.listener_metadata,
            ignored=tuple(ignored),
        )

    def load(self) -> int | None:
        """Install the filter on the calling process; the listener fd when a rule uses NOTIFY.

        Needs no_new_privs or CAP_SYS_ADMIN (the kernel's rule), like any seccomp filter.
        """
        if self._fprog is None:
            return None
        ret = libc.syscall(nr("seccomp"), SECCOMP_SET_MODE_FILTER, self.flags, ctypes.byref(self._fprog))
        if ret < 0:
            err = ctypes.get_errno()
            raise SystemError_(
                f"error loading seccomp filter into kernel: error loading seccomp filter: {_strerror(err)}"
            )
        return ret if self.flags & _FLAG_NEW_LISTENER else None


# --- the compiled-program cache ----------------------------------------------------------

_CACHE_FORMAT = b"bock-seccomp-cache-1\0"


def _libseccomp_identity() -> bytes | None:
    """Identity of the libseccomp file that would be loaded, without loading it (None: unknown)."""
    machine = os.uname().machine
    for directory in (f"/usr/lib/{machine}-linux-gnu", f"/lib/{machine}-linux-gnu", "/usr/lib64", "/usr/lib"):
        try:
            st = os.stat(directory + "/libseccomp.so.2")
        except OSError:
            continue
        return f"{st.st_dev}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}".encode()
    return None


def _cache_key(spec: object) -> str | None:
    ident = _libseccomp_identity()
    if ident is None:
        return None
    try:
        from _sha256 import sha256  # Python 3.11
    except ImportError:  # pragma: no cover - 3.12+
        from hashlib import sha256
    from bock._jsonlite import dumps

    uname = os.uname()
    h = sha256(_CACHE_FORMAT)
    for part in (uname.release.encode(), uname.machine.encode(), ident, dumps(spec.to_json()).encode()):
        h.update(part + b"\0")
    return h.hexdigest()


def _cache_read(cache_dir: str, key: str, spec: object) -> SeccompFilter | None:
    from bock._jsonlite import loads

    try:
        st = os.stat(cache_dir)
        if st.st_uid != os.geteuid() or st.st_mode & 0o022:
            return None  # a directory others may write to: never trust what is in it
        with open(f"{cache_dir}/{key}", "rb") as f:
            st = os.fstat(f.fileno())
            if st.st_uid != os.geteuid() or st.st_mode & 0o022:
                return None  # not ours alone: never load a filter someone else could have written
            data = f.read()
        head, _, program = data.partition(b"\n")
        meta = loads(head)
    except (OSError, ValueError):
        return None
    if len(program) != meta.get("len") or not program or len(program) % 8:
        return None  # torn or foreign: compile again
    return SeccompFilter(
        program,
        meta["flags"],
        needs_notify=meta["notify"],
        listener_path=spec.listener_path,
        listener_metadata=spec.listener_metadata,
        ignored=tuple(meta["ignored"]),
    )


def _cache_write(cache_dir: str, key: str, flt: SeccompFilter) -> None:
    """Atomically (temp file + rename); a failure only costs the next create a compile."""
    from bock._jsonlite import dumps

    if not flt.program:
        return
    meta = {
        "len": len(flt.program),
        "flags": flt.flags,
        "notify": flt.needs_notify,
        "ignored": list(flt.ignored),
    }
    tmp = f"{cache_dir}/.{key}.{os.getpid()}"
    try:
        try:
            os.mkdir(cache_dir, 0o700)  # not its parents: the state root is made by create, 0711
        except FileExistsError:
            pass
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, dumps(meta).encode() + b"\n" + flt.program)
        finally:
            os.close(fd)
        os.rename(tmp, f"{cache_dir}/{key}")
    except OSError:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        return
    _cache_trim(cache_dir)


CACHE_ENTRIES = 64  # distinct profiles kept (~11 KiB each for podman's); the oldest go first


def _cache_trim(cache_dir: str, keep: int = CACHE_ENTRIES) -> None:
    """Keep the cache bounded: only after a miss wrote a new entry, so a hit costs nothing."""
    try:
        with os.scandir(cache_dir) as it:
            entries = [(e.stat().st_mtime_ns, e.name) for e in it if not e.name.startswith(".")]
    except OSError:
        return
    if len(entries) <= keep:
        return
    entries.sort()
    for _, name in entries[: len(entries) - keep]:
        try:
            os.unlink(f"{cache_dir}/{name}")
        except OSError:
            pass


def pidfd_getfd(pid: int, fd: int) -> int:
    """A copy of ``fd`` of process ``pid`` (how runc's parent fetches the child's listener fd)."""
    pidfd = libc.syscall(nr("pidfd_open"), pid, 0)
    if pidfd < 0:
        err = ctypes.get_errno()
        raise SystemError_(f"pidfd_open {pid}: {_strerror(err)}")
    try:
        ret = libc.syscall(438, pidfd, fd, 0)  # pidfd_getfd: 438 on every architecture
        if ret < 0:
            err = ctypes.get_errno()
            raise SystemError_(f"get seccomp fd {fd} from child {pid} failed: {_strerror(err)}")
        os.set_inheritable(ret, False)
        return ret
    finally:
        os.close(pidfd)


def send_notify_fd(
    listener_path: str, notify_fd: int, state: dict, metadata: str = "", *, pid: int | None = None
) -> None:
    """Hand the listener fd to the seccomp agent, as runc's ``sendContainerProcessState``.

    Connects (AF_UNIX, SOCK_STREAM) to ``listener_path`` and sends one message: the
    ContainerProcessState JSON ``{"ociVersion", "fds": ["seccompFd"], "pid", "metadata",
    "state"}`` with ``notify_fd`` as SCM_RIGHTS. ``pid`` is the process the filter is on
    (the container's init by default: ``state["pid"]``).
    """
    import _socket

    from bock import SPEC_VERSION
    from bock._jsonlite import dumps

    message = {
        "ociVersion": SPEC_VERSION,
        "fds": ["seccompFd"],
        "pid": state.get("pid", 0) if pid is None else pid,
        "metadata": metadata or "",
        "state": state,
    }
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM | _socket.SOCK_CLOEXEC)
    try:
        try:
            sock.connect(listener_path)
        except OSError as e:
            raise SystemError_(
                f"failed to connect with seccomp agent specified in the seccomp profile: {_strerror(e.errno)}"
            ) from None
        fdbytes = notify_fd.to_bytes(4, sys.byteorder, signed=True)
        try:
            sock.sendmsg([dumps(message).encode()], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, fdbytes)])
        except OSError as e:
            raise SystemError_(f"cannot send seccomp fd to {listener_path}: {_strerror(e.errno)}") from None
    finally:
        sock.close()


def version() -> str:
    v = libseccomp().seccomp_version().contents
    return f"{v.major}.{v.minor}.{v.micro}"


def features() -> dict:
    """``linux.seccomp`` of ``bock features`` (runtime-spec features-linux.md)."""
    lib = libseccomp()
    return {
        "enabled": True,
        "actions": sorted(ACTIONS),
        "operators": sorted(OPERATORS),
        "archs": sorted(a for a, n in ARCHES.items() if lib.seccomp_arch_resolve_name(n.encode())),
        "knownFlags": list(FLAGS),
        "supportedFlags": supported_flags(),
    }

"""Linux capabilities, user switch and no_new_privs for the container process.

Two halves, split across the fork:

* :meth:`CapSets.from_spec` runs once in the parent (``bock create``): it turns the
  names of ``process.capabilities`` into five bitmasks. Like runc (libcontainer/
  capabilities ``New``), names that are unknown, or known but above the running
  kernel's ``/proc/sys/kernel/cap_last_cap``, are ignored with the warning
  ``ignoring unknown or unavailable capabilities: [CAP_A CAP_B]``.
* :func:`finalize_credentials` runs in the container's init, in runc's
  ``finalizeNamespace`` order: drop the bounding set (``PR_CAPBSET_DROP``) →
  ``PR_SET_KEEPCAPS 1`` → fix stdio ownership → ``setgroups`` / ``setresgid`` /
  ``setresuid`` → ``PR_SET_KEEPCAPS 0`` → ``capset`` (effective, permitted,
  inheritable; v3) → ambient (``PR_CAP_AMBIENT``, clear then raise). As in runc
  ≥1.2, an ambient capability that cannot be raised is a warning, not an error, and
  a config without ``process.capabilities`` leaves the capability sets untouched.

Only the standard library and :mod:`bock._libc` are used: this runs on the hot path.
"""

from __future__ import annotations

import ctypes
import os

from bock._libc import check, libc, syscall
from bock.errors import ConfigError, SystemError_

# Index = capability number (linux/capability.h, up to CAP_LAST_CAP of Linux 5.9+).
CAP_NAMES = (
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
)
CAP_NUMBERS = {name: num for num, name in enumerate(CAP_NAMES)}
CAP_SETPCAP = 8

PR_CAPBSET_READ = 23
PR_CAPBSET_DROP = 24
PR_SET_KEEPCAPS = 8
PR_SET_NO_NEW_PRIVS = 38
PR_GET_NO_NEW_PRIVS = 39
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_RAISE = 2
PR_CAP_AMBIENT_CLEAR_ALL = 4
_LINUX_CAPABILITY_VERSION_3 = 0x20080522

_prctl = libc.prctl
_prctl.argtypes = (ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong)
_prctl.restype = ctypes.c_int


class _CapHeader(ctypes.Structure):
    _fields_ = (("version", ctypes.c_uint32), ("pid", ctypes.c_int))


class _CapData(ctypes.Structure):
    _fields_ = (
        ("effective", ctypes.c_uint32),
        ("permitted", ctypes.c_uint32),
        ("inheritable", ctypes.c_uint32),
    )


_CapDataPair = _CapData * 2


def _strerror(err: int) -> str:
    """errno text as Go (runc) prints it, lower case: callers match "operation not permitted"."""
    return os.strerror(err).lower()


def last_cap() -> int:
    """The highest capability number the running kernel knows (``cap_last_cap``)."""
    try:
        with open("/proc/sys/kernel/cap_last_cap", "rb") as f:
            return min(int(f.read()), len(CAP_NAMES) - 1)
    except OSError:
        return len(CAP_NAMES) - 1


def names_to_mask(names: list[str], last: int, ignored: list[str]) -> int:
    """Bitmask of the capabilities in ``names``; unknown or unavailable names go to ``ignored``."""
    mask = 0
    for name in names:
        num = CAP_NUMBERS.get(name)
        if num is None or num > last:
            if name not in ignored:
                ignored.append(name)
        else:
            mask |= 1 << num
    return mask


def mask_to_names(mask: int) -> list[str]:
    return [name for num, name in enumerate(CAP_NAMES) if mask >> num & 1]


class CapSets:
    """The five capability sets of a process as bitmasks (bit N = capability N).

    ``configured`` is False when the spec has no ``process.capabilities``: then, as in
    runc ≥1.2, the init leaves its capability sets as they are.
    """

    __slots__ = (
        "ambient",
        "bounding",
        "configured",
        "effective",
        "ignored",
        "inheritable",
        "last",
        "permitted",
    )

    def __init__(
        self,
        *,
        bounding: int = 0,
        effective: int = 0,
        permitted: int = 0,
        inheritable: int = 0,
        ambient: int = 0,
        configured: bool = True,
        ignored: tuple[str, ...] = (),
        last: int | None = None,
    ) -> None:
        self.bounding = bounding
        self.effective = effective
        self.permitted = permitted
        self.inheritable = inheritable
        self.ambient = ambient
        self.configured = configured
        self.ignored = ignored
        self.last = last_cap() if last is None else last

    @classmethod
    def from_spec(cls, caps: object | None, *, last: int | None = None) -> CapSets:
        """Parse a :class:`bock._spec.config.Capabilities` (or None). Never touches the process.

        Raises :class:`ConfigError` when effective is not a subset of permitted (the
        kernel's capset would refuse it with EPERM later, inside the container).
        """
        if last is None:
            last = last_cap()
        if caps is None:
            return cls(configured=False, last=last)
        ignored: list[str] = []
        sets = cls(
            bounding=names_to_mask(caps.bounding, last, ignored),
            effective=names_to_mask(caps.effective, last, ignored),
            permitted=names_to_mask(caps.permitted, last, ignored),
            inheritable=names_to_mask(caps.inheritable, last, ignored),
            ambient=names_to_mask(caps.ambient, last, ignored),
            ignored=tuple(sorted(ignored)),
            last=last,
        )
        extra = sets.effective & ~sets.permitted
        if extra:
            raise ConfigError(
                "invalid capabilities: effective capabilities must be a subset of permitted ones, "
                f"but {' '.join(mask_to_names(extra))} not in permitted"
            )
        return sets

    def warning(self) -> str | None:
        """runc's warning for the ignored names, or None."""
        if not self.ignored:
            return None
        return "ignoring unknown or unavailable capabilities: [" + " ".join(self.ignored) + "]"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CapSets):
            return NotImplemented
        return all(getattr(self, a) == getattr(other, a) for a in self.__slots__)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        sets = ("bounding", "effective", "permitted", "inheritable", "ambient")
        inner = ", ".join(f"{name}={getattr(self, name):#x}" for name in sets)
        return f"CapSets({inner}, configured={self.configured})"


def _prctl_call(option: int, arg2: int = 0, arg3: int = 0, what: str = "prctl") -> int:
    return check(_prctl(option, arg2, arg3, 0, 0), what)


def capget() -> tuple[int, int, int]:
    """(effective, permitted, inheritable) of the calling thread, as 64-bit masks."""
    hdr = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)
    data = _CapDataPair()
    syscall("capget", ctypes.byref(hdr), data)
    return (
        data[0].effective | data[1].effective << 32,
        data[0].permitted | data[1].permitted << 32,
        data[0].inheritable | data[1].inheritable << 32,
    )


def capset(effective: int, permitted: int, inheritable: int) -> None:
    hdr = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)
    data = _CapDataPair()
    for i in (0, 1):
        data[i].effective = effective >> 32 * i & 0xFFFFFFFF
        data[i].permitted = permitted >> 32 * i & 0xFFFFFFFF
        data[i].inheritable = inheritable >> 32 * i & 0xFFFFFFFF
    syscall("capset", ctypes.byref(hdr), data)


def read_bounding(last: int) -> int:
    mask = 0
    for num in range(last + 1):
        if _prctl(PR_CAPBSET_READ, num, 0, 0, 0) == 1:
            mask |= 1 << num
    return mask


def apply_bounding(caps: CapSets) -> None:
    """Drop every capability not in ``caps.bounding`` from the bounding set.

    Like gocapability (used by runc), nothing is dropped when CAP_SETPCAP is not in the
    effective set, and EINVAL (a capability the kernel does not know) is ignored.
    """
    if not caps.configured or not capget()[0] >> CAP_SETPCAP & 1:
        return
    for num in range(caps.last + 1):
        if caps.bounding >> num & 1:
            continue
        if _prctl(PR_CAPBSET_DROP, num, 0, 0, 0) < 0:
            err = ctypes.get_errno()
            if err == 22:  # EINVAL
                continue
            raise SystemError_(f"unable to apply bounding set: drop {CAP_NAMES[num]}: {_strerror(err)}")


def _explain_capset(caps: CapSets) -> str:
    """Why capset said EPERM, in terms of the requested sets (the kernel's rules)."""
    try:
        _eff, have_prm, have_inh = capget()
        bounding = read_bounding(caps.last)
    except OSError:
        return ""
    why = []
    missing = caps.permitted & ~have_prm
    if missing:
        why.append(f"permitted {' '.join(mask_to_names(missing))} not held by the runtime")
    outside = caps.inheritable & ~(have_inh | bounding)
    if outside:
        why.append(f"inheritable {' '.join(mask_to_names(outside))} outside the bounding set")
    return " (" + "; ".join(why) + ")" if why else ""


def apply_caps(caps: CapSets, warn=None) -> None:
    """capset(effective, permitted, inheritable), then the ambient set (runc's ``ApplyCaps``)."""
    if not caps.configured:
        return
    try:
        capset(caps.effective, caps.permitted, caps.inheritable)
    except OSError as e:
        raise SystemError_(f"unable to apply caps: {_strerror(e.errno)}{_explain_capset(caps)}") from None
    if _prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0:
        err = ctypes.get_errno()
        if err != 22:  # EINVAL: no ambient capabilities on this kernel
            raise SystemError_(f"unable to apply caps: clear ambient set: {_strerror(err)}")
    for num in range(caps.last + 1):
        raise_failed = caps.ambient >> num & 1 and _prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, num, 0, 0) < 0
        if raise_failed and warn is not None:
            warn(f"can't raise ambient capability {CAP_NAMES[num]}: {_strerror(ctypes.get_errno())}")


def _fix_stdio_permissions(uid: int) -> None:
    """chown fds 0-2 to the container user, as runc's ``fixStdioPermissions`` does."""
    try:
        null_rdev = os.stat("/dev/null").st_rdev
    except OSError:
        null_rdev = None
    for fd in (0, 1, 2):
        try:
            st = os.fstat(fd)
        except OSError:
            continue
        if st.st_uid == uid or (null_rdev is not None and st.st_rdev == null_rdev):
            continue
        try:
            os.fchown(fd, uid, st.st_gid)
        except OSError as e:
            if e.errno not in (1, 22, 30):  # EPERM, EINVAL, EROFS: leave stdio alone, like runc
                raise SystemError_(
                    f"unable to setup user: chown stdio fd {fd}: {_strerror(e.errno)}"
                ) from None


def _setgroups_allowed() -> bool:
    try:
        with open("/proc/self/setgroups", "rb") as f:
            return f.read().strip() != b"deny"
    except FileNotFoundError:
        return True


def _is_mapped(kind: str, ident: int) -> bool:
    """Whether ``ident`` is mapped in this process's user namespace (/proc/self/{uid,gid}_map)."""
    try:
        with open(f"/proc/self/{kind}_map", "rb") as f:
            lines = f.read().split(b"\n")
    except FileNotFoundError:
        return True
    for line in lines:
        parts = line.split()
        if len(parts) == 3 and int(parts[0]) <= ident < int(parts[0]) + int(parts[2]):
            return True
    return False


def setup_user(user: object) -> None:
    """Switch to the container's uid/gid and supplementary groups (runc's ``setupUser``)."""
    uid, gid = user.uid, user.gid
    # runc checks the mapping first, so that the error names the cause rather than EINVAL.
    if not _is_mapped("uid", uid):
        raise SystemError_("unable to setup user: cannot set uid to unmapped user in user namespace")
    if not _is_mapped("gid", gid):
        raise SystemError_("unable to setup user: cannot set gid to unmapped user in user namespace")
    _fix_stdio_permissions(uid)
    groups = list(user.additional_gids)
    if _setgroups_allowed():
        try:
            os.setgroups(groups)
        except OSError as e:
            raise SystemError_(f"unable to setup user: setgroups {groups}: {_strerror(e.errno)}") from None
    elif groups:
        raise SystemError_("unable to setup user: cannot set additional groups: setgroups is denied")
    for fn, ident, kind in ((os.setresgid, gid, "gid"), (os.setresuid, uid, "uid")):
        try:
            fn(ident, ident, ident)
        except OSError as e:
            if e.errno == 22:
                raise SystemError_(
                    f"unable to setup user: cannot set {kind} to unmapped user in user namespace"
                ) from None
            raise SystemError_(f"unable to setup user: set{kind} {ident}: {_strerror(e.errno)}") from None


def finalize_credentials(user: object, caps: CapSets | None, *, no_new_privileges: bool, warn=None) -> None:
    """Drop the bounding set, become ``user``, set the capability sets (runc's ``finalizeNamespace``).

    ``no_new_privileges`` is accepted for the caller's convenience: runc sets the bit
    right after this step (:func:`set_no_new_privs`), so it is applied here last.
    ``warn`` receives warning texts (ambient capabilities that could not be raised).
    """
    if caps is None:
        caps = CapSets(configured=False)
    apply_bounding(caps)
    try:
        _prctl_call(PR_SET_KEEPCAPS, 1, what="prctl(PR_SET_KEEPCAPS)")
    except OSError as e:
        raise SystemError_(f"unable to set keep caps: {_strerror(e.errno)}") from None
    setup_user(user)
    try:
        _prctl_call(PR_SET_KEEPCAPS, 0, what="prctl(PR_SET_KEEPCAPS)")
    except OSError as e:
        raise SystemError_(f"unable to clear keep caps: {_strerror(e.errno)}") from None
    apply_caps(caps, warn)
    if no_new_privileges:
        set_no_new_privs()


def set_no_new_privs() -> None:
    try:
        _prctl_call(PR_SET_NO_NEW_PRIVS, 1, what="prctl(PR_SET_NO_NEW_PRIVS)")
    except OSError as e:
        raise SystemError_(f"unable to set no_new_privs: {_strerror(e.errno)}") from None


def features() -> list[str]:
    """Capability names for ``bock features`` (``linux.capabilities``): all known to bock."""
    return list(CAP_NAMES)

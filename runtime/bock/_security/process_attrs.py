"""Per-process attributes: rlimits, oomScoreAdj, personality, ioPriority, scheduler, CPU affinity.

:func:`validate` runs in the parent before anything is created and raises
:class:`~bock.errors.ConfigError` with runc's wording. The ``apply_*`` functions run
in the container's init, as root in the container's namespaces, before credentials
are dropped (runc's order in ``standard_init_linux.go``: noNewPrivileges, then
scheduler, ioPriority, personality). They raise :class:`~bock.errors.SystemError_`.

``execCPUAffinity`` only concerns processes started by ``bock exec`` (config.md: "not
applicable to the container's init process"). As runc does, ``initial`` is applied
before the process joins the container's cgroup and ``final`` after, right before
execve; with neither given, the affinity is reset to all CPUs so that the process
does not inherit the runtime's.
"""

from __future__ import annotations

import ctypes
import os

from bock._libc import libc, syscall
from bock.errors import ConfigError, SystemError_

RLIMITS = {
    "RLIMIT_CPU": 0,
    "RLIMIT_FSIZE": 1,
    "RLIMIT_DATA": 2,
    "RLIMIT_STACK": 3,
    "RLIMIT_CORE": 4,
    "RLIMIT_RSS": 5,
    "RLIMIT_NPROC": 6,
    "RLIMIT_NOFILE": 7,
    "RLIMIT_MEMLOCK": 8,
    "RLIMIT_AS": 9,
    "RLIMIT_LOCKS": 10,
    "RLIMIT_SIGPENDING": 11,
    "RLIMIT_MSGQUEUE": 12,
    "RLIMIT_NICE": 13,
    "RLIMIT_RTPRIO": 14,
    "RLIMIT_RTTIME": 15,
}
RLIM_INFINITY = (1 << 64) - 1

SCHED_POLICIES = {
    "SCHED_OTHER": 0,
    "SCHED_FIFO": 1,
    "SCHED_RR": 2,
    "SCHED_BATCH": 3,
    "SCHED_ISO": 4,
    "SCHED_IDLE": 5,
    "SCHED_DEADLINE": 6,
}
SCHED_FLAGS = {
    "SCHED_FLAG_RESET_ON_FORK": 0x01,
    "SCHED_FLAG_RECLAIM": 0x02,
    "SCHED_FLAG_DL_OVERRUN": 0x04,
    "SCHED_FLAG_KEEP_POLICY": 0x08,
    "SCHED_FLAG_KEEP_PARAMS": 0x10,
    "SCHED_FLAG_UTIL_CLAMP_MIN": 0x20,
    "SCHED_FLAG_UTIL_CLAMP_MAX": 0x40,
}
IOPRIO_CLASSES = {"IOPRIO_CLASS_RT": 1, "IOPRIO_CLASS_BE": 2, "IOPRIO_CLASS_IDLE": 3}
_IOPRIO_WHO_PROCESS = 1
_IOPRIO_CLASS_SHIFT = 13

PERSONALITY_DOMAINS = {"LINUX": 0x0000, "LINUX32": 0x0008}

MAX_CPU = 64 * 1024  # runc's sanity limit for a CPU list


# --------------------------------------------------------------------------- validation


def validate(process: object | None, linux: object | None = None) -> list[str]:
    """Check the ``process`` and ``linux.personality`` attributes handled here.

    Raises ConfigError for what runc refuses; returns warnings for what runc only warns
    about (personality flags, which runtime-spec defines none of).
    """
    warnings: list[str] = []
    if process is not None:
        for rl in process.rlimits:
            rlimit_number(rl.type)
            if rl.soft > rl.hard:
                raise ConfigError(
                    f"invalid rlimit {rl.type}: soft limit {rl.soft} exceeds hard limit {rl.hard}"
                )
        if process.oom_score_adj is not None and not -1000 <= process.oom_score_adj <= 1000:
            raise ConfigError(f"invalid oomScoreAdj {process.oom_score_adj}: must be in [-1000, 1000]")
        if process.scheduler is not None:
            sched_attr(process.scheduler)
        if process.io_priority is not None:
            ioprio_value(process.io_priority)
        aff = process.exec_cpu_affinity
        if aff is not None:
            for which, value in (("Initial", aff.initial), ("Final", aff.final)):
                if value:
                    try:
                        parse_cpu_list(value)
                    except ValueError as exc:
                        raise ConfigError(f"bad CPUAffinity.{which}: {exc}") from None
    pers = getattr(linux, "personality", None)
    if pers is not None:
        personality_value(pers)
        if pers.flags:
            warnings.append(
                f"ignoring unsupported personality flags: {pers.flags} (runtime-spec defines none)"
            )
    return warnings


def rlimit_number(name: str) -> int:
    try:
        return RLIMITS[name]
    except KeyError:
        raise ConfigError(f"wrong rlimit value: {name}") from None


def personality_value(pers: object) -> int:
    try:
        return PERSONALITY_DOMAINS[pers.domain]
    except KeyError:
        raise ConfigError(f"invalid personality domain {pers.domain}") from None


def ioprio_value(iop: object) -> int:
    if not 0 <= iop.priority <= 7:
        raise ConfigError(f"invalid ioPriority.Priority: {iop.priority}")
    cls = IOPRIO_CLASSES.get(iop.class_)
    if cls is None:
        raise ConfigError(f'invalid ioPriority.Class: "{iop.class_}"')
    return (cls << _IOPRIO_CLASS_SHIFT) | iop.priority


class SchedAttr(ctypes.Structure):
    """``struct sched_attr`` (SCHED_ATTR_SIZE_VER1, 56 bytes), as sched_setattr(2) takes it."""

    _fields_ = [
        ("size", ctypes.c_uint32),
        ("sched_policy", ctypes.c_uint32),
        ("sched_flags", ctypes.c_uint64),
        ("sched_nice", ctypes.c_int32),
        ("sched_priority", ctypes.c_uint32),
        ("sched_runtime", ctypes.c_uint64),
        ("sched_deadline", ctypes.c_uint64),
        ("sched_period", ctypes.c_uint64),
        ("sched_util_min", ctypes.c_uint32),
        ("sched_util_max", ctypes.c_uint32),
    ]


def sched_attr(s: object) -> SchedAttr:
    """Validate a ``Scheduler`` (runc's ``validate.scheduler`` + ``ToSchedAttr``) into a SchedAttr."""
    if not s.policy:
        raise ConfigError("scheduler policy is required")
    policy = SCHED_POLICIES.get(s.policy)
    if policy is None:
        raise ConfigError(f"invalid scheduler policy: {s.policy}")
    if s.policy in ("SCHED_OTHER", "SCHED_BATCH") and not -20 <= s.nice <= 19:
        raise ConfigError(f"invalid scheduler.nice: {s.nice} when scheduler.policy is {s.policy}")
    if s.priority != 0 and s.policy not in ("SCHED_FIFO", "SCHED_RR"):
        raise ConfigError("scheduler.priority can only be specified for SchedFIFO or SchedRR policy")
    if s.policy != "SCHED_DEADLINE" and (s.runtime or s.deadline or s.period):
        raise ConfigError("scheduler runtime/deadline/period can only be specified for SchedDeadline policy")
    flags = 0
    for flag in s.flags:
        bit = SCHED_FLAGS.get(flag)
        if bit is None:
            raise ConfigError(f"invalid scheduler flag: {flag}")
        flags |= bit
    return SchedAttr(
        ctypes.sizeof(SchedAttr), policy, flags, s.nice, s.priority, s.runtime, s.deadline, s.period, 0, 0
    )


def parse_cpu_list(text: str) -> set[int]:
    """Parse a kernel CPU list ("0-3,7"); spaces and empty elements are allowed, as in runc."""
    cpus: set[int] = set()
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        start, sep, end = part.partition("-")
        lo = _cpu_number(start)
        hi = _cpu_number(end) if sep else lo
        if lo > hi:
            raise ValueError(f"invalid range: {part}")
        cpus.update(range(lo, hi + 1))
    if not cpus:
        raise ValueError(f"no members found in set {text!r}")
    return cpus


def _cpu_number(text: str) -> int:
    text = text.strip()
    if not text.isdigit() or not text.isascii():
        raise ValueError(f"invalid CPU number {text!r}")
    value = int(text)
    if value > MAX_CPU:
        raise ValueError(f"values larger than {MAX_CPU} are not supported")
    return value


def possible_cpus() -> set[int]:
    """Every CPU the kernel could bring online (/sys/devices/system/cpu/possible)."""
    try:
        with open("/sys/devices/system/cpu/possible") as f:
            return parse_cpu_list(f.read())
    except (OSError, ValueError):
        return set(range(os.cpu_count() or 1))


def format_cpu_list(cpus: set[int] | list[int]) -> str:
    """The inverse of :func:`parse_cpu_list`: ``{0, 1, 2, 7}`` -> ``"0-2,7"``."""
    out: list[str] = []
    run: list[int] = []
    for cpu in sorted(cpus):
        if run and cpu == run[-1] + 1:
            run.append(cpu)
            continue
        if run:
            out.append(str(run[0]) if len(run) == 1 else f"{run[0]}-{run[-1]}")
        run = [cpu]
    if run:
        out.append(str(run[0]) if len(run) == 1 else f"{run[0]}-{run[-1]}")
    return ",".join(out)


# --------------------------------------------------------------------------- application


class _Rlimit(ctypes.Structure):
    _fields_ = [("rlim_cur", ctypes.c_uint64), ("rlim_max", ctypes.c_uint64)]


_prlimit = libc.prlimit
_prlimit.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.POINTER(_Rlimit), ctypes.POINTER(_Rlimit)]


def apply_rlimits(rlimits: list, pid: int = 0) -> None:
    """prlimit(2) each rlimit on ``pid`` (0: this process). EPERM is explained, not just reported."""
    for rl in rlimits:
        number = rlimit_number(rl.type)
        new = _Rlimit(rl.soft, rl.hard)
        if _prlimit(pid, number, ctypes.byref(new), None) != 0:
            err = ctypes.get_errno()
            msg = f"error setting rlimit type {rl.type}: {os.strerror(err).lower()}"
            if err == 1:  # EPERM
                old = _Rlimit()
                if _prlimit(pid, number, None, ctypes.byref(old)) == 0 and rl.hard > old.rlim_max:
                    msg += (
                        f" (raising the hard limit from {_rlim_text(old.rlim_max)} to"
                        f" {_rlim_text(rl.hard)} needs CAP_SYS_RESOURCE)"
                    )
            raise SystemError_(msg)


def get_rlimit(name: str, pid: int = 0) -> tuple[int, int]:
    old = _Rlimit()
    if _prlimit(pid, rlimit_number(name), None, ctypes.byref(old)) != 0:
        err = ctypes.get_errno()
        raise SystemError_(f"error getting rlimit type {name}: {os.strerror(err).lower()}")
    return old.rlim_cur, old.rlim_max


def _rlim_text(value: int) -> str:
    return "unlimited" if value == RLIM_INFINITY else str(value)


def set_oom_score_adj(value: int, pid: int | str = "self") -> None:
    """Write ``value`` to /proc/<pid>/oom_score_adj (lowering it needs CAP_SYS_RESOURCE)."""
    path = f"/proc/{pid}/oom_score_adj"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.write(fd, str(value).encode())
        finally:
            os.close(fd)
    except OSError as exc:
        msg = f"failed to set oom_score_adj to {value}: write {path}: {os.strerror(exc.errno).lower()}"
        if exc.errno in (1, 13):  # EPERM, EACCES
            msg += " (lowering oom_score_adj below its minimum needs CAP_SYS_RESOURCE)"
        raise SystemError_(msg) from None


_personality = libc.personality
_personality.argtypes = [ctypes.c_ulong]


def apply_personality(pers: object) -> None:
    """personality(2) with the domain (flags: runc ignores them with a warning, see :func:`validate`)."""
    if _personality(personality_value(pers)) == -1:
        err = ctypes.get_errno()
        raise SystemError_(f"unable to set personality {pers.domain}: {os.strerror(err).lower()}")


def apply_io_priority(iop: object) -> None:
    """ioprio_set(IOPRIO_WHO_PROCESS, 0, class << 13 | priority), as runc's setupIOPriority."""
    value = ioprio_value(iop)
    try:
        syscall("ioprio_set", _IOPRIO_WHO_PROCESS, 0, value)
    except OSError as exc:
        raise SystemError_(f"failed to set io priority: {os.strerror(exc.errno).lower()}") from None


def apply_scheduler(sched: object, pid: int = 0, *, cpuset_restricted: bool = False) -> None:
    """sched_setattr(2) with the struct built by :func:`sched_attr`."""
    attr = sched_attr(sched)
    try:
        syscall("sched_setattr", pid, ctypes.byref(attr), 0)
    except OSError as exc:
        if exc.errno == 1 and cpuset_restricted:
            raise SystemError_("process scheduler can't be used together with AllowedCPUs") from None
        raise SystemError_(f"error setting scheduler: {os.strerror(exc.errno).lower()}") from None


def apply_cpu_affinity(cpulist: str | None, pid: int = 0, *, which: str = "initial") -> None:
    """sched_setaffinity(2) to ``cpulist``; ``None`` resets to every CPU (runc's tryResetCPUAffinity)."""
    cpus = possible_cpus() if not cpulist else parse_cpu_list(cpulist)
    try:
        os.sched_setaffinity(pid, cpus)
    except OSError as exc:
        raise SystemError_(
            f"error setting {which} CPU affinity to {cpulist!r}: {os.strerror(exc.errno).lower()}"
        ) from None

"""``bock kill``: signal the container's init (or, with --all, every process in it)."""

from __future__ import annotations

import os

from bock._lifecycle.wait import pidfd_open, pidfd_send_signal
from bock._state import Container, proc_start_time
from bock.errors import ContainerNotRunning, UsageError

SIGNALS = {
    "HUP": 1, "INT": 2, "QUIT": 3, "ILL": 4, "TRAP": 5, "ABRT": 6, "IOT": 6, "BUS": 7, "FPE": 8,
    "KILL": 9, "USR1": 10, "SEGV": 11, "USR2": 12, "PIPE": 13, "ALRM": 14, "TERM": 15, "STKFLT": 16,
    "CHLD": 17, "CLD": 17, "CONT": 18, "STOP": 19, "TSTP": 20, "TTIN": 21, "TTOU": 22, "URG": 23,
    "XCPU": 24, "XFSZ": 25, "VTALRM": 26, "PROF": 27, "WINCH": 28, "IO": 29, "POLL": 29, "PWR": 30,
    "SYS": 31, "RTMIN": 34, "RTMAX": 64,
}  # fmt: skip


def parse_signal(raw: str) -> int:
    """A number, or a name with or without SIG (runc's parseSignal), RTMIN+n too."""
    if raw.isdigit():
        num = int(raw)
        if 0 <= num <= 64:
            return num
        raise UsageError(f"unknown signal {raw!r}")
    name = raw.upper()
    name = name[3:] if name.startswith("SIG") else name
    base, plus, offset = name.partition("+")
    if plus and base == "RTMIN" and offset.isdigit() and int(offset) <= 30:
        return 34 + int(offset)
    if name.startswith("RTMAX-") and name[6:].isdigit() and int(name[6:]) <= 30:
        return 64 - int(name[6:])
    if name not in SIGNALS:
        raise UsageError(f'unknown signal "{raw}"')
    return SIGNALS[name]


def signal_pid(pid: int, start_time: int, sig: int) -> None:
    """Signal ``pid`` only if it is still the process we recorded (pidfd: no reuse race)."""
    pidfd = pidfd_open(pid)
    if pidfd is None:
        raise ContainerNotRunning()
    try:
        if proc_start_time(pid) != start_time:
            raise ContainerNotRunning()
        pidfd_send_signal(pidfd, sig)
    except ProcessLookupError:
        raise ContainerNotRunning() from None
    finally:
        os.close(pidfd)


def container_pids(container: Container) -> list[int]:
    cg = container.data.get("cgroup")
    if cg:
        from bock._cgroups import CgroupManager

        return CgroupManager.from_state(cg).pids()
    return [container.pid] if container.init_alive() else []


def kill_container(container: Container, sig: int, all_processes: bool = False) -> None:
    if all_processes or (sig == 9 and not _own_pid_namespace(container)):
        for pid in container_pids(container):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        return
    signal_pid(container.pid, container.data["start_time"], sig)


def _own_pid_namespace(container: Container) -> bool:
    for ns in (container.config.get("linux") or {}).get("namespaces") or []:
        if ns.get("type") == "pid" and not ns.get("path"):
            return True
    return False


def kill(container: Container, sig: int, all_processes: bool = False) -> None:
    status = container.status()
    if status == "stopped":
        if all_processes:
            return  # runc ≥1.2: "not running" is not an error with --all
        raise ContainerNotRunning()
    kill_container(container, sig, all_processes)

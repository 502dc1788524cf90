"""``bock events``: runc's stats objects (``--stats``: one; ``--interval D``: a stream with OOM events)."""

from __future__ import annotations

import os

from bock._lifecycle.ps import manager_for
from bock._state import Container
from bock.errors import BockError, UsageError

_UNIT_NS = {"ns": 1, "us": 1_000, "µs": 1_000, "μs": 1_000, "ms": 1_000_000, "s": 10**9, "m": 60 * 10**9}
_UNIT_NS["h"] = 3600 * 10**9


def parse_duration(text: str) -> float:
    """Go's time.ParseDuration (``5s``, ``100ms``, ``1m30s``, ``1.5h``) in seconds."""
    s = text.strip()
    if s in ("0", "+0", "-0"):
        return 0.0
    sign = 1
    if s and s[0] in "+-":
        sign = -1 if s[0] == "-" else 1
        s = s[1:]
    if not s:
        raise UsageError(f'time: invalid duration "{text}"')
    total = 0.0
    i = 0
    while i < len(s):
        j = i
        while j < len(s) and (s[j].isdigit() or s[j] == "."):
            j += 1
        if j == i:
            raise UsageError(f'time: invalid duration "{text}"')
        number = s[i:j]
        k = j
        while k < len(s) and not (s[k].isdigit() or s[k] == "."):
            k += 1
        unit = s[j:k]
        if unit not in _UNIT_NS:
            raise UsageError(f'time: {"missing" if not unit else "unknown"} unit in duration "{text}"')
        try:
            total += float(number) * _UNIT_NS[unit]
        except ValueError:
            raise UsageError(f'time: invalid duration "{text}"') from None
        i = k
    return sign * total / 1e9


def _not_running(container: Container) -> BockError:
    return BockError(f"container with id {container.id} is not running")


def stats_event(container: Container, manager=None) -> dict:
    manager = manager or manager_for(container)
    return {"type": "stats", "id": container.id, "data": manager.stats()}


def _emit(obj: dict, out) -> None:
    from bock import _jsonlite

    out.write(_jsonlite.dumps(obj) + "\n")
    out.flush()


def events(container: Container, *, stats_once: bool, interval: float, out) -> None:
    if container.status() == "stopped":
        raise _not_running(container)
    manager = manager_for(container)
    if stats_once:
        _emit(stats_event(container, manager), out)
        return
    if interval <= 0:
        raise UsageError("duration interval must be greater than 0")
    import select

    from bock._lifecycle.wait import pidfd_open

    try:
        watcher = manager.oom_events()
    except BockError:
        watcher = None  # no memory controller: stats only
    pidfd = pidfd_open(container.pid)
    poller = select.poll()
    if watcher is not None:
        poller.register(watcher.fileno(), select.POLLIN | select.POLLPRI)
    if pidfd is not None:
        poller.register(pidfd, select.POLLIN)
    import time

    next_at = time.monotonic()
    try:
        while True:
            now = time.monotonic()
            if now >= next_at:
                if not container.init_alive():
                    return
                _emit(stats_event(container, manager), out)
                next_at = now + interval
            ready = dict(poller.poll(max(0, int((next_at - time.monotonic()) * 1000))))
            if watcher is not None and watcher.fileno() in ready:
                for _ in range(watcher.wait(0)):
                    _emit({"type": "oom", "id": container.id}, out)
                if getattr(watcher, "closed", False):
                    poller.unregister(watcher.fileno())
                    watcher = None
            if pidfd is not None and pidfd in ready:
                return
    finally:
        if watcher is not None:
            watcher.close()
        if pidfd is not None:
            os.close(pidfd)

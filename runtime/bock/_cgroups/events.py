"""What ``bock events`` prints (runc's events.go): stats events and OOM events.

    events.stats_event(cid, manager)                  # events --stats: one object
    events.watch(cid, manager, 5.0, emit, running)    # events --interval 5s: a stream

``emit`` receives each event as a dict (``{"type": "stats", "id": ..., "data": ...}`` or
``{"type": "oom", "id": ...}``); the caller writes it as one JSON line. Like runc, the
first stats event comes one interval after the start. The stream ends when
``running()`` turns false (OOM events already signalled are still emitted).
"""

from __future__ import annotations

import time
from _collections_abc import Callable

from bock._cgroups.errors import CgroupError
from bock._cgroups.manager import CgroupManager


def stats_event(cid: str, manager: CgroupManager) -> dict:
    return {"type": "stats", "id": cid, "data": manager.stats()}


def watch(
    cid: str,
    manager: CgroupManager,
    interval: float,
    emit: Callable[[dict], None],
    running: Callable[[], bool],
) -> None:
    if interval <= 0:
        raise CgroupError(f"invalid interval {interval}: must be positive")
    try:
        watcher = manager.oom_events()
    except (CgroupError, OSError):
        watcher = None  # no memory cgroup: stats only, as runc
    try:
        next_stats = time.monotonic() + interval
        while True:
            alive = running()
            timeout = 0.0 if not alive else max(0.0, next_stats - time.monotonic())
            if watcher is not None and not watcher.closed:
                for _ in range(watcher.wait(timeout)):
                    emit({"type": "oom", "id": cid})
            elif timeout:
                time.sleep(timeout)
            if not alive:
                return
            if time.monotonic() >= next_stats:
                emit(stats_event(cid, manager))
                next_stats += interval
    finally:
        if watcher is not None:
            watcher.close()

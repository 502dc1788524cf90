"""Overlap the kernel's cgroup-attach grace period with our own start-up work.

Every write to a ``cgroup.procs`` file takes the global ``cgroup_threadgroup_rwsem``
for writing; when nobody has done so lately, that waits for an RCU grace period (about
13 ms on this VM: half of ``runc run``). A no-op move of ourselves into the cgroup we
are already in, started in a thread as soon as ``create``/``run`` (or ``exec``, whose
process joins the container's cgroups) begins, pays that
wait while the config is parsed and checked; the container's real attach, a few
milliseconds later, then finds the lock warm (13.5 ms -> 1.9 ms measured).

Not in ``bock._cgroups``: importing that package costs about 1.5 ms, which would delay
the start. ``bin/bock`` starts the warmer before it imports ``bock._main`` when its
arguments hold "create", "run" or "exec" (about 2 ms earlier); ``bock._main`` starts it if that
did not happen, and joins it when the command turns out to be another one.
"""

from __future__ import annotations

import _thread
import os


def _own_procs_file() -> str | None:
    try:
        with open("/proc/self/cgroup") as f:
            line = f.readline().rstrip("\n")
    except OSError:
        return None
    _n, ctrls, path = line.split(":", 2)
    if not ctrls:  # cgroup v2
        return f"/sys/fs/cgroup{path.rstrip('/')}/cgroup.procs"
    name = ctrls.replace("name=", "")
    return f"/sys/fs/cgroup/{name}{path.rstrip('/')}/cgroup.procs"


class Warmer:
    """Start with :meth:`start`; call :meth:`wait` before forking (no fork with a live thread)."""

    __slots__ = ("_lock", "_started")

    def __init__(self) -> None:
        self._lock = None
        self._started = False

    def start(self) -> None:
        """Start the warm-up once per process (a second call does nothing)."""
        if self._started:
            return
        self._started = True
        path = _own_procs_file()
        if path is None:
            return
        lock = _thread.allocate_lock()
        lock.acquire()
        self._lock = lock
        pid = str(os.getpid()).encode()

        def run() -> None:
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
                try:
                    os.write(fd, pid)
                finally:
                    os.close(fd)
            except OSError:
                pass  # only an optimisation (rootless, read-only cgroupfs, ...)
            finally:
                lock.release()

        _thread.start_new_thread(run, ())

    def wait(self) -> None:
        if self._lock is not None:
            self._lock.acquire()
            self._lock = None


warmer = Warmer()

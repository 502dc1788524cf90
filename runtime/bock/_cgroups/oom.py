"""OOM notifications for ``bock events``.

- v1: an eventfd registered on ``memory.oom_control`` through ``cgroup.event_control``
  (runc's ``notifyOnOOM``); the kernel signals it on every OOM in the cgroup, and
  once more when the cgroup is removed.
- v2: ``memory.events`` is pollable (kernfs raises POLLPRI on change); an OOM is a
  rise of its ``oom_kill`` count (runc watches the same file with inotify).

Both watchers have ``fileno()`` (for select/poll loops), ``wait(timeout)`` returning
the number of new OOM events (0 on timeout), ``closed`` (the cgroup is gone) and
``close()``.
"""

from __future__ import annotations

import errno
import os
import select

from bock._cgroups import fsio
from bock._cgroups.errors import CgroupError


class V1Watcher:
    def __init__(self, memory_path: str) -> None:
        self.path = memory_path
        self.closed = False
        self._control = os.open(f"{memory_path}/memory.oom_control", os.O_RDONLY | os.O_CLOEXEC)
        try:
            self._efd = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)
        except BaseException:
            os.close(self._control)
            raise
        try:
            fsio.write(memory_path, "cgroup.event_control", f"{self._efd} {self._control}")
        except OSError as e:
            self.close()
            raise CgroupError(f"registering for OOM events: {e.strerror}") from None

    def fileno(self) -> int:
        return self._efd

    def wait(self, timeout: float | None = None) -> int:
        if self.closed:
            return 0
        r, _, _ = select.select([self._efd], [], [], timeout)
        if not r:
            return 0
        try:
            count = os.eventfd_read(self._efd)
        except BlockingIOError:
            return 0
        if not os.path.exists(f"{self.path}/cgroup.event_control"):
            # The kernel signals the eventfd once more when the cgroup is removed.
            self.closed = True
            return 0
        return count

    def close(self) -> None:
        self.closed = True
        for fd in (getattr(self, "_efd", -1), self._control):
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self._efd = self._control = -1


class V2Watcher:
    def __init__(self, path: str) -> None:
        self.path = path
        self.closed = False
        try:
            self._fd = os.open(f"{path}/memory.events", os.O_RDONLY | os.O_CLOEXEC)
        except OSError as e:
            raise CgroupError(
                f"registering for OOM events: open {path}/memory.events: {e.strerror}"
            ) from None
        self._poll = select.poll()
        self._poll.register(self._fd, select.POLLPRI | select.POLLERR)
        self._seen = self._oom_kills()

    def _oom_kills(self) -> int:
        try:
            os.lseek(self._fd, 0, os.SEEK_SET)
            text = os.read(self._fd, 4096).decode()
        except OSError as e:
            if e.errno in (errno.ENODEV, errno.ENOENT):
                self.closed = True
                return self._seen
            raise
        for line in text.splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill":
                return int(value)
        return 0

    def fileno(self) -> int:
        return self._fd

    def wait(self, timeout: float | None = None) -> int:
        if self.closed:
            return 0
        events = self._poll.poll(None if timeout is None else int(timeout * 1000))
        if not events:
            return 0
        now = self._oom_kills()
        new, self._seen = max(0, now - self._seen), now
        if not os.path.isdir(self.path):
            self.closed = True
        return new

    def close(self) -> None:
        self.closed = True
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

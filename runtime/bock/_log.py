"""runc-compatible logging: ``--log FILE`` and ``--log-format text|json``.

The log file is opened (O_CREAT|O_APPEND) at the start of every invocation, as runc
does: containerd reads it even when nothing failed. JSON lines are logrus-shaped,
``{"level","msg","time"}`` with an RFC 3339 time; text lines are logrus' text format.
Warnings go to the file only with ``--debug`` (podman parses the whole file as one
JSON object).
"""

from __future__ import annotations

import os
import sys

from bock import _jsonlite

_LEVELS = {"debug": 0, "info": 1, "warning": 2, "error": 3}


def _now() -> str:
    import time

    t = time.time()
    secs = int(t)
    tm = time.gmtime(secs)
    return "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ" % (*tm[:6], int((t - secs) * 1e6))


class Logger:
    __slots__ = ("debug_on", "fd", "fmt")

    def __init__(self, path: str | None = None, fmt: str = "text", debug: bool = False) -> None:
        self.fmt = fmt
        self.debug_on = debug
        self.fd = 2
        if path:
            self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)

    def for_container_init(self) -> int | None:
        """In the container init, stderr is the container's: log to the file or nowhere.

        Returns the fd the init must keep open (close-on-exec), if any."""
        if self.fd == 2:
            self.fd = -1
            return None
        return self.fd

    def _emit(self, level: str, msg: str) -> None:
        if self.fd < 0:
            return
        if self.fmt == "json":
            line = _jsonlite.dumps({"level": level, "msg": msg, "time": _now()})
        else:
            line = f'time="{_now()}" level={level} msg={_jsonlite.dumps(msg)}'
        try:
            os.write(self.fd, (line + "\n").encode())
        except OSError:
            pass

    def debug(self, msg: str) -> None:
        if self.debug_on:
            self._emit("debug", msg)

    def warning(self, msg: str) -> None:
        if self.debug_on or self.fd == 2:
            self._emit("warning", msg)

    def error(self, msg: str) -> None:
        """Log a fatal error; like runc, also print it on stderr when the log is a file."""
        self._emit("error", msg)
        if self.fd != 2:
            try:
                sys.stderr.write(msg + "\n")
                sys.stderr.flush()
            except (OSError, ValueError):
                pass


log = Logger()

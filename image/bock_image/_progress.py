"""Progress reporting for the CLI: a redrawn status line on a terminal, plain lines otherwise."""

from __future__ import annotations

import sys
import threading
import time
from typing import Any, TextIO


def _mib(n: int) -> str:
    return f"{n / 1048576:.1f} MiB"


class Reporter:
    def __init__(self, stream: TextIO | None = None, quiet: bool = False) -> None:
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.tty = self.stream.isatty()
        self._lock = threading.Lock()
        self._bytes: dict[str, tuple[int, int]] = {}
        self._last = 0.0

    def __call__(self, event: str, **kw: Any) -> None:
        if self.quiet:
            return
        with self._lock:
            digest = kw.get("digest", "")
            short = digest.split(":")[-1][:12]
            if event == "bytes":
                self._bytes[digest] = (kw["done"], kw["size"])
                if self.tty and time.monotonic() - self._last > 0.1:
                    self._last = time.monotonic()
                    done = sum(d for d, _ in self._bytes.values())
                    total = sum(s for _, s in self._bytes.values())
                    width = 30
                    fill = int(width * done / total) if total else width
                    self.stream.write(
                        f"\r[{'=' * fill}{' ' * (width - fill)}] {_mib(done)} / {_mib(total)}  "
                    )
                    self.stream.flush()
                return
            if self.tty:
                self.stream.write("\r\033[K")
            if event == "start":
                if not self.tty:
                    self.stream.write(f"Copying blob {short} ({_mib(kw['size'])})\n")
            elif event == "exists":
                self.stream.write(f"Blob {short} already present, skipping\n")
            elif event == "mounted":
                self.stream.write(f"Blob {short} mounted from {kw['source']}\n")
            elif event == "uploaded":
                self.stream.write(f"Uploaded blob {short}\n")
            elif event == "done":
                self.stream.write(f"Wrote {kw.get('ref')} ({kw.get('digest')})\n")
            else:
                self.stream.write(f"{event} {kw}\n")
            self.stream.flush()

"""Running one RUN step as a container through an OCI runtime's command line
(``create --pid-file`` / ``start`` / wait / ``delete``), with its output streamed live, prefixed
with the step, and the last lines kept for the error message."""

from __future__ import annotations

import collections
import ctypes
import os
import subprocess
import sys
import threading
from pathlib import Path

from .errors import RuntimeFailure

PR_SET_CHILD_SUBREAPER = 36
_subreaper_lock = threading.Lock()
_subreaper = False
_print_lock = threading.Lock()


def _become_subreaper() -> None:
    """The container's init is re-parented to us when ``runtime create`` exits, so that we can wait
    for it and read its exit status, as containerd's shim does."""
    global _subreaper
    with _subreaper_lock:
        if not _subreaper:
            libc = ctypes.CDLL(None, use_errno=True)
            if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
                raise RuntimeFailure(f"prctl(PR_SET_CHILD_SUBREAPER): {os.strerror(ctypes.get_errno())}")
            _subreaper = True


class OutputPump(threading.Thread):
    def __init__(self, fd: int, prefix: str, quiet: bool, keep: int = 20) -> None:
        super().__init__(daemon=True)
        self.fd, self.prefix, self.quiet = fd, prefix, quiet
        self.tail: collections.deque[str] = collections.deque(maxlen=keep)

    def run(self) -> None:
        pending = b""
        with open(self.fd, "rb", buffering=0, closefd=True) as f:
            while True:
                chunk = f.read(65536)
                if not chunk:
                    break
                pending += chunk
                *lines, pending = pending.split(b"\n")
                self._emit(lines)
        if pending:
            self._emit([pending])

    def _emit(self, lines: list[bytes]) -> None:
        texts = [ln.decode("utf-8", "replace").rstrip("\r") for ln in lines]
        self.tail.extend(texts)
        if not self.quiet and texts:
            with _print_lock:
                sys.stdout.write("".join(f"{self.prefix} {t}\n" for t in texts))
                sys.stdout.flush()


class Runtime:
    def __init__(self, binary: str, state_root: Path) -> None:
        self.binary = binary
        self.state_root = state_root
        self.running: set[str] = set()
        self.cancelled = False
        state_root.mkdir(parents=True, exist_ok=True)

    def kill_all(self) -> None:
        """SIGKILL every container this runtime object started and has not deleted yet."""
        with _subreaper_lock:
            self.cancelled = True
            running = list(self.running)
        for cid in running:
            subprocess.run(self._cmd("kill", cid, "KILL"), capture_output=True, stdin=subprocess.DEVNULL)

    def _cmd(self, *args: str) -> list[str]:
        return [self.binary, "--root", str(self.state_root), *args]

    def run(self, bundle: Path, cid: str, prefix: str, quiet: bool = False) -> tuple[int, list[str]]:
        """Create, start, wait for and delete one container; returns (exit code, output tail)."""
        _become_subreaper()
        r, w = os.pipe()
        pump = OutputPump(r, prefix, quiet)
        pump.start()
        pid_file = bundle / "pid"
        created = False
        try:
            try:
                res = subprocess.run(
                    self._cmd("create", "--bundle", str(bundle), "--pid-file", str(pid_file), cid),
                    stdin=subprocess.DEVNULL,
                    stdout=w,
                    stderr=w,  # the container inherits both; a PIPE here would never see EOF
                )
            finally:
                os.close(w)
            if res.returncode != 0:
                pump.join(timeout=10)
                raise RuntimeFailure(
                    f"{self.binary} create failed ({res.returncode}): " + " | ".join(pump.tail)
                )
            created = True
            with _subreaper_lock:
                self.running.add(cid)
                if self.cancelled:
                    raise RuntimeFailure("build cancelled")
            pid = int(pid_file.read_text().strip())
            res = subprocess.run(self._cmd("start", cid), stdin=subprocess.DEVNULL, capture_output=True)
            if res.returncode != 0:
                raise RuntimeFailure(
                    f"{self.binary} start failed ({res.returncode}): {res.stderr.decode(errors='replace').strip()}"
                )
            code = self._wait(pid, cid)
        finally:
            if created:
                subprocess.run(
                    self._cmd("delete", "--force", cid), capture_output=True, stdin=subprocess.DEVNULL
                )
                with _subreaper_lock:
                    self.running.discard(cid)
            pump.join(timeout=10)
        return code, list(pump.tail)

    def _wait(self, pid: int, cid: str) -> int:
        try:
            _, status = os.waitpid(pid, 0)
        except ChildProcessError:
            return self._wait_by_state(cid)
        return os.waitstatus_to_exitcode(status) if not os.WIFSIGNALED(status) else 128 + os.WTERMSIG(status)

    def _wait_by_state(self, cid: str) -> int:
        raise RuntimeFailure(
            f"{self.binary}: the container of {cid} is not our child (the runtime double-forks); "
            "bock-build cannot read its exit status"
        )

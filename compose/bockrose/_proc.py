"""Child processes of the monitor. The monitor is a subreaper, so one reaper thread owns
waitpid(-1): it hands exit statuses to whoever registered the pid (spawned commands, container
inits adopted by reparenting) and silently reaps everything else (no zombies)."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence

_lock = threading.Lock()
_waiters: dict[int, Callable[[int], None]] = {}
_unclaimed: dict[int, int] = {}
_reaper_started = False


def exit_code(status: int) -> int:
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.waitstatus_to_exitcode(status)


def _reap_forever() -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, 0)
        except ChildProcessError:
            threading.Event().wait(0.05)
            continue
        except InterruptedError:
            continue
        with _lock:
            cb = _waiters.pop(pid, None)
            if cb is None:
                _unclaimed[pid] = status
                if len(_unclaimed) > 4096:
                    _unclaimed.pop(next(iter(_unclaimed)))
        if cb is not None:
            cb(exit_code(status))


def start_reaper() -> None:
    global _reaper_started
    if not _reaper_started:
        _reaper_started = True
        threading.Thread(target=_reap_forever, name="reaper", daemon=True).start()


def on_exit(pid: int, callback: Callable[[int], None]) -> None:
    """Call callback(exit code) when pid (a child or a reparented orphan) exits."""
    with _lock:
        if pid in _unclaimed:
            status = _unclaimed.pop(pid)
        else:
            _waiters[pid] = callback
            return
    callback(exit_code(status))


def run(
    argv: Sequence[str],
    *,
    stdin: int | None = None,
    stdout: int | None = None,
    stderr: int | None = None,
    env: dict[str, str] | None = None,
    timeout: float | None = None,
) -> tuple[int, bytes, bytes]:
    """Run argv to completion; stdout/stderr captured unless fds are given. (rc, out, err)."""
    if not _reaper_started:
        import subprocess

        p = subprocess.run(
            list(argv),
            stdin=stdin if stdin is not None else subprocess.DEVNULL,
            stdout=stdout if stdout is not None else subprocess.PIPE,
            stderr=stderr if stderr is not None else subprocess.PIPE,
            env=env,
            timeout=timeout,
        )
        return p.returncode, p.stdout or b"", p.stderr or b""
    pipes: list[tuple[int, list[bytes]]] = []
    fds: dict[int, int] = {}
    close_after: list[int] = []
    for target, given in ((1, stdout), (2, stderr)):
        if given is None:
            r, w = os.pipe()
            fds[target] = w
            close_after.append(w)
            pipes.append((r, []))
        else:
            fds[target] = given
    if stdin is None:
        stdin = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
        close_after.append(stdin)
    fds[0] = stdin
    done = threading.Event()
    result: list[int] = []

    def finished(code: int) -> None:
        result.append(code)
        done.set()

    with _lock:
        pid = os.fork()
        if pid == 0:  # child: no Python-level work beyond dup2 + exec
            try:
                for target, fd in fds.items():
                    os.dup2(fd, target, inheritable=True)
                os.closerange(3, 65536)
                if env is None:
                    os.execvp(argv[0], list(argv))
                os.execvpe(argv[0], list(argv), env)
            except BaseException:
                os.write(2, f"exec {argv[0]}: failed\n".encode())
            os._exit(127)
        _waiters[pid] = finished
    for fd in close_after:
        os.close(fd)
    readers = []
    for r, buf in pipes:
        t = threading.Thread(target=_drain, args=(r, buf), daemon=True)
        t.start()
        readers.append(t)
    if not done.wait(timeout):
        os.kill(pid, 9)
        done.wait()
    for t in readers:
        t.join()
    outs = [b"".join(buf) for _, buf in pipes]
    out = outs.pop(0) if stdout is None else b""
    err = outs.pop(0) if stderr is None else b""
    return result[0], out, err


def _drain(fd: int, buf: list[bytes]) -> None:
    try:
        while True:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            buf.append(chunk)
    finally:
        os.close(fd)

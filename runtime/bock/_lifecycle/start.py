"""``bock start``: open exec.fifo so the waiting init execs the user process."""

from __future__ import annotations

import os
import select

from bock._lifecycle.wait import pidfd_open
from bock._state import FIFO, Container
from bock.errors import BadState, ExecError


def start(container: Container) -> None:
    status = container.status()
    if status == "stopped":
        raise BadState("cannot start a container that has stopped")
    if status == "running":
        raise BadState("cannot start an already running container")
    if status == "paused":
        raise BadState("cannot start a container in the paused state")
    fifo = os.path.join(container.dir, FIFO)
    data = _handshake(fifo, container.pid)
    if not data:
        raise BadState("cannot start an already running container")
    try:
        os.unlink(fifo)
    except FileNotFoundError:
        pass
    if data[:1] != b"0":
        raise ExecError(f"unexpected data from the container init: {data[:64]!r}")
    if len(data) > 1:
        raise ExecError(f"unable to start container process: {data[1:].decode(errors='replace').strip()}")
    hooks = (container.config.get("hooks") or {}).get("poststart")
    if hooks:
        run_poststart(container, hooks)


def _handshake(fifo: str, pid: int) -> bytes:
    """Read the fifo until EOF: "0" arrives when the init is released, EOF at its execve."""
    pidfd = pidfd_open(pid)
    fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    chunks: list[bytes] = []
    try:
        poller = select.poll()
        poller.register(fd, select.POLLIN | select.POLLHUP)
        if pidfd is not None:
            poller.register(pidfd, select.POLLIN)
        while True:
            events = dict(poller.poll(100 if pidfd is None else None))
            if fd in events:
                try:
                    chunk = os.read(fd, 4096)
                except BlockingIOError:
                    continue
                if not chunk:
                    break
                chunks.append(chunk)
                continue
            dead = pid_dead(pid) if pidfd is None else pidfd in events
            if dead:
                if not chunks:
                    raise ExecError("container process is already dead")
                break
    finally:
        os.close(fd)
        if pidfd is not None:
            os.close(pidfd)
    return b"".join(chunks)


def pid_dead(pid: int) -> bool:
    from bock._state import proc_start_time

    return proc_start_time(pid) is None


def run_poststart(container: Container, hooks: list[dict]) -> None:
    from bock._lifecycle.kill import kill_container
    from bock._security.hooks import run_hooks
    from bock._spec.config import Hook

    state = container.oci_state("running")
    from bock import SPEC_VERSION

    state["ociVersion"] = SPEC_VERSION
    try:
        run_hooks([Hook.from_json(h) for h in hooks], state, kind="poststart")
    except Exception:
        kill_container(container, 9)
        raise

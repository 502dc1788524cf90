"""The CLI's side of the monitor: start it (detached, own session) when it is not running, adopt
after a crash, and send requests over its unix socket."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

from ._state import ProjectState, load_state, pid_alive, project_dir, save_state, socket_address
from .errors import MonitorError


def connect(root: str, project: str) -> socket.socket | None:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(socket_address(root, project))
        return s
    except OSError:
        s.close()
        return None


def ensure_monitor(root: str, state: ProjectState, notify: Callable[[str], None]) -> None:
    """Start the project's monitor unless one answers; an existing state with a dead monitor
    means the monitor was killed: the new one adopts the running containers and we say so."""
    s = connect(root, state.name)
    if s is not None:
        s.close()
        return
    pdir = project_dir(root, state.name)
    os.makedirs(os.path.join(pdir, "containers"), exist_ok=True)
    old = load_state(root, state.name)
    if old is None:
        save_state(root, state)
    elif old.monitor_pid and not pid_alive(old.monitor_pid) and old.containers:
        notify(
            f"monitor of project {state.name} (pid {old.monitor_pid}) was not running: starting a new "
            "one, which adopts the running containers"
        )
    r, w = os.pipe()
    log = os.open(os.path.join(pdir, "monitor.log"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    env["BOCKROSE_READY_FD"] = str(w)
    proc = subprocess.Popen(
        [sys.executable, "-m", "bockrose._monitor", root, state.name],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=log,
        pass_fds=(w,),
        start_new_session=True,
        env=env,
        cwd="/",
    )
    os.close(w)
    os.close(log)
    f = os.fdopen(r, "rb")
    line = f.readline()
    f.close()
    if not line:
        # another CLI may have started this project's monitor at the same moment: use that one
        for _ in range(100):
            other = connect(root, state.name)
            if other is not None:
                other.close()
                return
            time.sleep(0.05)
        rc = proc.wait(timeout=5) if proc.poll() is not None else None
        tail = ""
        try:
            with open(os.path.join(pdir, "monitor.log"), errors="replace") as lf:
                tail = lf.read()[-800:]
        except OSError:
            pass
        raise MonitorError(f"the monitor did not start (exit {rc}): {tail.strip()}")
    msg = json.loads(line)
    if msg.get("adopted"):
        notify(f"adopted {len(msg['adopted'])} running container(s): {', '.join(msg['adopted'])}")


def request(
    root: str,
    project: str,
    req: dict[str, Any],
    on_event: Callable[[dict[str, Any]], None],
    timeout: float | None = None,
) -> dict[str, Any]:
    s = connect(root, project)
    if s is None:
        raise MonitorError(f"the monitor of project {project} is not running")
    try:
        s.sendall(json.dumps(req).encode() + b"\n")
        f = s.makefile("rb")
        deadline = time.monotonic() + timeout if timeout else None
        for line in f:
            msg = json.loads(line)
            if "ok" in msg:
                if not msg["ok"]:
                    from .errors import ComposeError

                    raise ComposeError(msg.get("error", "failed"))
                return msg
            on_event(msg)
            if deadline and time.monotonic() > deadline:
                raise MonitorError("timed out waiting for the monitor")
        raise MonitorError("the monitor closed the connection without an answer")
    finally:
        s.close()

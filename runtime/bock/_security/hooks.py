"""OCI lifecycle hooks (config.md "POSIX-platform Hooks"), run the way runc runs them.

Each hook is spawned with its ``path``, its ``args`` (``args[0]`` is argv[0]; an
empty list means ``[path]``, as Go's ``exec.Cmd`` does), the container state JSON on
stdin, and stdout/stderr captured for the error text. Its environment is its ``env``;
a hook without one gets ``default_env`` (runc: the runtime's own environment, and for
``startContainer`` the container process's environment).

A hook that outlives its ``timeout`` is killed with SIGKILL together with its whole
process group (runc kills only the hook and then waits for its children to close
stdout, so a ``sh -c 'sleep 100'`` hook holds runc for 100 s; bock does not wait).

Error text follows runc (libcontainer/configs ``Hooks.Run`` / ``Command.Run``)::

    error running prestart hook #0: exit status 1, stdout: ..., stderr: ...
    error running prestart hook #0: hook ran past specified timeout of 2.0s
    error running prestart hook #0: fork/exec /no/such: no such file or directory

Which namespaces a hook runs in is the caller's business: ``createContainer`` and
``startContainer`` hooks are run from the container's init (see the lifecycle table in
runtime-spec-lifecycle.md §4); the others from the runtime.
"""

from __future__ import annotations

import _signal
import os
import select  # (both cheap: startContainer hooks run after pivot_root, nothing can be imported then)
import time

from bock.errors import BockError, ConfigError

HOOK_KINDS = ("prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop")

_SIGKILL = 9
# Python ignores SIGPIPE and SIGXFSZ; ignored dispositions survive execve, so reset them.
_RESET_SIGNALS = (13, 25)  # SIGPIPE, SIGXFSZ (same numbers on x86_64 and aarch64)
_CHUNK = 65536


class HookError(BockError):
    """A hook failed, could not be started, or ran past its timeout."""


def validate(hooks: object) -> None:
    """Check what the schema cannot: absolute paths and positive timeouts (``Hooks`` of the model)."""
    for kind, attr in zip(HOOK_KINDS, _ATTRS, strict=True):
        for i, hook in enumerate(getattr(hooks, attr)):
            if not os.path.isabs(hook.path):
                raise ConfigError(f"invalid {kind} hook #{i}: path {hook.path!r} is not absolute")
            if hook.timeout is not None and hook.timeout <= 0:
                raise ConfigError(f"invalid {kind} hook #{i}: timeout must be > 0, got {hook.timeout}")


_ATTRS = ("prestart", "create_runtime", "create_container", "start_container", "poststart", "poststop")


def hooks_of(hooks: object, kind: str) -> list:
    """The hook list of ``kind`` (spec spelling, e.g. ``createRuntime``) from a ``Hooks`` record."""
    return getattr(hooks, _ATTRS[HOOK_KINDS.index(kind)])


def run_hooks(
    hooks: list, state: dict | str | bytes, *, kind: str, default_env: list[str] | None = None
) -> None:
    """Run ``hooks`` in order; the first failure raises :class:`HookError` (runc's wording)."""
    if not hooks:
        return
    data = _state_bytes(state)
    for i, hook in enumerate(hooks):
        err = _run_one(hook, data, default_env)
        if err is not None:
            raise HookError(f"error running {kind} hook #{i}: {err}")


def run_poststop(hooks: list, state: dict | str | bytes, default_env: list[str] | None = None) -> list[str]:
    """Run every poststop hook; failures are only warnings (the spec: "log a warning and continue").

    Returns the warning messages, one per failed hook, for the caller to log.
    """
    if not hooks:
        return []
    data = _state_bytes(state)
    warnings = []
    for i, hook in enumerate(hooks):
        err = _run_one(hook, data, default_env)
        if err is not None:
            warnings.append(f"error running poststop hook #{i}: {err}")
    return warnings


def _state_bytes(state: dict | str | bytes) -> bytes:
    if isinstance(state, bytes):
        return state
    if isinstance(state, str):
        return state.encode()
    from bock._jsonlite import dumps

    return dumps(state).encode()


def _run_one(hook: object, data: bytes, default_env: list[str] | None) -> str | None:
    """Run one hook; return None on success, else the error text (without the hook prefix)."""
    argv = list(hook.args) or [hook.path]
    env = hook.env or (
        default_env if default_env is not None else [f"{k}={v}" for k, v in os.environ.items()]
    )
    envd = {}
    for item in env:
        key, sep, value = item.partition("=")
        if sep:
            envd[key] = value
    in_r, in_w = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
    os.set_blocking(in_r, True)
    # The state is small: it usually fits the pipe before the hook even starts.
    sent = 0
    if data:
        try:
            sent = os.write(in_w, data)
        except BlockingIOError:
            pass
    out_r, out_w = os.pipe2(os.O_CLOEXEC)
    err_r, err_w = os.pipe2(os.O_CLOEXEC)
    try:
        pid = os.posix_spawn(
            hook.path,
            argv,
            envd,
            file_actions=[
                (os.POSIX_SPAWN_DUP2, in_r, 0),
                (os.POSIX_SPAWN_DUP2, out_w, 1),
                (os.POSIX_SPAWN_DUP2, err_w, 2),
            ],
            setpgroup=0,
            setsigdef=_RESET_SIGNALS,
        )
    except OSError as exc:
        for fd in (in_r, in_w, out_r, out_w, err_r, err_w):
            os.close(fd)
        return f"fork/exec {hook.path}: {os.strerror(exc.errno).lower() if exc.errno else exc}"
    os.close(in_r)
    os.close(out_w)
    os.close(err_w)
    if sent == len(data):
        os.close(in_w)
        in_w = -1
    return _supervise(pid, hook.timeout, data[sent:], in_w, out_r, err_r)


def _supervise(pid: int, timeout: int | None, data: bytes, in_w: int, out_r: int, err_r: int) -> str | None:
    deadline = None if timeout is None else time.monotonic() + timeout
    pidfd = os.pidfd_open(pid)
    chunks: dict[int, list[bytes]] = {out_r: [], err_r: []}
    poller = select.poll()
    for fd in (out_r, err_r, pidfd):
        poller.register(fd, select.POLLIN)
    if in_w >= 0:
        poller.register(in_w, select.POLLOUT)
    view = memoryview(data)
    timed_out = False
    try:
        while True:
            wait_ms = None
            if deadline is not None:
                wait_ms = max(0, int((deadline - time.monotonic()) * 1000) + 1)
            events = poller.poll(wait_ms)
            if not events and deadline is not None and time.monotonic() >= deadline:
                timed_out = True
                break
            exited = False
            for fd, _ev in events:
                if fd == pidfd:
                    exited = True
                elif fd == in_w:
                    try:
                        view = view[os.write(in_w, view[:_CHUNK]) :]
                    except BlockingIOError:
                        continue
                    except OSError:  # EPIPE: the hook does not read its stdin, as runc allows
                        view = view[:0]
                    if not view:
                        poller.unregister(in_w)
                        os.close(in_w)
                        in_w = -1
                else:
                    block = os.read(fd, _CHUNK)
                    if block:
                        chunks[fd].append(block)
                    else:
                        poller.unregister(fd)
            if exited:
                break
        if timed_out:
            try:
                os.killpg(pid, _SIGKILL)
            except ProcessLookupError:
                pass
        _, status = os.waitpid(pid, 0)
        # Keep what the hook already wrote, without waiting for children that inherited its pipes.
        for fd in (out_r, err_r):
            os.set_blocking(fd, False)
            try:
                while block := os.read(fd, _CHUNK):
                    chunks[fd].append(block)
            except BlockingIOError:
                pass
    finally:
        for fd in (pidfd, out_r, err_r, in_w):
            if fd >= 0:
                os.close(fd)
    if timed_out:
        return f"hook ran past specified timeout of {float(timeout):.1f}s"
    if status == 0:
        return None
    stdout = b"".join(chunks[out_r]).decode(errors="replace")
    stderr = b"".join(chunks[err_r]).decode(errors="replace")
    return f"{exit_text(status)}, stdout: {stdout}, stderr: {stderr}"


def exit_text(status: int) -> str:
    """A wait status as Go's ``ProcessState.String`` prints it ("exit status 1", "signal: killed")."""
    if os.WIFEXITED(status):
        return f"exit status {os.WEXITSTATUS(status)}"
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        name = _signal.strsignal(sig) or f"signal {sig}"
        text = "signal: " + name[:1].lower() + name[1:]
        return text + " (core dumped)" if os.WCOREDUMP(status) else text
    return f"wait status {status}"

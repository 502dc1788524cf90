"""The OCI runtime's command line (bock by default, or --runtime PATH such as runc)."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from typing import Any

import attrs

from . import _proc
from .errors import RuntimeFailure


def default_runtime() -> str:
    return os.environ.get("BOCKROSE_RUNTIME") or shutil.which("bock") or "bock"


@attrs.frozen
class Runtime:
    path: str
    root: str

    @property
    def name(self) -> str:
        return os.path.basename(self.path)

    def _argv(self, *args: str) -> list[str]:
        return [self.path, "--root", self.root, *args]

    def call(self, *args: str, check: bool = True, **kw: Any) -> tuple[int, bytes, bytes]:
        try:
            rc, out, err = _proc.run(self._argv(*args), **kw)
        except FileNotFoundError:
            raise RuntimeFailure(f"runtime {self.path!r} not found") from None
        if check and rc != 0:
            msg = (err or out).decode(errors="replace").strip().splitlines()
            raise RuntimeFailure(f"{self.name} {args[0]} failed (exit {rc}): {msg[-1] if msg else ''}")
        return rc, out, err

    def run_detached(
        self,
        cid: str,
        bundle: str,
        pid_file: str,
        stdout: int,
        stderr: int,
        console_socket: str | None = None,
    ) -> None:
        """`run --detach`: create and start in one runtime process (half the process spawns)."""
        console = ["--console-socket", console_socket] if console_socket else []
        rc, _out, _err = self.call(
            "run",
            "--detach",
            "--bundle",
            bundle,
            "--pid-file",
            pid_file,
            *console,
            cid,
            check=False,
            stdout=stdout,
            stderr=stderr,
        )
        if rc != 0:
            raise RuntimeFailure(f"{self.name} run {cid} failed (exit {rc}); see the container's log")

    def kill(self, cid: str, sig: str) -> None:
        self.call("kill", cid, sig, check=False)

    def delete(self, cid: str) -> None:
        self.call("delete", "--force", cid, check=False)

    def state(self, cid: str) -> dict[str, Any] | None:
        rc, out, _ = self.call("state", cid, check=False)
        if rc != 0:
            return None
        try:
            return json.loads(out)
        except ValueError:
            return None

    def pause(self, cid: str) -> None:
        self._optional("pause", cid)

    def resume(self, cid: str) -> None:
        self._optional("resume", cid)

    def _optional(self, sub: str, *args: str) -> tuple[int, bytes, bytes]:
        rc, out, err = self.call(sub, *args, check=False)
        if rc != 0:
            text = (err or out).decode(errors="replace")
            if _unknown_command(text, sub):
                raise RuntimeFailure(f"the runtime {self.path} has no `{sub}` command")
            raise RuntimeFailure(f"{self.name} {sub} failed (exit {rc}): {text.strip()}")
        return rc, out, err

    def supports(self, sub: str) -> bool:
        rc, out, err = self.call(sub, "--help", check=False)
        return rc == 0 and not _unknown_command((out + err).decode(errors="replace"), sub)

    def exec_argv(
        self,
        cid: str,
        cmd: Sequence[str],
        *,
        tty: bool = False,
        detach: bool = False,
        env: Sequence[str] = (),
        user: str | None = None,
        cwd: str | None = None,
    ) -> list[str]:
        args = ["exec"]
        if tty:
            args.append("--tty")
        if detach:
            args.append("--detach")
        for e in env:
            args += ["--env", e]
        if user:
            args += ["--user", user]
        if cwd:
            args += ["--cwd", cwd]
        return self._argv(*args, cid, *cmd)


def _unknown_command(text: str, sub: str) -> bool:
    t = text.lower()
    return (
        "no help topic" in t
        or "unknown command" in t
        or f"invalid choice: '{sub}'" in t
        or "no such command" in t
        or f"'{sub}' is not a" in t
    )

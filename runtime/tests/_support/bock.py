"""Run the ``bock`` binary in tests: a per-test ``--root``, recorded ids, cleanup."""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Sequence

from _support.cgroups import find_named, remove_tree
from _support.mounts import mounts_under, unmount_all_under

_VALID_ID = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_+.-")


def find_binary() -> str | None:
    """``$BOCK_BINARY``; else the ``bock`` installed in the venv running the tests (tox, or
    ``venv/bin/python -m pytest``: the copy that matches these tests, even when another
    ``bock`` comes first on PATH); else ``bock`` on PATH."""
    if os.environ.get("BOCK_BINARY"):
        return os.environ["BOCK_BINARY"]
    beside = os.path.join(os.path.dirname(sys.executable), "bock")
    if sys.prefix != sys.base_prefix and os.access(beside, os.X_OK):
        return beside
    return shutil.which("bock")


@functools.cache
def binary_has(module: str) -> bool:
    """Whether the bock under test ships ``module`` (asked of the binary's own interpreter:
    the ``bock`` importable here may be another checkout)."""
    binary = find_binary()
    if not binary:
        return False
    with open(binary, "rb") as f:
        first = f.readline()
    interp = first[2:].split()[0].decode() if first.startswith(b"#!") else sys.executable
    code = (
        "import importlib.util, sys\n"
        "try:\n"
        f"    sys.exit(0 if importlib.util.find_spec({module!r}) else 1)\n"
        "except ModuleNotFoundError:\n"
        "    sys.exit(1)\n"
    )
    return subprocess.run([interp, "-c", code], capture_output=True, cwd="/").returncode == 0


def new_id() -> str:
    return f"t-{uuid.uuid4().hex[:12]}"


class Result:
    """What one ``bock`` call did: exit code, stdout and stderr as text."""

    def __init__(self, args: list[str], rc: int, out: str, err: str) -> None:
        self.args = args
        self.rc = rc
        self.out = out
        self.err = err

    def __repr__(self) -> str:
        return f"Result(rc={self.rc}, args={self.args!r}, out={self.out[-2000:]!r}, err={self.err[-2000:]!r})"

    def ok(self) -> Result:
        assert self.rc == 0, repr(self)
        return self

    def failed(self) -> Result:
        assert self.rc != 0, repr(self)
        return self


class Runtime:
    """``bock --root <per-test dir> ...``; every container id it hands out or creates is
    deleted with ``delete --force`` at teardown."""

    def __init__(self, binary: str, root: str, watch: list[str]) -> None:
        self.binary = binary
        self.root = root
        self.watch = watch  # directories that must hold no mount after the test
        self.remove_after: list[str] = []  # removed by the fixture after cleanup()
        self.ids: list[str] = []

    def new_id(self) -> str:
        cid = new_id()
        self.ids.append(cid)
        return cid

    def raw(
        self,
        args: Sequence[str],
        *,
        timeout: float = 60,
        input: str | None = None,
        stdin=None,
        stdout=None,
        stderr=None,
        pass_fds: Sequence[int] = (),
        env: dict | None = None,
        cwd: str | None = None,
        fd_map: dict[int, int] | None = None,
    ) -> Result:
        """Run ``bock ARGS`` (no implicit --root). stdout/stderr default to pipes.

        ``fd_map`` {target: source}: in the child only, dup2 ``source`` onto ``target`` and
        keep it open (never dup2 onto low fds in the test process: xdist owns some)."""
        argv = [self.binary, *args]
        preexec = None
        if fd_map:
            pass_fds = (*pass_fds, *fd_map)

            def preexec() -> None:
                for target, source in fd_map.items():
                    os.dup2(source, target)  # inheritable

        proc = subprocess.run(
            argv,
            input=input,
            stdin=stdin if input is None else None,
            stdout=subprocess.PIPE if stdout is None else stdout,
            stderr=subprocess.PIPE if stderr is None else stderr,
            timeout=timeout,
            pass_fds=tuple(pass_fds),
            env=env,
            cwd=cwd,
            text=True,
            close_fds=True,
            preexec_fn=preexec,
        )
        return Result(argv, proc.returncode, proc.stdout or "", proc.stderr or "")

    def __call__(self, *args: str, **kw) -> Result:
        """``bock --root R ARGS``."""
        if ("create" in args or "run" in args) and args:
            last = args[-1]
            if (
                _VALID_ID.issuperset(last)
                and last not in (".", "..")
                and len(last) <= 1024
                and last not in self.ids
            ):
                self.ids.append(last)  # teardown deletes it
        return self.raw(["--root", self.root, *args], **kw)

    # -- the lifecycle in one call each -------------------------------------------------
    def create(self, bundle, cid: str | None = None, *flags: str, **kw) -> str:
        """``create`` with the container's stdio on files in the bundle (a pipe would
        keep a capturing caller waiting until the container exits)."""
        cid = cid or self.new_id()
        if "stdout" not in kw:
            with open(bundle.out_path, "ab") as out:
                self(
                    "create",
                    "--bundle",
                    bundle.path,
                    *flags,
                    cid,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=out,
                    **kw,
                ).ok()
        else:
            self("create", "--bundle", bundle.path, *flags, cid, **kw).ok()
        return cid

    def popen(self, *args: str, **kw) -> subprocess.Popen:
        """``bock --root R ARGS`` in the background (stdio: /dev/null in, pipes out)."""
        if ("create" in args or "run" in args) and args[-1] not in self.ids:
            self.ids.append(args[-1])
        kw.setdefault("stdin", subprocess.DEVNULL)
        kw.setdefault("stdout", subprocess.PIPE)
        kw.setdefault("stderr", subprocess.PIPE)
        return subprocess.Popen([self.binary, "--root", self.root, *args], **kw)

    def create_fails(self, bundle, *flags: str, **kw) -> Result:
        """``create`` that must fail with exit code 1 and leave no state directory behind."""
        cid = new_id()
        res = self("create", "--bundle", bundle.path, *flags, cid, stdin=subprocess.DEVNULL, **kw)
        assert res.rc == 1, res
        assert res.out == "", res
        assert not os.path.exists(os.path.join(self.root, cid)), f"create left {cid} behind"
        return res

    def start(self, cid: str) -> Result:
        return self("start", cid).ok()

    def state(self, cid: str) -> dict:
        res = self("state", cid).ok()
        return json.loads(res.out)

    def status(self, cid: str) -> str:
        return self.state(cid)["status"]

    def run(self, bundle, cid: str | None = None, *flags: str, **kw) -> Result:
        cid = cid or self.new_id()
        return self("run", "--bundle", bundle.path, *flags, cid, stdin=subprocess.DEVNULL, **kw)

    def _kill_strays(self) -> list[str]:
        """SIGKILL bock processes (a create, or an init still waiting) that name this test's
        state directory on their command line: a failed create must not leave them."""
        needle = os.fsencode(self.root)
        found = []
        for name in os.listdir("/proc"):
            if not name.isdigit() or int(name) == os.getpid():
                continue
            try:
                with open(f"/proc/{name}/cmdline", "rb") as f:
                    cmdline = f.read()
            except OSError:
                continue
            if needle in cmdline:
                try:
                    os.kill(int(name), 9)
                except ProcessLookupError:
                    continue
                text = cmdline.replace(b"\0", b" ").decode(errors="replace")
                found.append(f"{name}: {text[:200]}")
        return found

    def cleanup(self) -> list[str]:
        """Force-delete every recorded container; unmount leftovers. Returns the leftover
        mounts (which the fixture reports as a failure)."""
        problems = []
        for cid in self.ids:
            try:
                res = self.raw(["--root", self.root, "delete", "--force", cid], timeout=30)
                if res.rc != 0:
                    problems.append(f"delete --force {cid}: {res.err.strip()}")
            except subprocess.TimeoutExpired:
                problems.append(f"delete --force {cid}: timed out")
        stray = self._kill_strays()
        if stray:
            problems.append(f"processes left behind (killed): {stray}")
        cgroups = self._remove_default_cgroups()
        if cgroups:
            problems.append(f"cgroups left behind (removed): {cgroups}")
        leftover = mounts_under(self.watch)
        if leftover:
            unmount_all_under(self.watch)
            problems.append(f"mounts left behind: {leftover}")
        return problems

    def _remove_default_cgroups(self) -> list[str]:
        """rmdir the default cgroup (named by the id, in every hierarchy) of each recorded
        container that is still there, once the killed processes have left it."""
        found = []
        for cid in self.ids:
            for path in find_named(cid):
                found.append(path)
                remove_tree(path, wait=5)
        return found

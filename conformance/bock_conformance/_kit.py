"""The per-case workspace: bundles, runtime invocations, observations and a cleanup that always runs.

A :class:`Kit` belongs to one case and one runtime. It owns a private temporary directory (bundles and
the runtime's ``--root``), the container IDs and cgroup paths it handed out, and the list of
observations (exit codes, state documents, what the container printed, host files) that the differential
mode compares between two runtimes. :meth:`Kit.close` removes everything, even after a failure.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from bock_conformance import _host
from bock_conformance._config import default_config
from bock_conformance._rootfs import build_rootfs

VOLATILE_STATE_KEYS = ("pid", "created")
# Values that differ from run to run whatever the runtime: namespace inodes, mount and peer-group IDs.
_VOLATILE = [
    (
        re.compile(r"\b(cgroup|ipc|mnt|net|pid|time|user|uts|pid_for_children|time_for_children):\[\d+\]"),
        r"\1:[<INO>]",
    ),
    (re.compile(r"(?m)^\d+ \d+ \d+:\d+ "), "<MNT> <MNT> <DEV> "),
    (re.compile(r"\b(shared|master|propagate_from):\d+"), r"\1:<N>"),
]
MNT_DETACH = 2
_libc = ctypes.CDLL(None, use_errno=True)


@dataclass
class Result:
    """One finished runtime invocation."""

    argv: list[str]
    rc: int
    out: str
    err: str

    def __str__(self) -> str:
        return f"{' '.join(self.argv)} -> rc={self.rc}\nstdout: {self.out!r}\nstderr: {self.err!r}"

    def expect_ok(self) -> Result:
        assert self.rc == 0, f"runtime call failed: {self}"
        return self

    def expect_fail(self) -> Result:
        assert self.rc != 0, f"runtime call should have failed: {self}"
        return self


@dataclass
class Container:
    """A container made by :meth:`Kit.create`; every call goes through the owning kit."""

    kit: Kit
    id: str
    bundle: Path
    config: dict[str, Any]
    pid_file: Path | None = None
    create_result: Result | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def out_path(self) -> Path:
        safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in self.id) or "empty"
        return self.kit.dir / f"ctr-{safe}.out"

    def output(self) -> str:
        """What the container process wrote to its stdout (a host file)."""
        return self.out_path.read_text(errors="replace") if self.out_path.exists() else ""

    def state(self, record: bool = True) -> dict[str, Any]:
        res = self.kit.cli("state", self.id, record=record)
        assert res.rc == 0, f"state failed: {res}"
        doc = json.loads(res.out)
        if record:
            self.kit.observe("state", {k: v for k, v in doc.items() if k not in VOLATILE_STATE_KEYS})
        return doc

    def status(self) -> str | None:
        res = self.kit.cli("state", self.id, record=False)
        if res.rc != 0:
            return None
        return json.loads(res.out).get("status")

    @property
    def pid(self) -> int:
        return int(self.state(record=False)["pid"])

    def start(self) -> Result:
        return self.kit.cli("start", self.id)

    def kill(self, sig: str = "KILL", *flags: str) -> Result:
        return self.kit.cli("kill", *flags, self.id, sig)

    def delete(self, *flags: str) -> Result:
        return self.kit.cli("delete", *flags, self.id)

    def exec(self, args: list[str], *flags: str, timeout: float = 30) -> Result:
        res = self.kit.cli("exec", *flags, self.id, *args, timeout=timeout)
        self.kit.observe("exec-out", res.out)
        return res

    def wait_status(self, want: str, timeout: float = 10.0) -> str | None:
        """Poll ``state`` until the status is *want* (or the container is gone); return the last status."""
        deadline = time.monotonic() + timeout
        status = self.status()
        while status != want and time.monotonic() < deadline:
            time.sleep(0.05)
            status = self.status()
        return status

    def wait_output(self, needle: str, timeout: float = 10.0) -> str:
        deadline = time.monotonic() + timeout
        out = self.output()
        while needle not in out and time.monotonic() < deadline:
            time.sleep(0.05)
            out = self.output()
        return out


class Kit:
    """Everything one case needs to drive one runtime, and to clean up after it."""

    def __init__(self, runtime: str, label: str = "primary") -> None:
        self.runtime = runtime
        self.label = label
        self.dir = Path(tempfile.mkdtemp(prefix="bock-conf-"))
        os.chmod(self.dir, 0o755)
        self.root = self.dir / "state"
        self.ids: list[str] = []
        self.cgroups: list[str] = []
        self.observations: list[tuple[str, Any]] = []
        self._cleanups: list[Any] = []
        self._nbundles = 0
        self._nfresh = 0

    # -- names -----------------------------------------------------------------------------------
    def new_id(self) -> str:
        cid = f"bc-{uuid.uuid4().hex[:12]}"
        self.ids.append(cid)
        return cid

    def new_cgroup(self) -> str:
        path = f"/bock-conf-{uuid.uuid4().hex[:12]}"
        self.cgroups.append(path)
        return path

    def path(self, name: str) -> Path:
        """A path inside the kit's private directory."""
        return self.dir / name

    def fresh(self, stem: str, suffix: str = "") -> Path:
        """A new, unused path ``stem-N suffix`` in the kit's directory (the same N on every runtime)."""
        self._nfresh += 1
        return self.dir / f"{stem}-{self._nfresh}{suffix}"

    # -- observations ----------------------------------------------------------------------------
    def normalize(self, value: Any) -> Any:
        if isinstance(value, str):
            text = value.replace(str(self.dir), "<W>").replace(self.runtime, "<RT>")
            for n, cid in enumerate(self.ids):
                text = text.replace(cid, f"<ID{n}>")
            for n, cg in enumerate(self.cgroups):
                text = text.replace(cg.lstrip("/"), f"<CG{n}>")
            for pattern, repl in _VOLATILE:
                text = pattern.sub(repl, text)
            return text
        if isinstance(value, dict):
            return {k: self.normalize(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.normalize(v) for v in value]
        return value

    def observe(self, kind: str, value: Any) -> Any:
        """Record an observable result for the differential mode; returns *value* unchanged."""
        self.observations.append((kind, self.normalize(value)))
        return value

    def host_read(self, path: str | Path) -> str | None:
        """Read a host file (None when missing) and record it as an observation."""
        try:
            text = Path(path).read_text()
        except OSError:
            text = None
        self.observe(f"host:{self.normalize(str(path))}", text)
        return text

    # -- bundles ---------------------------------------------------------------------------------
    def config(self, script: str | None = None, args: list[str] | None = None) -> dict[str, Any]:
        """The default config running ``sh -c script`` (or *args*), with a unique cgroupsPath."""
        if args is None:
            args = ["sh", "-c", script if script is not None else "true"]
        return default_config(args, self.new_cgroup())

    def bundle(self, config: dict[str, Any] | None = None, rootfs: bool = True) -> Path:
        self._nbundles += 1
        bdir = self.dir / f"bundle{self._nbundles}"
        bdir.mkdir()
        if rootfs:
            build_rootfs(bdir / "rootfs")
        if config is not None:
            self.write_config(bdir, config)
        return bdir

    @staticmethod
    def write_config(bundle: Path, config: dict[str, Any]) -> None:
        (bundle / "config.json").write_text(json.dumps(config, indent=2))

    # -- runtime calls ---------------------------------------------------------------------------
    def argv(self, *args: str, global_args: list[str] | None = None) -> list[str]:
        globs = ["--root", str(self.root)] if global_args is None else list(global_args)
        return [self.runtime, *globs, *args]

    def cli(
        self,
        *args: str | Path,
        global_args: list[str] | None = None,
        stdin: str | None = None,
        timeout: float = 60,
        record: bool = True,
        pass_fds: tuple[int, ...] = (),
        cwd: Path | None = None,
        stdout_file: Path | None = None,
        env: dict[str, str] | None = None,
    ) -> Result:
        """Run the runtime with ``--root <private>`` (or *global_args*) and capture its output."""
        argv = self.argv(*map(str, args), global_args=global_args)
        if stdout_file is not None:
            with open(stdout_file, "ab") as out, open(stdout_file.with_suffix(".err"), "ab") as err:
                proc = subprocess.run(
                    argv,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=err,
                    timeout=timeout,
                    pass_fds=pass_fds,
                    cwd=cwd,
                    env=env,
                )
            res = Result(
                argv, proc.returncode, "", stdout_file.with_suffix(".err").read_text(errors="replace")
            )
        else:
            proc = subprocess.run(
                argv,
                input=stdin.encode() if stdin is not None else None,
                stdin=None if stdin is not None else subprocess.DEVNULL,
                capture_output=True,
                timeout=timeout,
                pass_fds=pass_fds,
                cwd=cwd,
                env=env,
            )
            res = Result(
                argv,
                proc.returncode,
                proc.stdout.decode(errors="replace"),
                proc.stderr.decode(errors="replace"),
            )
        if record:
            self.observe("rc", [self.normalize(" ".join(_shape(argv[1:]))), res.rc])
        return res

    def run(
        self, config: dict[str, Any], timeout: float = 60, bundle: Path | None = None, record: bool = True
    ) -> Result:
        """``run --bundle B ID`` in the foreground; records the exit code and what the process printed."""
        bdir = bundle if bundle is not None else self.bundle(config)
        if bundle is not None:
            self.write_config(bdir, config)
        cid = self.new_id()
        res = self.cli("run", "--bundle", bdir, cid, timeout=timeout, record=record)
        if record:
            self.observe("out", res.out)
        return res

    def sh(self, script: str, mutate: Any = None, timeout: float = 60) -> Result:
        """Run ``sh -c script`` with the default config, after ``mutate(config)`` if given."""
        cfg = self.config(script)
        if mutate is not None:
            mutate(cfg)
        return self.run(cfg, timeout=timeout)

    def try_create(
        self,
        config: dict[str, Any],
        *flags: str,
        bundle: Path | None = None,
        pid_file: bool = True,
        cid: str | None = None,
        pass_fds: tuple[int, ...] = (),
        timeout: float = 60,
    ) -> tuple[Container, Result]:
        bdir = bundle if bundle is not None else self.bundle(config)
        if bundle is not None:
            self.write_config(bdir, config)
        cid = self.new_id() if cid is None else cid
        ctr = Container(self, cid, bdir, config)
        args: list[str] = ["create", "--bundle", str(bdir)]
        if pid_file:
            ctr.pid_file = ctr.out_path.with_suffix(".pid")
            args += ["--pid-file", str(ctr.pid_file)]
        args += [*flags, cid]
        res = self.cli(*args, stdout_file=ctr.out_path, pass_fds=pass_fds, timeout=timeout)
        ctr.create_result = res
        return ctr, res

    def create(self, config: dict[str, Any], *flags: str, **kw: Any) -> Container:
        """``create``; asserts success (a failed create is a failed case)."""
        ctr, res = self.try_create(config, *flags, **kw)
        assert res.rc == 0, f"create failed: {res}"
        return ctr

    def started(self, script: str, mutate: Any = None) -> Container:
        """A running container executing *script* (create + start)."""
        cfg = self.config(script)
        if mutate is not None:
            mutate(cfg)
        ctr = self.create(cfg)
        ctr.start().expect_ok()
        return ctr

    def console_socket(self) -> Any:
        """A listening console socket in the kit's directory (closed at cleanup)."""
        from bock_conformance._console import ConsoleSocket

        sock = ConsoleSocket(self.fresh("console", ".sock"))
        self.on_cleanup(sock.close)
        return sock

    def on_cleanup(self, fn: Any) -> None:
        self._cleanups.append(fn)

    def spawn(self, argv: list[str], **kw: Any) -> subprocess.Popen[bytes]:
        """A host helper process that is killed at cleanup."""
        proc = subprocess.Popen(argv, start_new_session=True, **kw)

        def _stop() -> None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)

        self.on_cleanup(_stop)
        return proc

    # -- skips -----------------------------------------------------------------------------------
    @staticmethod
    def skip_host(reason: str) -> None:
        pytest.skip(f"host: {reason}")

    def require_subcommand(self, name: str) -> None:
        """Skip when the runtime does not have subcommand *name* at all."""
        res = self.cli(name, "--help", record=False)
        text = (res.out + res.err).lower()
        if res.rc != 0 and ("no help topic" in text or "unknown" in text or "not found" in text):
            pytest.skip(f"runtime lacks the `{name}` subcommand")

    # -- cleanup ---------------------------------------------------------------------------------
    def close(self) -> None:
        for cid in reversed(self.ids):
            with contextlib.suppress(Exception):
                self.cli("delete", "--force", cid, record=False, timeout=20)
        for fn in reversed(self._cleanups):
            with contextlib.suppress(Exception):
                fn()
        _unmount_under(self.dir)
        for cg in self.cgroups:
            remove_cgroup(cg)
        subprocess.run(["rm", "-rf", "--one-file-system", str(self.dir)], check=False)
        if self.dir.exists():  # something still mounted: detach and retry once
            _unmount_under(self.dir)
            subprocess.run(["rm", "-rf", "--one-file-system", str(self.dir)], check=False)


def _shape(argv: list[str]) -> list[str]:
    """An argv without the --root value, for observation keys."""
    out: list[str] = []
    skip = False
    for a in argv:
        if skip:
            skip = False
            continue
        if a == "--root":
            skip = True
            continue
        if a.startswith("--root="):
            continue
        out.append(a)
    return out


def _unescape(path: str) -> str:
    return path.encode().decode("unicode_escape") if "\\" in path else path


def _unmount_under(base: Path) -> None:
    prefix = str(base)
    points = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        mnt = _unescape(line.split()[4])
        if mnt == prefix or mnt.startswith(prefix + "/"):
            points.append(mnt)
    for mnt in sorted(points, key=len, reverse=True):
        _libc.umount2(mnt.encode(), MNT_DETACH)


def remove_cgroup(cgroups_path: str) -> None:
    """Kill what is left in *cgroups_path* in every hierarchy and remove it (children first)."""
    for ctrl in list(_host.cgroup_mounts()):
        base = _host.v2_dir(cgroups_path) if ctrl == "unified" else _host.v1_dir(ctrl, cgroups_path)
        if base is None or not base.exists():
            continue
        dirs = sorted((p for p in base.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True)
        for d in [*dirs, base]:
            for _ in range(50):
                with contextlib.suppress(OSError):
                    for pid in (d / "cgroup.procs").read_text().split():
                        with contextlib.suppress(ProcessLookupError):
                            os.kill(int(pid), signal.SIGKILL)
                try:
                    d.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    if ctrl == "freezer":
                        with contextlib.suppress(OSError):
                            (d / "freezer.state").write_text("THAWED")
                    time.sleep(0.02)


def which_runtime(path: str) -> str:
    """Resolve *path* (a name on PATH or a path) to an absolute runtime binary path."""
    found = shutil.which(path) if "/" not in path else path
    if not found or not os.access(found, os.X_OK):
        from bock_conformance._errors import UsageError

        raise UsageError(f"runtime binary not found or not executable: {path}")
    return os.path.abspath(found)

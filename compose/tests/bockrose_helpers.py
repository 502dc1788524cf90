"""Helpers for bockrose's tests: `Compose`, a project in a temp dir with a unique name and state root, torn down (down -v, then
any leftover netns, bridge, nft table, monitor) even when the test fails."""

from __future__ import annotations

import json
import os
import pathlib
import signal
import socket
import subprocess
import sys
import time
import uuid

REPO = pathlib.Path(__file__).resolve().parents[2]
for sub in ("compose", "image", "runtime"):
    if str(REPO / sub) not in sys.path:
        sys.path.insert(0, str(REPO / sub))

from bockrose import _console, _nat, _network  # noqa: E402
from bockrose._state import load_state, pid_alive  # noqa: E402

RUNC = "/usr/sbin/runc"


def is_root() -> bool:
    return os.geteuid() == 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def host_snapshot() -> dict[str, object]:
    """What bockrose may create on the host: links, netns, nft tables, mounts, cgroups, monitors."""
    from pyroute2 import IPRoute

    with IPRoute() as ip:
        links = sorted(x.get_attr("IFLA_IFNAME") for x in ip.get_links())
    nft = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True).stdout.split("\n")
    with open("/proc/self/mountinfo") as f:
        mounts = sorted(line.split()[4] for line in f)
    cgroups = []
    for base in ("/sys/fs/cgroup/memory", "/sys/fs/cgroup/pids", "/sys/fs/cgroup/unified", "/sys/fs/cgroup"):
        if os.path.isdir(base):
            cgroups += [f"{base}/{d}" for d in os.listdir(base) if d.startswith("bockrose-")]
    netns = sorted(os.listdir("/run/netns")) if os.path.isdir("/run/netns") else []
    procs = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    if b"bockrose._monitor" in f.read():
                        procs.append(int(pid))
            except OSError:
                pass
    return {
        "links": links,
        "nft": sorted(nft),
        "mounts": mounts,
        "cgroups": sorted(cgroups),
        "netns": netns,
        "monitors": sorted(procs),
    }


class Compose:
    """One project: write(text), run(*args) -> CompletedProcess, state(), and cleanup()."""

    def __init__(self, tmp: pathlib.Path, image_root: str, runtime: str | None = None) -> None:
        self.dir = tmp / "proj"
        self.dir.mkdir(parents=True)
        self.root = str(tmp / "state")
        self.name = "t-" + uuid.uuid4().hex[:12]
        self.image_root = image_root
        self.runtime = runtime
        self.env = dict(os.environ)
        self.env.update(
            {
                "BOCK_IMAGE_ROOT": image_root,
                "BOCKROSE_ROOT": self.root,
                "PYTHONPATH": os.pathsep.join(
                    str(REPO / s) for s in ("compose", "image", "runtime", "build")
                ),
            }
        )
        self.env.pop("COMPOSE_PROJECT_NAME", None)
        tools = os.path.dirname(sys.executable)  # bock-image / bock-build of this environment
        if os.access(os.path.join(tools, "bock-build"), os.X_OK):
            self.env["PATH"] = tools + os.pathsep + self.env.get("PATH", "")
        self.file = self.dir / "compose.yaml"

    def write(self, text: str, name: str = "compose.yaml") -> pathlib.Path:
        path = self.dir / name
        path.write_text(text)
        return path

    def argv(self, *args: str) -> list[str]:
        pre = [sys.executable, "-m", "bockrose.cli", "-f", str(self.file), "-p", self.name]
        if self.runtime:
            pre += ["--runtime", self.runtime]
        return pre + list(args)

    def run(self, *args: str, check: bool = True, timeout: float = 120, input: str | None = None):
        p = subprocess.run(
            self.argv(*args),
            capture_output=True,
            text=True,
            env=self.env,
            cwd=self.dir,
            timeout=timeout,
            input=input,
        )
        if check and p.returncode != 0:
            raise AssertionError(
                f"bockrose {' '.join(args)} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}"
            )
        return p

    def state(self):
        return load_state(self.root, self.name)

    def exec(self, service: str, *cmd: str, check: bool = True):
        return self.run("exec", "-T", service, *cmd, check=check)

    def wait_for(self, pred, timeout: float = 30, interval: float = 0.2, what: str = "condition"):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            v = pred()
            if v:
                return v
            time.sleep(interval)
        raise AssertionError(f"timed out after {timeout}s waiting for {what}")

    def cleanup(self) -> None:
        st = self.state()
        try:
            if st is not None:
                self.run("down", "-v", "-t", "0", check=False, timeout=120)
        finally:
            st2 = self.state() or st
            if st2 is not None:
                if pid_alive(st2.monitor_pid):
                    os.kill(st2.monitor_pid, signal.SIGKILL)
                for c in st2.containers.values():
                    if c.pid and pid_alive(c.pid):
                        os.kill(c.pid, signal.SIGKILL)
                    _console.stop_holder(c.console_holder)  # tty: true
                    if c.netns:
                        _network.remove_netns(c.netns)
                for n in st2.networks.values():
                    if not n.external:
                        _network.delete_link(n.bridge)
                try:
                    _nat.remove(st2.key)
                except Exception:
                    pass
                rt = st2.runtime_root
                for c in st2.containers.values():
                    subprocess.run([st2.runtime, "--root", rt, "delete", "-f", c.name], capture_output=True)
                    bundle = os.path.join(
                        self.root, "projects", self.name, "containers", c.name, "bundle", "rootfs"
                    )
                    if os.path.ismount(bundle):
                        subprocess.run(["umount", "-l", bundle], capture_output=True)
            subprocess.run(["rm", "-rf", "--one-file-system", self.root], capture_output=True)


def ps_json(c: Compose, *extra: str) -> list[dict]:
    out = c.run("ps", "--format", "json", *extra).stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]

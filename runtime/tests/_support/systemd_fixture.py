"""A real systemd (the host's /lib/systemd/systemd) as PID 1 of private namespaces, for tests.

The host needs no running systemd: the package's binary is booted in new pid, mount, uts,
ipc, net and cgroup namespaces, in fresh cgroups ``bock-sd-<hex>`` of every hierarchy (the
cgroup namespace's root, so systemd sees its own cgroup as ``/``). Its root is a tmpfs with
the host's /usr and /etc read-only, fresh /proc and /sys, every cgroup hierarchy mounted anew
on a tmpfs /sys/fs/cgroup (the host's v1/hybrid/v2 layout as it is), tmpfs /dev (a few nodes
bound), /run, /tmp and /var, and the directories the tests need bound at their own paths
(the venv, the checkout, the test's tmp_path). It boots an empty target of its own
(``bock-fixture.target`` in /run/systemd/system), so nothing else starts.

``run(argv)`` runs a command inside (``nsenter --all``): systemctl and bock reach systemd on
its private socket /run/systemd/private. ``stop()`` SIGKILLs systemd (PID 1: the whole pid
namespace dies, mounts go with the mount namespace) and removes the cgroups bottom-up.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid

SYSTEMD = "/lib/systemd/systemd"

_BOOT = r"""
set -eu
R=$1; shift
mount -t tmpfs -o mode=755 tmpfs "$R"
cd "$R"
ln -s usr/bin bin; ln -s usr/lib lib; ln -s usr/lib64 lib64; ln -s usr/sbin sbin
mkdir -p usr etc proc sys dev run tmp var root
mount --bind /usr usr; mount -o remount,bind,ro usr
mount --bind /etc etc; mount -o remount,bind,ro etc
mount -t proc proc proc
mount -t sysfs -o ro sysfs sys
mount -t tmpfs -o mode=755 tmpfs sys/fs/cgroup
for spec in $CGROUP_MOUNTS; do
  dir=${spec%%=*}; opts=${spec#*=}
  mkdir -p "sys/fs/cgroup/$dir"
  if [ "$opts" = cgroup2 ]; then mount -t cgroup2 cgroup2 "sys/fs/cgroup/$dir"
  else mount -t cgroup -o "$opts" cgroup "sys/fs/cgroup/$dir"; fi
done
mount -t tmpfs -o mode=755 tmpfs dev
for n in null zero full random urandom tty; do touch dev/$n; mount --bind /dev/$n dev/$n; done
mkdir dev/pts dev/shm; mount -t devpts -o newinstance,ptmxmode=666 devpts dev/pts; ln -s pts/ptmx dev/ptmx
mount -t tmpfs tmpfs dev/shm
mount -t tmpfs -o mode=755 tmpfs run
mount -t tmpfs -o mode=1777 tmpfs tmp
mount -t tmpfs -o mode=755 tmpfs var
ln -s ../run var/run
mkdir -m 1777 var/tmp
for p in "$@"; do
  mode=${p%%:*}; path=${p#*:}
  mkdir -p "$R$path"; mount --bind "$path" "$R$path"
  if [ "$mode" = ro ]; then mount -o remount,bind,ro "$R$path"; fi
done
mkdir -p run/systemd/system
printf '[Unit]\nDescription=bock test fixture\n' > run/systemd/system/bock-fixture.target
mkdir old
pivot_root . old
umount -l /old
rmdir /old
exec env -i container=bock PATH=/usr/sbin:/usr/bin "$SYSTEMD" --unit=bock-fixture.target
"""


def _cgroup_mounts() -> list[tuple[str, str, str]]:
    """(host mount point, name under /sys/fs/cgroup, mount options) of every hierarchy."""
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            head, _, tail = line.partition(" - ")
            fstype, _, rest = tail.partition(" ")
            if fstype not in ("cgroup", "cgroup2"):
                continue
            mountpoint = head.split(" ")[4]
            if any(m == mountpoint for m, _, _ in out):
                continue
            if fstype == "cgroup2":
                opts = "cgroup2"
            else:
                superopts = rest.split(" ")[1].split(",")
                opts = ",".join(o for o in superopts if o not in ("rw", "ro"))
            name = os.path.relpath(mountpoint, "/sys/fs/cgroup") if mountpoint != "/sys/fs/cgroup" else "."
            out.append((mountpoint, name, opts))
    return out


def _rmdir_tree(path: str) -> list[str]:
    """rmdir ``path`` bottom-up (cgroup directories); what could not be removed."""
    left = []
    for dirpath, _dirs, _files in os.walk(path, topdown=False):
        for attempt in range(50):
            try:
                os.rmdir(dirpath)
                break
            except FileNotFoundError:
                break
            except OSError:
                if attempt == 49:
                    left.append(dirpath)
                time.sleep(0.05)
    return left


class SystemdFixture:
    def __init__(self, binds_rw=(), binds_ro=(), *, unified_only: bool = False) -> None:
        self.name = f"bock-sd-{uuid.uuid4().hex[:12]}"
        #: show systemd only the cgroup2 hierarchy, at /sys/fs/cgroup (a v2 host for it)
        self.unified_only = unified_only
        self.binds = [f"rw:{p}" for p in binds_rw] + [f"ro:{p}" for p in binds_ro]
        self.proc: subprocess.Popen | None = None
        self.pid = 0  # systemd's pid, seen from the host
        self.cgroups: list[str] = []
        self.rootdir = ""
        self.log = ""

    # --- life ------------------------------------------------------------------------

    def start(self, timeout: float = 20.0) -> SystemdFixture:
        try:
            self._start(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self, timeout: float) -> None:
        mounts = _cgroup_mounts()
        if not mounts:
            raise RuntimeError("no cgroup hierarchy is mounted")
        for mountpoint, _, _ in mounts:
            d = os.path.join(mountpoint, self.name)
            os.mkdir(d)
            self.cgroups.append(d)
            if os.path.exists(os.path.join(d, "cpuset.cpus")):
                for f in ("cpuset.cpus", "cpuset.mems"):
                    with open(os.path.join(mountpoint, f)) as src, open(os.path.join(d, f), "w") as dst:
                        dst.write(src.read())
        self.rootdir = tempfile.mkdtemp(prefix=self.name + "-")
        self.log = self.rootdir + ".log"
        procs = [os.path.join(d, "cgroup.procs") for d in self.cgroups]

        def enter_cgroups() -> None:
            for p in procs:
                with open(p, "w") as f:
                    f.write(str(os.getpid()))

        env = {
            "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
            "SYSTEMD": SYSTEMD,
            "CGROUP_MOUNTS": " ".join(
                f"{'.' if self.unified_only else name}={opts}"
                for _, name, opts in mounts
                if opts == "cgroup2" or not self.unified_only
            ),
        }
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                [
                    "unshare",
                    "--pid",
                    "--fork",
                    "--mount",
                    "--uts",
                    "--ipc",
                    "--net",
                    "--cgroup",
                    "--propagation",
                    "private",
                    "--kill-child",
                    "/bin/bash",
                    "-c",
                    _BOOT,
                    "boot",
                    self.rootdir,
                    *self.binds,
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                preexec_fn=enter_cgroups,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"systemd fixture exited with {self.proc.returncode}: {self._log_tail()}")
            if not self.pid:
                self.pid = self._child_pid()
                if self.pid:
                    self._move_out(self.proc.pid, mounts)
            if self.pid:
                r = self.run(["systemctl", "is-system-running"], check=False)
                if r.stdout.strip() in ("running", "degraded"):
                    return
            time.sleep(0.1)
        raise RuntimeError(f"systemd did not come up in {timeout}s: {self._log_tail()}")

    @staticmethod
    def _move_out(pid: int, mounts) -> None:
        """Put ``pid`` (unshare, outside the namespaces) back in our own cgroups: the fixture's
        cgroup is systemd's root, and on cgroup2 a process there would keep controllers from
        being enabled below it (no internal processes)."""
        own = {}
        with open("/proc/self/cgroup") as f:
            for line in f:
                _, ctrls, path = line.rstrip("\n").split(":", 2)
                for c in ctrls.split(",") if ctrls else [""]:
                    own[c] = path
        for mountpoint, _, opts in mounts:
            keys = [""] if opts == "cgroup2" else [o for o in opts.split(",") if o != "none"]
            path = next((own[k] for k in keys if k in own), None)
            if path is None:
                continue
            with open(os.path.join(mountpoint + path, "cgroup.procs"), "w") as f:
                f.write(str(pid))

    def _child_pid(self) -> int:
        try:
            with open(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children") as f:
                kids = f.read().split()
        except OSError:
            return 0
        for kid in kids:
            try:
                with open(f"/proc/{kid}/comm") as f:
                    if f.read().strip() == "systemd":
                        return int(kid)
            except OSError:
                continue
        return 0

    def _log_tail(self) -> str:
        try:
            with open(self.log, errors="replace") as f:
                return f.read()[-3000:]
        except OSError:
            return ""

    def stop(self) -> list[str]:
        """Kill everything, remove the cgroups and the root's mount point; what was left."""
        left: list[str] = []
        pid = self.pid or (self._child_pid() if self.proc else 0)
        if pid:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self.proc is not None:
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        for d in self.cgroups:
            left += _rmdir_tree(d)
        self.cgroups = []
        if self.rootdir:
            try:
                os.rmdir(self.rootdir)  # a mount point only inside the dead mount namespace
            except OSError:
                left.append(self.rootdir)
            if os.path.exists(self.log):
                os.unlink(self.log)
        return left

    # --- inside ----------------------------------------------------------------------

    def run(self, argv, *, check: bool = True, timeout: float = 60, **kw) -> subprocess.CompletedProcess:
        """``argv`` inside every namespace of the fixture (text output captured)."""
        kw.setdefault("stdin", subprocess.DEVNULL)
        kw.setdefault("capture_output", True)
        res = subprocess.run(
            ["nsenter", "-t", str(self.pid), "--all", "--", *argv], text=True, timeout=timeout, **kw
        )
        if check and res.returncode != 0:
            raise AssertionError(f"{argv} failed ({res.returncode}): {res.stdout}{res.stderr}")
        return res

    def wrapper(self, binary: str, where: str) -> str:
        """A script at ``where`` that runs ``binary`` inside the fixture (for ``Runtime``)."""
        with open(where, "w") as f:
            f.write(f'#!/bin/sh\nexec nsenter -t {self.pid} --all -- {binary} "$@"\n')
        os.chmod(where, 0o755)
        return where

    def show(self, unit: str, *props: str) -> dict[str, str]:
        """``systemctl show UNIT -p ...`` as a dict (a repeated property's values joined by "; ")."""
        argv = ["systemctl", "show", "--no-pager", unit]
        for p in props:
            argv += ["-p", p]
        out: dict[str, str] = {}
        for line in self.run(argv).stdout.splitlines():
            key, sep, value = line.partition("=")
            if sep:
                out[key] = f"{out[key]}; {value}" if key in out else value
        return out


def available() -> str:
    """Why the fixture cannot run here, or "" when it can."""
    if os.geteuid() != 0:
        return "needs root"
    if not os.access(SYSTEMD, os.X_OK):
        return f"{SYSTEMD} is not installed (Debian: apt-get install systemd)"
    for tool in ("unshare", "nsenter", "systemctl"):
        if not shutil.which(tool):
            return f"{tool} is missing"
    return ""

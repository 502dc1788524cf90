"""podman 4.3 + conmon (isolated root) driving runc and bock through ``--runtime``."""

from __future__ import annotations

import subprocess
import uuid

import pytest

pytestmark = pytest.mark.root
NONET = ("--network", "none")


@pytest.fixture(params=["seccomp", "unconfined"])
def pm(request, podman, busybox_image, runtime_path, require_seccomp):
    """podman with the runtime under test; containers named here are removed afterwards.

    podman always asks for a seccomp filter; the "unconfined" variant runs the same
    scenario without one (``--security-opt seccomp=unconfined``), for both runtimes."""
    names: list[str] = []
    if request.param == "seccomp":
        require_seccomp()

    def call(*args: str, check: bool = False, **kw):
        return podman(runtime_path, *args, check=check, **kw)

    def name() -> str:
        n = "t-" + uuid.uuid4().hex[:12]
        names.append(n)
        return n

    call.name = name
    call.image = busybox_image["name"]
    call.sec = ("--security-opt", "seccomp=unconfined") if request.param == "unconfined" else ()
    try:
        yield call
    finally:
        for n in names:
            podman(runtime_path, "rm", "-f", "-t", "0", n, check=False)


def test_run_rm(pm):
    out = pm("run", "--rm", *pm.sec, *NONET, pm.image, "sh", "-c", "echo hello-from-podman; exit 3")
    assert out.returncode == 3, out.stderr
    assert out.stdout == "hello-from-podman\n"


def test_run_detached_exec_stop_rm(pm):
    name = pm.name()
    out = pm("run", "-d", *pm.sec, *NONET, "--name", name, pm.image, "sleep", "100000")
    assert out.returncode == 0, out.stderr
    out = pm("exec", name, "sh", "-c", "echo from-exec; exit 5")
    assert (out.returncode, out.stdout) == (5, "from-exec\n"), out.stderr
    out = pm("exec", name, "/nonexistent")
    assert out.returncode == 127, out.stderr  # "no such file or directory" -> 127, as with runc
    out = pm("exec", "-d", name, "sleep", "1000")
    assert out.returncode == 0, out.stderr
    out = pm("stop", "-t", "2", name)
    assert out.returncode == 0, out.stderr
    assert "Exited" in pm("ps", "-a", "--filter", f"name={name}", "--format", "{{.Status}}").stdout
    out = pm("rm", name)
    assert out.returncode == 0, out.stderr


def test_cap_sys_ptrace_and_a_shared_pid_namespace(pm):
    """CAP_SYS_PTRACE: bock's init and exec helpers re-execute a sealed interpreter first
    (bock._init.exeseal); conmon's create/start/exec protocol must not notice."""
    name = pm.name()
    ptrace = ("--cap-add", "SYS_PTRACE")
    out = pm("run", "-d", *pm.sec, *NONET, *ptrace, "--name", name, pm.image, "sleep", "100000")
    assert out.returncode == 0, out.stderr
    out = pm("exec", name, "sh", "-c", "echo from-exec; grep CapEff /proc/self/status")
    assert out.returncode == 0 and out.stdout.startswith("from-exec\n"), out.stderr
    assert int(out.stdout.split()[-1], 16) & (1 << 19)  # CAP_SYS_PTRACE is bit 19
    out = pm(
        "run", "--rm", *pm.sec, *NONET, *ptrace, "--pid", f"container:{name}", pm.image,
        "sh", "-c", "readlink /proc/1/exe; cat /proc/1/comm",
    )  # fmt: skip
    assert (out.returncode, out.stdout) == (0, "/bin/busybox\nsleep\n"), out.stderr
    assert pm("rm", "-f", "-t", "0", name).returncode == 0


def test_tty(pm, podman, runtime_path):
    argv = podman.argv(
        runtime_path, "run", "--rm", "-t", *pm.sec, *NONET, pm.image, "sh", "-c", "tty; echo tty-ok"
    )
    env = " ".join(f"{k}={v}" for k, v in podman.env().items())
    cmd = "env -i " + env + " " + " ".join(argv)
    out = subprocess.run(
        ["script", "-qec", cmd, "/dev/null"],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "/dev/pts/0" in out.stdout and "tty-ok" in out.stdout


def test_missing_binary_exits_127(pm):
    out = pm("run", "--rm", *pm.sec, *NONET, pm.image, "/nonexistent")
    assert out.returncode == 127, out.stderr
    assert "no such file or directory" in out.stderr


def test_exec_tty_through_conmon(pm, podman, runtime_path):
    name = pm.name()
    out = pm("run", "-d", *pm.sec, *NONET, "--name", name, pm.image, "sleep", "100000")
    assert out.returncode == 0, out.stderr
    argv = podman.argv(runtime_path, "exec", "-it", name, "sh", "-c", "tty; exit 9")
    env = " ".join(f"{k}={v}" for k, v in podman.env().items())
    out = subprocess.run(
        ["script", "-qec", "env -i " + env + " " + " ".join(argv), "/dev/null"],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert out.returncode == 9, out.stdout + out.stderr
    assert "/dev/pts/" in out.stdout


def test_update_pause_unpause(pm):
    """podman's direct calls: ``update --resources=<file>``, ``pause``, ``resume``."""
    name = pm.name()
    out = pm("run", "-d", *pm.sec, *NONET, "--name", name, pm.image, "sleep", "100000")
    assert out.returncode == 0, out.stderr
    cid = out.stdout.strip()
    out = pm("update", "--memory", "48m", "--cpu-shares", "512", name)
    assert out.returncode == 0, out.stderr
    cgroup = f"libpod_parent/libpod-{cid}"
    with open(f"/sys/fs/cgroup/memory/{cgroup}/memory.limit_in_bytes") as f:
        assert int(f.read()) == 48 << 20
    with open(f"/sys/fs/cgroup/cpu/{cgroup}/cpu.shares") as f:
        assert int(f.read()) == 512
    out = pm("pause", name)
    assert out.returncode == 0, out.stderr
    assert pm("inspect", "--format", "{{.State.Status}}", name).stdout.strip() == "paused"
    with open(f"/sys/fs/cgroup/freezer/{cgroup}/freezer.state") as f:
        assert f.read().strip() == "FROZEN"
    out = pm("unpause", name)
    assert out.returncode == 0, out.stderr
    assert pm("inspect", "--format", "{{.State.Status}}", name).stdout.strip() == "running"

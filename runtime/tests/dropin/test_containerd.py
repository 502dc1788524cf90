"""containerd 1.6 (a private instance) driving runc and bock through ``ctr --runc-binary``."""

from __future__ import annotations

import json
import subprocess
import time
import uuid

import pytest

pytestmark = pytest.mark.root


def _id() -> str:
    return "t-" + uuid.uuid4().hex[:12]


@pytest.fixture
def ctr_run(containerd, busybox_image, runtime, runtime_path):
    """``ctr run <runtime flags> IMAGE ID ARGS...``; every task it started is removed afterwards."""
    started: list[str] = []

    def run(*args: str, opts: tuple[str, ...] = (), check: bool = False, cid: str | None = None):
        cid = cid or _id()
        started.append(cid)
        argv = ["run", *opts, *containerd.run_flags(runtime, runtime_path), busybox_image["name"], cid, *args]
        return cid, containerd.ctr(*argv, check=check)

    try:
        yield run
    finally:
        for cid in started:
            containerd.ctr("task", "kill", "-a", "-s", "SIGKILL", cid, check=False)
            for _ in range(50):
                out = containerd.ctr("task", "delete", cid, check=False)
                if out.returncode == 0 or "not found" in out.stderr:
                    break
                time.sleep(0.1)
            containerd.ctr("container", "delete", cid, check=False)


def _wait_stopped(containerd, cid: str) -> None:
    for _ in range(100):
        rows = containerd.ctr("task", "ls").stdout.split("\n")
        if any(r.split()[:1] == [cid] and "STOPPED" in r for r in rows):
            return
        time.sleep(0.1)
    raise AssertionError(f"task {cid} did not stop")


def test_run_to_completion(ctr_run, runtime):
    # The reference pair (containerd 1.6 + runc 1.1.5) failed this 2 times in about 8 full
    # suite runs under heavy load, never alone: the reference gets up to 3 attempts; bock one.
    for attempt in range(3 if runtime == "runc" else 1):  # noqa: B007 - reported below
        _cid, out = ctr_run("sh", "-c", "echo hello-from-ctr; echo err >&2; exit 3", opts=("--rm",))
        ok = out.returncode == 3 and "hello-from-ctr" in out.stdout and "err" in out.stdout + out.stderr
        if ok:
            break
    assert out.returncode == 3, (attempt, out)
    assert "hello-from-ctr" in out.stdout and "err" in out.stdout + out.stderr, (attempt, out)


def test_detached_exec_kill_delete(containerd, ctr_run):
    cid, out = ctr_run("sleep", "100000", opts=("-d",), check=True)
    tasks = containerd.ctr("task", "ls").stdout
    assert cid in tasks and "RUNNING" in tasks
    fifo = ["--fifo-dir", f"{containerd.base}/fifo"]
    out = containerd.ctr(
        "task", "exec", *fifo, "--exec-id", "e1", cid, "sh", "-c", "echo from-exec; exit 7", check=False
    )
    assert out.returncode == 7 and "from-exec" in out.stdout
    out = containerd.ctr("task", "exec", *fifo, "--exec-id", "bad", cid, "/nonexistent", check=False)
    assert out.returncode != 0
    assert "OCI runtime exec failed: exec failed: unable to start container process: " in out.stderr
    assert 'exec: "/nonexistent": stat /nonexistent: no such file or directory' in out.stderr
    containerd.ctr("task", "exec", "-d", *fifo, "--exec-id", "e2", cid, "sleep", "1000")
    containerd.ctr("task", "kill", "--exec-id", "e2", "-s", "SIGKILL", cid)
    containerd.ctr("task", "kill", "-s", "SIGKILL", cid)
    _wait_stopped(containerd, cid)
    out = containerd.ctr("task", "delete", cid, check=False)
    assert out.returncode == 0, out.stderr
    containerd.ctr("container", "delete", cid)


def test_privileged_run_and_exec(containerd, ctr_run):
    """--privileged grants every capability, CAP_SYS_PTRACE too: bock's init and exec helper
    re-execute a sealed interpreter first (bock._init.exeseal); the shim must not notice."""
    cid, out = ctr_run("sleep", "100000", opts=("-d", "--privileged"), check=True)
    fifo = ["--fifo-dir", f"{containerd.base}/fifo"]
    out = containerd.ctr(
        "task", "exec", *fifo, "--exec-id", "e1", cid, "sh", "-c", "echo from-exec; grep CapEff /proc/self/status",
        check=False,
    )  # fmt: skip
    assert out.returncode == 0 and out.stdout.startswith("from-exec"), out
    assert int(out.stdout.split()[-1], 16) & (1 << 19)  # CAP_SYS_PTRACE is bit 19
    containerd.ctr("task", "kill", "-s", "SIGKILL", cid)
    _wait_stopped(containerd, cid)
    assert containerd.ctr("task", "delete", cid, check=False).returncode == 0


def test_ps_pause_resume_metrics(containerd, ctr_run, require_cgroups):
    cid, _ = ctr_run("sleep", "100000", opts=("-d",), check=True)
    fifo = ["--fifo-dir", f"{containerd.base}/fifo"]
    containerd.ctr("task", "exec", "-d", *fifo, "--exec-id", "e2", cid, "sleep", "1000")
    ps = containerd.ctr("task", "ps", cid).stdout.split("\n")
    pids = [line.split()[0] for line in ps[1:] if line.strip()]
    assert len(pids) == 2
    containerd.ctr("task", "pause", cid)
    assert any(cid in r and "PAUSED" in r for r in containerd.ctr("task", "ls").stdout.split("\n"))
    containerd.ctr("task", "resume", cid)
    assert any(cid in r and "RUNNING" in r for r in containerd.ctr("task", "ls").stdout.split("\n"))
    metrics = json.loads(containerd.ctr("task", "metrics", "--format", "json", cid).stdout)
    # the shim reads the init's cgroup itself: the runtime must have placed init + exec there, alone
    assert metrics["pids"]["current"] == 2
    assert cid in containerd.ctr("task", "metrics", cid).stdout
    with open(f"/proc/{pids[0]}/cgroup") as f:
        assert f"/{containerd.ns}/{cid}" in f.read()


def test_tty(containerd, busybox_image, runtime, runtime_path):
    cid = _id()
    flags = " ".join(containerd.run_flags(runtime, runtime_path))
    cmd = f"ctr -a {containerd.sock} -n {containerd.ns} run --rm -t {flags} {busybox_image['name']} {cid} sh -c 'sleep 0.5; tty; echo tty-ok'"  # ctr attaches late
    try:
        out = subprocess.run(
            ["script", "-qec", cmd, "/dev/null"],
            capture_output=True,
            text=True,
            timeout=60,
            stdin=subprocess.DEVNULL,
        )
        assert out.returncode == 0, out.stdout + out.stderr
        assert "/dev/pts/0" in out.stdout and "tty-ok" in out.stdout
    finally:
        containerd.ctr("task", "kill", "-s", "SIGKILL", cid, check=False)
        containerd.ctr("task", "delete", cid, check=False)
        containerd.ctr("container", "delete", cid, check=False)


def test_failing_create_reaches_ctr(ctr_run):
    _cid, out = ctr_run("/nonexistent", opts=("--rm",))
    assert out.returncode != 0
    assert "OCI runtime create failed: " in out.stderr
    assert (
        'unable to start container process: exec: "/nonexistent": stat /nonexistent: no such file or directory'
        in out.stderr
    )


def test_detached_tty_and_exec_tty(containerd, busybox_image, runtime, runtime_path):
    """``exec --console-socket --detach``: the shim receives the pty master after the call."""
    cid = _id()
    flags = " ".join(containerd.run_flags(runtime, runtime_path))
    ctr = f"ctr -a {containerd.sock} -n {containerd.ns}"
    fifo = f"--fifo-dir {containerd.base}/fifo"

    def pty(cmd: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["script", "-qec", cmd, "/dev/null"],
            capture_output=True,
            text=True,
            timeout=60,
            stdin=subprocess.DEVNULL,
        )

    try:
        out = pty(f"{ctr} run -d -t {flags} {busybox_image['name']} {cid} sleep 100000")
        assert out.returncode == 0, out.stdout + out.stderr
        out = pty(f"{ctr} task exec -t {fifo} --exec-id e3 {cid} sh -c 'tty; exit 6'")
        assert out.returncode == 6, out.stdout + out.stderr
        assert "/dev/pts/" in out.stdout
    finally:
        containerd.ctr("task", "kill", "-s", "SIGKILL", cid, check=False)
        for _ in range(50):
            if containerd.ctr("task", "delete", cid, check=False).returncode == 0:
                break
            time.sleep(0.1)
        containerd.ctr("container", "delete", cid, check=False)

"""``bock run``: create + start + wait, the container's exit code, --detach."""

from __future__ import annotations

import time

import pytest

pytestmark = pytest.mark.root


def test_run_prints_and_exits_zero(runtime, bundle):
    b = bundle("echo", "hello from busybox")
    res = runtime.run(b)
    assert res.rc == 0, res
    assert res.out == "hello from busybox\n"
    assert res.err == ""


@pytest.mark.parametrize("code", [1, 3, 42, 255])
def test_run_exits_with_the_container_exit_code(runtime, bundle, code):
    res = runtime.run(bundle("sh", "-c", f"exit {code}"))
    assert res.rc == code, res


def test_run_killed_by_signal_exits_128_plus_signal(runtime, bundle):
    # without a pid namespace the shell is not pid 1, so SIGKILL from itself is not ignored
    b = bundle("sh", "-c", "kill -9 $$").drop_namespace("pid")
    res = runtime.run(b)
    assert res.rc == 137, res


def test_run_returns_after_an_outside_kill(runtime, bundle):

    b = bundle("sleep", "60")
    cid = runtime.new_id()
    proc = runtime.popen("run", "--bundle", b.path, cid)
    try:
        deadline = time.monotonic() + 10
        while runtime("state", cid).rc != 0 or runtime.status(cid) != "running":
            assert time.monotonic() < deadline, "the container never ran"
            time.sleep(0.05)
        runtime("kill", cid, "9").ok()
        assert proc.wait(timeout=10) == 137
    finally:
        proc.kill()
        proc.wait()


def test_run_removes_the_container_afterwards(runtime, bundle):
    cid = runtime.new_id()
    runtime.run(bundle("true"), cid).ok()
    res = runtime("state", cid)
    assert res.rc == 1 and "does not exist" in res.err, res


def test_run_detach_returns_while_the_container_runs(runtime, bundle):
    b = bundle("sleep", "30")
    cid = runtime.new_id()
    t0 = time.monotonic()
    with open(b.out_path, "w") as out:
        res = runtime("run", "--detach", "--bundle", b.path, cid, stdout=out, stderr=out)
    assert res.rc == 0, (res, b.output())
    assert time.monotonic() - t0 < 10
    st = runtime.state(cid)
    assert st["status"] == "running"
    assert st["pid"] > 0
    runtime("kill", cid, "KILL").ok()


def test_run_short_detach_alias(runtime, bundle):
    b = bundle("sleep", "30")
    cid = runtime.new_id()
    with open(b.out_path, "w") as out:
        runtime("run", "-d", "-b", b.path, cid, stdout=out, stderr=out).ok()
    assert runtime.status(cid) == "running"


def test_many_concurrent_runs_all_succeed(runtime, bundle):
    """Under load stage 2 may report before stage 1 sent the init's pid: no run may fail or hang."""
    import subprocess

    b = bundle("true")
    procs = []
    for _ in range(16):
        cid = runtime.new_id()
        procs.append(runtime.popen("run", "--bundle", b.path, cid))
    failures = []
    deadline = time.monotonic() + 60
    for p in procs:
        try:
            _out, err = p.communicate(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            _out, err = p.communicate()
            failures.append(("timeout", err))
            continue
        if p.returncode != 0:
            failures.append((p.returncode, err))
    assert not failures, failures


def test_run_passes_stdin_through(runtime, bundle):
    b = bundle("sh", "-c", 'read a; read b; echo "$b-$a"')
    res = runtime("run", "--bundle", b.path, runtime.new_id(), input="one\ntwo\n").ok()
    assert res.out == "two-one\n"


def test_run_forwards_signals_to_the_container(runtime, bundle):
    import signal

    b = bundle("sh", "-c", "trap 'echo got-term; exit 3' TERM; echo ready; while true; do sleep 0.05; done")
    cid = runtime.new_id()
    proc = runtime.popen("run", "--bundle", b.path, cid)
    try:
        assert proc.stdout.readline() == b"ready\n"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 3
        assert proc.stdout.read() == b"got-term\n"
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()
        proc.stderr.close()

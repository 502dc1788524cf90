"""Hooks run as real processes: order, argv, env, state on stdin, failure text, timeout kill."""

from __future__ import annotations

import json
import os
import time

import pytest
from bock._security.hooks import HookError, run_hooks, run_poststop
from bock._spec.config import Hook

STATE = {"ociVersion": "1.3.0", "id": "t-hooks", "status": "creating", "pid": 4242, "bundle": "/b"}


def _script(tmp_path, name: str, body: str) -> str:
    path = tmp_path / name
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return str(path)


def test_order_args_env_and_stdin(tmp_path):
    # busybox picks its applet from argv[0]: "sh" only works if args[0] really is argv[0]
    log = tmp_path / "log"
    body = f'echo "$0|$*|$(tr "\\0" ";" < /proc/$$/environ)" >> {log}; cat > {tmp_path}/stdin.$1'
    hooks = [
        Hook(path="/bin/busybox", args=["sh", "-c", body, "first", "one", "x y"], env=["A=1", "B=two words"]),
        Hook(path="/bin/busybox", args=["sh", "-c", body, "second", "two"], env=["C=3"]),
    ]
    run_hooks(hooks, STATE, kind="prestart")
    lines = log.read_text().splitlines()
    assert len(lines) == 2
    argv0, args, env = lines[0].split("|")
    assert (argv0, args) == ("first", "one x y")
    # exactly the hook's env, as execve gave it (/proc/<pid>/environ, before the shell adds to it)
    assert env == "A=1;B=two words;"
    assert lines[1].startswith("second|two|")
    assert "C=3" in lines[1] and "A=1" not in lines[1]
    assert json.loads((tmp_path / "stdin.one").read_text()) == STATE
    assert json.loads((tmp_path / "stdin.two").read_text()) == STATE


def test_empty_args_means_path_as_argv0_and_default_env(tmp_path, monkeypatch):
    out = tmp_path / "out"
    rec = _script(tmp_path, "rec.sh", f'echo "$0 $BOCK_HOOK_TEST_VAR" > {out}\n')
    monkeypatch.setenv("BOCK_HOOK_TEST_VAR", "from-runtime")
    run_hooks([Hook(path=rec)], STATE, kind="createRuntime")
    assert out.read_text() == f"{rec} from-runtime\n"  # runc: no env -> the runtime's environment
    run_hooks([Hook(path=rec)], STATE, kind="startContainer", default_env=["BOCK_HOOK_TEST_VAR=container"])
    assert out.read_text() == f"{rec} container\n"


def test_failure_text_and_stop_at_first_failure(tmp_path):
    marker = tmp_path / "ran"
    bad = _script(tmp_path, "bad.sh", "echo out; echo err >&2; exit 3\n")
    good = _script(tmp_path, "good.sh", f"touch {marker}\n")
    with pytest.raises(HookError) as err:
        run_hooks([Hook(path=good), Hook(path=bad), Hook(path=good, args=["again"])], STATE, kind="poststart")
    assert str(err.value) == "error running poststart hook #1: exit status 3, stdout: out\n, stderr: err\n"
    assert marker.exists()


def test_hook_that_ignores_stdin_and_large_state(tmp_path):
    # a state larger than a pipe buffer must not block when the hook never reads it
    ok = _script(tmp_path, "ok.sh", "exit 0\n")
    big = dict(STATE, annotations={f"k{i}": "v" * 100 for i in range(2000)})
    run_hooks([Hook(path=ok)], big, kind="prestart")
    reader = _script(tmp_path, "reader.sh", f"cat > {tmp_path}/big\n")
    run_hooks([Hook(path=reader)], big, kind="prestart")
    assert json.loads((tmp_path / "big").read_text()) == big


def test_timeout_kills_hook_and_its_children(tmp_path):
    pidfile = tmp_path / "pids"
    slow = _script(tmp_path, "slow.sh", f"sleep 30 & echo $! > {pidfile}\nwait\n")
    t0 = time.monotonic()
    with pytest.raises(HookError) as err:
        run_hooks([Hook(path=slow, timeout=1)], STATE, kind="createRuntime")
    elapsed = time.monotonic() - t0
    assert str(err.value) == "error running createRuntime hook #0: hook ran past specified timeout of 1.0s"
    assert 0.9 < elapsed < 5  # runc waits for the sleep holding stdout; bock kills the group
    child = int(pidfile.read_text())
    for _ in range(100):
        try:
            with open(f"/proc/{child}/stat") as f:
                if f.read().split(")")[1].split()[0] == "Z":
                    break
        except FileNotFoundError:
            break
        time.sleep(0.02)
    else:
        os.kill(child, 9)
        pytest.fail("the hook's child survived the timeout")


def test_background_child_holding_stdout_does_not_block(tmp_path):
    pidfile = tmp_path / "pid"
    bg = _script(tmp_path, "bg.sh", f"sleep 30 & echo $! > {pidfile}\necho started\n")
    t0 = time.monotonic()
    try:
        run_hooks([Hook(path=bg)], STATE, kind="poststart")
        assert time.monotonic() - t0 < 5
    finally:
        os.kill(int(pidfile.read_text()), 9)


def test_killed_by_signal_text(tmp_path):
    selfkill = _script(tmp_path, "k.sh", "kill -TERM $$\n")
    with pytest.raises(
        HookError, match=r"^error running prestart hook #0: signal: terminated, stdout: , stderr: $"
    ):
        run_hooks([Hook(path=selfkill)], STATE, kind="prestart")


def test_poststop_only_warns_and_runs_all(tmp_path):
    marker = tmp_path / "ran"
    bad = _script(tmp_path, "bad.sh", "echo nope >&2; exit 1\n")
    good = _script(tmp_path, "good.sh", f"touch {marker}\n")
    warnings = run_poststop(
        [Hook(path=bad), Hook(path=good), Hook(path="/nonexistent")], dict(STATE, status="stopped")
    )
    assert warnings == [
        "error running poststop hook #0: exit status 1, stdout: , stderr: nope\n",
        "error running poststop hook #2: fork/exec /nonexistent: no such file or directory",
    ]
    assert marker.exists()

"""`tty: true` and `init: true` with real containers, on bock and on runc: the terminal's output in the
log, exec with and without a terminal, a terminal kept across a monitor restart; an init that reaps
zombies, forwards the stop signal and passes the exit code through."""

from __future__ import annotations

import json
import os
import pty
import select
import signal
import subprocess

import pytest
from bockrose._console import is_holder
from bockrose._state import log_path, pid_alive
from bockrose_helpers import RUNC, ps_json

pytestmark = [pytest.mark.root, pytest.mark.timeout(300)]
RUNTIMES = [pytest.param(None, id="bock"), pytest.param(RUNC, id="runc")]


def _log_records(c, container: str) -> list[dict]:
    try:
        with open(log_path(c.root, c.name, container)) as f:
            return [json.loads(line) for line in f if line.strip()]
    except OSError:
        return []


def _run_on_pty(argv: list[str], env: dict[str, str], cwd, timeout: float = 60) -> tuple[int, str]:
    """Run argv with stdin/stdout/stderr on a new pty (what a user at a terminal has)."""
    master, slave = pty.openpty()
    try:
        p = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env, cwd=cwd, close_fds=True)
        os.close(slave)
        slave = -1
        out = b""
        while True:
            r, _, _ = select.select([master], [], [], timeout)
            if not r:
                p.kill()
                break
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: every holder of the slave is gone
                break
            if not data:
                break
            out += data
        return p.wait(timeout), out.decode(errors="replace")
    finally:
        os.close(master)
        if slave >= 0:
            os.close(slave)


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_tty_service_logs_and_exec(compose, runtime):
    c = compose(runtime)
    c.write("""
services:
  term:
    image: busybox
    tty: true
    command: sh -c 'tty; [ -t 1 ] && echo stdout-is-a-tty; echo "TERM=$$TERM"; exec sleep 3600'
  plain:
    image: busybox
    command: sh -c '[ -t 1 ] || echo stdout-is-not-a-tty; exec sleep 3600'
""")
    c.run("up", "-d")
    term = f"{c.name}-term-1"
    c.wait_for(
        lambda: "stdout-is-a-tty" in c.run("logs", "term").stdout, what="the terminal's output in the log"
    )
    logs = c.run("logs", "--no-log-prefix", "term").stdout
    assert "/dev/pts/" in logs and "TERM=xterm" in logs
    recs = _log_records(c, term)
    assert recs and all(r["stream"] == "stdout" for r in recs)
    assert any(r["log"].endswith("\r\n") for r in recs)  # the pty's output processing, as docker logs it
    c.wait_for(lambda: "stdout-is-not-a-tty" in c.run("logs", "plain").stdout, what="plain output")
    st = c.state()
    cdir = os.path.join(c.root, "projects", c.name, "containers", term)
    with open(os.path.join(cdir, "bundle", "config.json")) as f:
        assert json.load(f)["process"]["terminal"] is True
    holder = st.containers[term].console_holder
    assert holder and is_holder(holder)
    # exec -T: no terminal; exec at a terminal: one, as docker compose exec gives
    assert c.exec("term", "sh", "-c", "[ -t 0 ] && echo tty || echo notty").stdout.strip() == "notty"
    rc, out = _run_on_pty(
        c.argv("exec", "term", "sh", "-c", "[ -t 0 ] && [ -t 1 ] && echo exec-has-a-tty; tty"), c.env, c.dir
    )
    assert rc == 0, out
    assert "exec-has-a-tty" in out and "/dev/pts/" in out
    rc, out = _run_on_pty(c.argv("exec", "term", "sh", "-c", "exit 5"), c.env, c.dir)
    assert rc == 5, out  # the exit code passes through the terminal's exec
    # restart: a new terminal, a new holder; the old one is gone
    c.run("restart", "-t", "1", "term")
    c.wait_for(
        lambda: c.state().containers[term].console_holder not in (0, holder), what="a new console holder"
    )
    c.wait_for(lambda: not is_holder(holder), what="the old holder to exit")
    new_holder = c.state().containers[term].console_holder
    c.run("down", "-v", "-t", "0")
    c.wait_for(lambda: not is_holder(new_holder), what="the holder to exit after down")


def test_tty_output_still_logged_after_monitor_restart(compose):
    c = compose()
    c.write("""
services:
  ticker:
    image: busybox
    tty: true
    command: sh -c 'i=0; while :; do i=$$((i+1)); echo tick-$$i; sleep 0.2; done'
""")
    c.run("up", "-d")
    name = f"{c.name}-ticker-1"
    c.wait_for(lambda: len(_log_records(c, name)) >= 3, what="first ticks")
    st = c.state()
    os.kill(st.monitor_pid, signal.SIGKILL)
    c.wait_for(lambda: not pid_alive(st.monitor_pid), what="the monitor to die")
    p = c.run("ps")
    assert "adopt" in p.stderr.lower()
    before = len(_log_records(c, name))
    c.wait_for(lambda: len(_log_records(c, name)) >= before + 5, what="ticks logged by the new monitor")
    assert ps_json(c)[0]["State"] == "running"


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_init_reaps_forwards_stop_and_passes_exit_code(compose, runtime):
    c = compose(runtime)
    # each main process leaves an orphan (a double fork): pid 1 must reap it when it exits
    c.write("""
services:
  withinit:
    image: busybox
    init: true
    command: sh -c 'sh -c "sleep 0.3 &"; trap "echo got-TERM; exit 7" TERM; while :; do sleep 0.1; done'
  noinit:
    image: busybox
    command: sh -c 'sh -c "sleep 0.3 &"; exec sleep 3600'
  exits:
    image: busybox
    init: true
    command: sh -c 'exit 3'
""")
    c.run("up", "-d")
    assert "docker-init" in c.exec("withinit", "cat", "/proc/1/cmdline").stdout
    assert "docker-init" not in c.exec("noinit", "cat", "/proc/1/cmdline").stdout

    def zombies(svc: str) -> int:
        out = c.exec(svc, "sh", "-c", "cat /proc/[0-9]*/status").stdout
        return sum(1 for line in out.splitlines() if line.startswith("State:") and "Z" in line)

    # without an init the orphan stays a zombie (the test can fail); with one it is reaped
    c.wait_for(lambda: zombies("noinit") >= 1, what="the zombie in the container without init")
    assert zombies("withinit") == 0
    exits = c.wait_for(
        lambda: [p for p in ps_json(c, "-a") if p["Service"] == "exits" and p["State"] == "exited"],
        what="exits to exit",
    )
    assert exits[0]["ExitCode"] == 3
    c.run("stop", "-t", "20", "withinit")
    p = next(p for p in ps_json(c, "-a") if p["Service"] == "withinit")
    assert p["State"] == "exited" and p["ExitCode"] == 7  # the trap ran: TERM reached sh through init
    assert "got-TERM" in c.run("logs", "withinit").stdout


def test_init_without_a_binary_is_a_clear_error(compose):
    c = compose()
    c.env["BOCKROSE_INIT"] = "/nonexistent/init"
    c.write("services:\n  a: {image: busybox, init: true, command: sleep 3600}\n")
    p = c.run("up", "-d", check=False)
    assert p.returncode != 0
    assert "init: true needs a static init binary" in p.stderr and "/nonexistent/init" in p.stderr

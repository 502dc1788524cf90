"""Process attributes applied in a real forked child, checked from the host (/proc, syscalls, tools)."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest
from bock._security import process_attrs as P
from bock._spec.config import Linux, Process, Rlimit
from bock.errors import SystemError_

pytestmark = pytest.mark.root


def in_child(apply, inspect=None):
    """Fork; the child runs ``apply()`` and waits; ``inspect(pid)`` looks at it from outside.

    Returns (child's error text or "", inspect's result).
    """
    r, w = os.pipe()
    go_r, go_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            os.close(r)
            os.close(go_w)
            try:
                apply()
                msg = b"ok"
            except BaseException as exc:
                msg = f"{type(exc).__name__}: {exc}".encode()
            os.write(w, msg)
            os.read(go_r, 1)
        finally:
            os._exit(code)
    os.close(w)
    os.close(go_r)
    try:
        msg = os.read(r, 65536).decode()
        result = inspect(pid) if inspect is not None and msg == "ok" else None
    finally:
        os.close(go_w)
        os.close(r)
        os.waitpid(pid, 0)
    return ("" if msg == "ok" else msg), result


def read(path: str) -> str:
    with open(path) as f:
        return f.read()


def limits_line(pid: int, title: str) -> list[str]:
    with open(f"/proc/{pid}/limits") as f:
        for line in f:
            if line.startswith(title):
                return line[len(title) :].split()
    raise AssertionError(title)


def test_rlimits_visible_in_proc_limits():
    rl = [
        Rlimit(type="RLIMIT_NOFILE", soft=512, hard=1024),
        Rlimit(type="RLIMIT_CORE", soft=0, hard=0),
        Rlimit(type="RLIMIT_NPROC", soft=P.RLIM_INFINITY, hard=P.RLIM_INFINITY),
    ]
    if P.get_rlimit("RLIMIT_NPROC")[1] != P.RLIM_INFINITY:
        rl.pop()
    err, (nofile, core) = in_child(
        lambda: P.apply_rlimits(rl),
        lambda pid: (limits_line(pid, "Max open files"), limits_line(pid, "Max core file size")),
    )
    assert err == ""
    assert nofile[:2] == ["512", "1024"]
    assert core[:2] == ["0", "0"]


def test_raising_a_hard_limit_without_cap_sys_resource_is_explained():
    _soft, hard = P.get_rlimit("RLIMIT_NOFILE")
    with open("/proc/self/status") as f:
        capeff = int(next(line for line in f if line.startswith("CapEff")).split()[1], 16)
    if capeff & (1 << 24):  # CAP_SYS_RESOURCE
        pytest.skip("this host grants CAP_SYS_RESOURCE; raising a hard limit works here")
    err, _ = in_child(lambda: P.apply_rlimits([Rlimit(type="RLIMIT_NOFILE", soft=hard + 1, hard=hard + 1)]))
    assert err == (
        f"SystemError_: error setting rlimit type RLIMIT_NOFILE: operation not permitted"
        f" (raising the hard limit from {hard} to {hard + 1} needs CAP_SYS_RESOURCE)"
    )


def test_oom_score_adj():
    err, value = in_child(lambda: P.set_oom_score_adj(500), lambda pid: read(f"/proc/{pid}/oom_score_adj"))
    assert (err, value) == ("", "500\n")


def test_oom_score_adj_of_another_pid_from_the_parent():
    err, value = in_child(
        lambda: None, lambda pid: (P.set_oom_score_adj(321, pid), read(f"/proc/{pid}/oom_score_adj"))
    )
    assert err == "" and value[1] == "321\n"


def test_lowering_oom_score_adj_error_is_explained():
    def lower():
        P.set_oom_score_adj(600)
        P.set_oom_score_adj(-1000)

    err, _ = in_child(lower)
    with open("/proc/self/status") as f:
        capeff = int(next(line for line in f if line.startswith("CapEff")).split()[1], 16)
    if capeff & (1 << 24):
        assert err == ""
    else:
        assert err.startswith(
            "SystemError_: failed to set oom_score_adj to -1000: write /proc/self/oom_score_adj: "
        )
        assert err.endswith("(lowering oom_score_adj below its minimum needs CAP_SYS_RESOURCE)")


def _exec_output(prepare, argv: list[str]) -> str:
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.dup2(w, 1)
            prepare()
            os.execv(argv[0], argv)
        finally:
            os._exit(127)
    os.close(w)
    out = b""
    while chunk := os.read(r, 4096):
        out += chunk
    os.close(r)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    return out.decode().strip()


@pytest.mark.skipif(os.uname().machine != "x86_64", reason="LINUX32 shows i686 on x86_64")
def test_personality_linux32_changes_uname():
    linux = Linux.from_json({"personality": {"domain": "LINUX32"}})
    assert _exec_output(lambda: P.apply_personality(linux.personality), ["/bin/uname", "-m"]) == "i686"
    linux = Linux.from_json({"personality": {"domain": "LINUX"}})
    assert _exec_output(lambda: P.apply_personality(linux.personality), ["/bin/uname", "-m"]) == "x86_64"


@pytest.mark.skipif(shutil.which("ionice") is None, reason="needs util-linux ionice")
@pytest.mark.parametrize(
    ("cls", "prio", "shown"),
    [
        ("IOPRIO_CLASS_RT", 3, "realtime: prio 3"),
        ("IOPRIO_CLASS_BE", 6, "best-effort: prio 6"),
        ("IOPRIO_CLASS_IDLE", 0, "idle"),
    ],
)
def test_io_priority_seen_by_ionice(cls, prio, shown):
    proc = Process.from_json({"ioPriority": {"class": cls, "priority": prio}})
    err, out = in_child(
        lambda: P.apply_io_priority(proc.io_priority),
        lambda pid: (
            subprocess.run(["ionice", "-p", str(pid)], capture_output=True, text=True, check=True).stdout
        ),
    )
    assert err == ""
    assert out.strip() == shown


def test_scheduler_batch_with_nice():
    proc = Process.from_json({"scheduler": {"policy": "SCHED_BATCH", "nice": 7}})
    err, got = in_child(
        lambda: P.apply_scheduler(proc.scheduler),
        lambda pid: (os.sched_getscheduler(pid), os.getpriority(os.PRIO_PROCESS, pid)),
    )
    assert err == ""
    assert got == (os.SCHED_BATCH, 7)


def test_scheduler_fifo_with_reset_on_fork():
    proc = Process.from_json(
        {"scheduler": {"policy": "SCHED_FIFO", "priority": 10, "flags": ["SCHED_FLAG_RESET_ON_FORK"]}}
    )
    err, got = in_child(
        lambda: P.apply_scheduler(proc.scheduler),
        lambda pid: (os.sched_getscheduler(pid), os.sched_getparam(pid).sched_priority),
    )
    assert err == ""
    assert got == (os.SCHED_FIFO | os.SCHED_RESET_ON_FORK, 10)


def test_scheduler_kernel_refusal_is_reported():
    # SCHED_ISO is in the spec but not in mainline Linux: the kernel says EINVAL
    proc = Process.from_json({"scheduler": {"policy": "SCHED_ISO"}})
    err, _ = in_child(lambda: P.apply_scheduler(proc.scheduler))
    assert err == "SystemError_: error setting scheduler: invalid argument"


def test_cpu_affinity_initial_then_reset():
    err, got = in_child(lambda: P.apply_cpu_affinity("0"), os.sched_getaffinity)
    assert (err, got) == ("", {0})
    err, got = in_child(
        lambda: (P.apply_cpu_affinity("0"), P.apply_cpu_affinity(None, which="final")), os.sched_getaffinity
    )
    assert err == ""
    assert got == P.possible_cpus() & os.sched_getaffinity(0) or got == P.possible_cpus()


def test_cpu_affinity_of_another_pid():
    err, got = in_child(
        lambda: None, lambda pid: (P.apply_cpu_affinity("0", pid, which="final"), os.sched_getaffinity(pid))
    )
    assert err == "" and got[1] == {0}
    with pytest.raises(SystemError_, match=r"^error setting final CPU affinity to '4096': invalid argument$"):
        P.apply_cpu_affinity("4096", which="final")

"""config-linux.md "seccomp": actions, errnoRet, defaultErrnoRet, argument conditions, flags, notify."""

from __future__ import annotations

import pytest

from bock_conformance._seccomp_agent import NotifyAgent

pytestmark = pytest.mark.section("seccomp")

MKDIR = ["mkdir", "mkdirat"]
# Enough for busybox sh and its applets after the filter is loaded (the rest gets defaultErrnoRet).
BASELINE = [
    "read",
    "write",
    "open",
    "openat",
    "close",
    "stat",
    "fstat",
    "lstat",
    "newfstatat",
    "statx",
    "poll",
    "ppoll",
    "lseek",
    "mmap",
    "mprotect",
    "munmap",
    "brk",
    "rt_sigaction",
    "rt_sigprocmask",
    "rt_sigreturn",
    "ioctl",
    "pread64",
    "pwrite64",
    "readv",
    "writev",
    "access",
    "faccessat",
    "faccessat2",
    "pipe",
    "pipe2",
    "select",
    "pselect6",
    "sched_yield",
    "mremap",
    "madvise",
    "dup",
    "dup2",
    "dup3",
    "nanosleep",
    "clock_nanosleep",
    "getpid",
    "getppid",
    "clone",
    "clone3",
    "fork",
    "vfork",
    "execve",
    "execveat",
    "exit",
    "exit_group",
    "wait4",
    "waitid",
    "kill",
    "tgkill",
    "tkill",
    "uname",
    "fcntl",
    "getcwd",
    "chdir",
    "fchdir",
    "readlink",
    "readlinkat",
    "getuid",
    "getgid",
    "geteuid",
    "getegid",
    "getgroups",
    "setpgid",
    "getpgrp",
    "getpgid",
    "setsid",
    "arch_prctl",
    "prctl",
    "set_tid_address",
    "set_robust_list",
    "rseq",
    "prlimit64",
    "getrlimit",
    "futex",
    "getdents",
    "getdents64",
    "sigaltstack",
    "getrandom",
    "gettid",
    "capget",
    "capset",
    "setuid",
    "setgid",
    "setgroups",
    "setresuid",
    "setresgid",
    "close_range",
    "fstatfs",
    "statfs",
    "umask",
    "time",
    "gettimeofday",
    "clock_gettime",
    "sysinfo",
    "getresuid",
    "getresgid",
    "sched_getaffinity",
    "epoll_create1",
    "epoll_ctl",
    "epoll_wait",
    "epoll_pwait",
    "unlink",
    "unlinkat",
    "rename",
    "renameat",
    "renameat2",
    "fchown",
    "fchmod",
    "chmod",
    "fchmodat",
    "chown",
    "fchownat",
    "lchown",
    "utimensat",
    "mknod",
    "mknodat",
]


def profile(default="SCMP_ACT_ALLOW", syscalls=(), **extra):
    doc = {
        "defaultAction": default,
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": list(syscalls),
    }
    doc.update(extra)
    return doc


def with_seccomp(doc):
    def mutate(cfg):
        cfg["linux"]["seccomp"] = doc

    return mutate


def rule(names, action, **extra):
    entry = {"names": list(names), "action": action}
    entry.update(extra)
    return entry


def mkdir_outcome(kit, doc):
    """Run mkdir in a child shell; return (its exit status, its message)."""
    res = kit.sh("sh -c 'mkdir /tmp/x' 2>&1; echo rc=$?", with_seccomp(doc))
    assert res.rc == 0, res
    out = res.out.strip().splitlines()
    return int(out[-1].removeprefix("rc=")), " ".join(out[:-1])


def test_errno_action_denies_syscall(kit):
    rc, msg = mkdir_outcome(kit, profile(syscalls=[rule(MKDIR, "SCMP_ACT_ERRNO")]))
    assert rc != 0 and "Operation not permitted" in msg, msg


def test_errno_ret_custom(kit):
    rc, msg = mkdir_outcome(kit, profile(syscalls=[rule(MKDIR, "SCMP_ACT_ERRNO", errnoRet=13)]))
    assert rc != 0 and "Permission denied" in msg, msg


def test_errno_ret_enosys(kit):
    rc, msg = mkdir_outcome(kit, profile(syscalls=[rule(MKDIR, "SCMP_ACT_ERRNO", errnoRet=38)]))
    assert rc != 0 and "Function not implemented" in msg, msg


def test_default_errno_denies_unlisted(kit):
    doc = profile("SCMP_ACT_ERRNO", [rule(BASELINE, "SCMP_ACT_ALLOW")])
    rc, msg = mkdir_outcome(kit, doc)
    assert rc != 0 and "Operation not permitted" in msg, msg


def test_default_errno_ret(kit):
    doc = profile("SCMP_ACT_ERRNO", [rule(BASELINE, "SCMP_ACT_ALLOW")], defaultErrnoRet=38)
    rc, msg = mkdir_outcome(kit, doc)
    assert rc != 0 and "Function not implemented" in msg, msg


def test_default_errno_allows_listed(kit):
    doc = profile("SCMP_ACT_ERRNO", [rule([*BASELINE, *MKDIR], "SCMP_ACT_ALLOW")])
    assert mkdir_outcome(kit, doc)[0] == 0


@pytest.mark.parametrize(
    "action", ["SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_TRAP"]
)
def test_kill_actions_end_process_with_sigsys(kit, action):
    rc, _ = mkdir_outcome(kit, profile(syscalls=[rule(MKDIR, action)]))
    assert rc == 128 + 31, rc


def test_log_action_allows(kit):
    assert mkdir_outcome(kit, profile(syscalls=[rule(MKDIR, "SCMP_ACT_LOG")]))[0] == 0


def test_trace_without_tracer_gives_enosys(kit):
    rc, msg = mkdir_outcome(kit, profile(syscalls=[rule(MKDIR, "SCMP_ACT_TRACE", errnoRet=1)]))
    assert rc != 0 and "Function not implemented" in msg, msg


def test_allow_action_in_allow_profile(kit):
    assert mkdir_outcome(kit, profile(syscalls=[rule(MKDIR, "SCMP_ACT_ALLOW")]))[0] == 0


KILL_SCRIPT = (
    "kill -0 $$ 2>/dev/null && echo s0=ok || echo s0=denied; "
    "kill -CONT $$ 2>/dev/null && echo s18=ok || echo s18=denied"
)
OPS = [
    ("SCMP_CMP_EQ", 0, None, "denied", "ok"),
    ("SCMP_CMP_NE", 0, None, "ok", "denied"),
    ("SCMP_CMP_GT", 10, None, "ok", "denied"),
    ("SCMP_CMP_GE", 18, None, "ok", "denied"),
    ("SCMP_CMP_LT", 10, None, "denied", "ok"),
    ("SCMP_CMP_LE", 0, None, "denied", "ok"),
    ("SCMP_CMP_MASKED_EQ", 0x10, 0x10, "ok", "denied"),
]


@pytest.mark.parametrize("op,value,value2,sig0,sig18", OPS, ids=[o[0] for o in OPS])
def test_argument_condition(kit, op, value, value2, sig0, sig18):
    arg = {"index": 1, "value": value, "op": op}
    if value2 is not None:
        arg["valueTwo"] = value2
    doc = profile(syscalls=[rule(["kill"], "SCMP_ACT_ERRNO", args=[arg])])
    out = kit.sh(KILL_SCRIPT, with_seccomp(doc)).out.split()
    assert out == [f"s0={sig0}", f"s18={sig18}"], out


def test_two_argument_conditions_are_anded(kit):
    args = [{"index": 1, "value": 18, "op": "SCMP_CMP_EQ"}, {"index": 0, "value": 0, "op": "SCMP_CMP_NE"}]
    doc = profile(syscalls=[rule(["kill"], "SCMP_ACT_ERRNO", args=args)])
    out = kit.sh(KILL_SCRIPT, with_seccomp(doc)).out.split()
    assert out == ["s0=ok", "s18=denied"], out


def test_seccomp_mode_in_status(kit):
    out = kit.sh(
        "grep ^Seccomp: /proc/self/status", with_seccomp(profile(syscalls=[rule(MKDIR, "SCMP_ACT_ERRNO")]))
    )
    assert out.out.split()[-1] == "2"


def test_no_seccomp_without_profile(kit):
    assert kit.sh("grep ^Seccomp: /proc/self/status").out.split()[-1] == "0"


def test_unknown_action_fails(kit):
    kit.sh("true", with_seccomp(profile(syscalls=[rule(MKDIR, "SCMP_ACT_BOGUS")]))).expect_fail()


def test_unknown_default_action_fails(kit):
    kit.sh("true", with_seccomp(profile("SCMP_ACT_BOGUS"))).expect_fail()


def test_flag_log_accepted(kit):
    doc = profile(syscalls=[rule(MKDIR, "SCMP_ACT_ERRNO")], flags=["SECCOMP_FILTER_FLAG_LOG"])
    rc, _ = mkdir_outcome(kit, doc)
    assert rc != 0


def test_filter_applies_to_exec(kit):
    ctr = kit.started(
        "sleep 300", with_seccomp(profile(syscalls=[rule(MKDIR, "SCMP_ACT_ERRNO", errnoRet=13)]))
    )
    res = ctr.exec(["sh", "-c", "mkdir /tmp/y 2>&1; true"])
    assert "Permission denied" in res.out, res


def notify_config(kit, agent_path, script):
    cfg = kit.config(script)
    cfg["linux"]["seccomp"] = profile(
        syscalls=[rule(MKDIR, "SCMP_ACT_NOTIFY")], listenerPath=str(agent_path), listenerMetadata="bock-conf"
    )
    return cfg


def test_notify_agent_decides_result(kit):
    agent = NotifyAgent(kit.fresh("agent", ".sock"), errno=13)
    kit.on_cleanup(agent.close)
    res = kit.run(notify_config(kit, agent.path, "mkdir /tmp/x 2>&1; echo rc=$?"), timeout=30)
    assert "Permission denied" in res.out and agent.handled, (res, agent.handled)


def test_notify_agent_receives_fd_and_state(kit):
    agent = NotifyAgent(kit.fresh("agent", ".sock"), errno=1)
    kit.on_cleanup(agent.close)
    kit.run(notify_config(kit, agent.path, "true"), timeout=30).expect_ok()
    state = agent.state or {}
    assert agent.nfds == 1 and state.get("metadata") == "bock-conf" and state.get("state", {}).get("id"), (
        state
    )

"""config.md "process": args, env, cwd, user, umask, rlimits, capabilities, noNewPrivileges, oomScoreAdj,
scheduling extras, LSM labels and the terminal (console socket)."""

from __future__ import annotations

import os
import resource
import time

import pytest

from bock_conformance import _host
from bock_conformance._caps import cap_mask
from bock_conformance._console import pty_number, read_until, window_size

pytestmark = pytest.mark.section("process")


def status_field(kit, name, mutate=None):
    res = kit.sh(f"grep '^{name}:' /proc/self/status", mutate)
    res.expect_ok()
    return res.out.split(":", 1)[1].strip()


# -- args ------------------------------------------------------------------------------------------------


def test_args_passed_verbatim(kit):
    cfg = kit.config(
        args=["sh", "-c", 'for a in "$0" "$@"; do printf "<%s>" "$a"; done', "a b", "c'd", "", "$HOME"]
    )
    res = kit.run(cfg)
    assert res.out == "<a b><c'd><><$HOME>"


def test_args0_resolved_through_path(kit):
    res = kit.run(kit.config(args=["echo", "via-path"]))
    assert res.out.strip() == "via-path"


def test_args0_absolute_path(kit):
    res = kit.run(kit.config(args=["/bin/echo", "absolute"]))
    assert res.out.strip() == "absolute"


def test_missing_executable_fails_with_clear_error(kit):
    res = kit.run(kit.config(args=["/nonexistent"]))
    assert res.rc != 0
    assert "no such file or directory" in res.err.lower() or "not found" in res.err.lower(), res.err


def test_args0_not_executable_fails(kit):
    cfg = kit.config(args=["/etc/passwd"])
    res = kit.run(cfg)
    assert res.rc != 0 and "permission denied" in res.err.lower(), res.err


# -- env -------------------------------------------------------------------------------------------------


def test_env_variable_visible(kit):
    def env(cfg):
        cfg["process"]["env"].append("CONF_VAR=hello world")

    assert kit.sh('printf %s "$CONF_VAR"', env).out == "hello world"


def test_env_value_with_equals_sign(kit):
    def env(cfg):
        cfg["process"]["env"].append("CONF_EQ=a=b=c")

    assert kit.sh('printf %s "$CONF_EQ"', env).out == "a=b=c"


def test_env_is_exactly_process_env(kit):
    def env(cfg):
        cfg["process"]["env"] = ["PATH=/bin", "ONLY=1"]

    res = kit.sh("env | sort", env)
    names = sorted(line.split("=", 1)[0] for line in res.out.splitlines())
    assert set(names) <= {"PATH", "ONLY", "PWD", "SHLVL", "HOME"} and "ONLY" in names, names


def test_host_env_not_leaked(kit):
    env = dict(os.environ, BOCK_CONF_LEAK="leaked")
    cfg = kit.config("env")
    bdir = kit.bundle(cfg)
    res = kit.cli("run", "--bundle", bdir, kit.new_id(), env=env)
    assert res.rc == 0 and "BOCK_CONF_LEAK" not in res.out


def test_env_path_used_for_lookup(kit):
    cfg = kit.config(args=["mycmd"])
    cfg["process"]["env"] = ["PATH=/custom:/bin"]
    bdir = kit.bundle(cfg)
    (bdir / "rootfs" / "custom").mkdir()
    script = bdir / "rootfs" / "custom" / "mycmd"
    script.write_text("#!/bin/sh\necho custom-path\n")
    script.chmod(0o755)
    cid = kit.new_id()
    res = kit.cli("run", "--bundle", bdir, cid)
    assert res.out.strip() == "custom-path"


def test_home_set_from_passwd_when_absent(kit):
    def user(cfg):
        cfg["process"]["user"] = {"uid": 1000, "gid": 1000}

    assert kit.sh('printf %s "$HOME"', user).out == "/home/user"


# -- cwd -------------------------------------------------------------------------------------------------


def test_cwd_is_set(kit):
    def cwd(cfg):
        cfg["process"]["cwd"] = "/tmp"

    assert kit.sh("pwd", cwd).out.strip() == "/tmp"


def test_cwd_relative_is_rejected(kit):
    def cwd(cfg):
        cfg["process"]["cwd"] = "tmp"

    kit.sh("pwd", cwd).expect_fail()


def test_cwd_missing_is_created_or_rejected(kit):
    def cwd(cfg):
        cfg["process"]["cwd"] = "/does/not/exist"

    res = kit.sh("pwd", cwd)
    assert res.rc != 0 or res.out.strip() == "/does/not/exist"


# -- user ------------------------------------------------------------------------------------------------


def as_user(uid, gid, extra=None):
    def mutate(cfg):
        cfg["process"]["user"] = {"uid": uid, "gid": gid}
        if extra is not None:
            cfg["process"]["user"]["additionalGids"] = extra

    return mutate


def test_user_uid(kit):
    assert kit.sh("id -u", as_user(1000, 1000)).out.strip() == "1000"


def test_user_gid(kit):
    assert kit.sh("id -g", as_user(1000, 1234)).out.strip() == "1234"


def test_user_additional_gids(kit):
    groups = set(kit.sh("id -G", as_user(1000, 1000, [29, 4242])).out.split())
    assert {"29", "4242", "1000"} <= groups


def test_user_no_supplementary_groups_leak(kit):
    groups = kit.sh("id -G", as_user(1000, 1000)).out.split()
    assert groups == ["1000"]


def test_user_all_uids_set(kit):
    line = status_field(kit, "Uid", as_user(1000, 1000))
    assert line.split() == ["1000"] * 4


def test_user_all_gids_set(kit):
    line = status_field(kit, "Gid", as_user(1000, 1001))
    assert line.split() == ["1001"] * 4


def test_user_uid_without_passwd_entry(kit):
    assert kit.sh("id -u", as_user(4242, 4242)).out.strip() == "4242"


def test_user_root_in_container(kit):
    assert kit.sh("id -u; id -g").out.split() == ["0", "0"]


def test_non_root_cannot_write_root_owned_dir(kit):
    res = kit.sh("touch /root/x 2>&1; echo rc=$?", as_user(1000, 1000))
    assert "rc=0" not in res.out


# -- umask -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("umask,shown", [(0o077, "0077"), (0, "0000"), (0o027, "0027")])
def test_umask(kit, umask, shown):
    def set_umask(cfg):
        cfg["process"]["user"]["umask"] = umask

    assert kit.sh("umask", set_umask).out.strip() == shown


def test_umask_applies_to_new_files(kit):
    def set_umask(cfg):
        cfg["process"]["user"]["umask"] = 0o077

    assert kit.sh("touch /tmp/f; stat -c %a /tmp/f", set_umask).out.strip() == "600"


# -- rlimits ---------------------------------------------------------------------------------------------

RLIMITS = [
    ("RLIMIT_NOFILE", "Max open files", 512, 768),
    ("RLIMIT_CORE", "Max core file size", 0, 0),
    ("RLIMIT_NPROC", "Max processes", 300, 400),
    ("RLIMIT_MSGQUEUE", "Max msgqueue size", 4096, 8192),
    ("RLIMIT_MEMLOCK", "Max locked memory", 65536, 131072),
    ("RLIMIT_CPU", "Max cpu time", 1000, 2000),
    ("RLIMIT_FSIZE", "Max file size", 1 << 30, 1 << 31),
    ("RLIMIT_SIGPENDING", "Max pending signals", 100, 200),
]


@pytest.mark.parametrize("name,label,soft,hard", RLIMITS, ids=[r[0] for r in RLIMITS])
def test_rlimit_applied(kit, name, label, soft, hard):
    host_hard = resource.getrlimit(getattr(resource, name))[1]
    if host_hard != resource.RLIM_INFINITY and host_hard < hard:
        hard = host_hard
        soft = min(soft, hard)

    def limits(cfg):
        cfg["process"]["rlimits"] = [{"type": name, "soft": soft, "hard": hard}]

    line = next(ln for ln in kit.sh("cat /proc/self/limits", limits).out.splitlines() if ln.startswith(label))
    values = line[len(label) :].split()[:2]
    assert values == [str(soft), str(hard)], line


def test_rlimit_above_host_hard_is_not_dropped(kit):
    host_hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    want = host_hard + 1000

    def limits(cfg):
        cfg["process"]["rlimits"] = [{"type": "RLIMIT_NOFILE", "soft": want, "hard": want}]

    res = kit.sh("ulimit -Hn", limits)
    assert res.rc != 0 or res.out.strip() == str(want), "limit silently dropped"


def test_rlimit_soft_above_hard_fails(kit):
    def limits(cfg):
        cfg["process"]["rlimits"] = [{"type": "RLIMIT_NOFILE", "soft": 800, "hard": 400}]

    kit.sh("true", limits).expect_fail()


def test_rlimit_unknown_type_fails(kit):
    def limits(cfg):
        cfg["process"]["rlimits"] = [{"type": "RLIMIT_BOGUS", "soft": 1, "hard": 1}]

    kit.sh("true", limits).expect_fail()


# -- capabilities ----------------------------------------------------------------------------------------

SETS = {
    "bounding": "CapBnd",
    "effective": "CapEff",
    "permitted": "CapPrm",
    "inheritable": "CapInh",
    "ambient": "CapAmb",
}
PICK = ["CAP_CHOWN", "CAP_KILL", "CAP_NET_RAW"]


@pytest.mark.parametrize("capset", list(SETS))
def test_capability_set(kit, capset):
    def caps(cfg):
        cfg["process"]["capabilities"] = {s: list(PICK) for s in SETS}

    assert int(status_field(kit, SETS[capset], caps), 16) == cap_mask(PICK)


def test_capabilities_empty_gives_no_effective(kit):
    def caps(cfg):
        cfg["process"]["capabilities"] = {}

    assert int(status_field(kit, "CapEff", caps), 16) == 0


def test_capability_bounding_limits_to_listed(kit):
    def caps(cfg):
        cfg["process"]["capabilities"] = {
            "bounding": ["CAP_KILL"],
            "effective": ["CAP_KILL"],
            "permitted": ["CAP_KILL"],
        }

    assert int(status_field(kit, "CapBnd", caps), 16) == cap_mask(["CAP_KILL"])


def test_missing_cap_chown_denies_chown(kit):
    res = kit.sh("touch /tmp/f; chown 1 /tmp/f 2>&1; echo rc=$?")
    assert "rc=0" not in res.out


def test_granted_cap_chown_allows_chown(kit):
    def caps(cfg):
        for s in ("bounding", "effective", "permitted"):
            cfg["process"]["capabilities"][s].append("CAP_CHOWN")

    res = kit.sh("touch /tmp/f; chown 1 /tmp/f && stat -c %u /tmp/f", caps)
    assert res.out.strip() == "1"


def test_ambient_caps_for_non_root(kit):
    def caps(cfg):
        cfg["process"]["user"] = {"uid": 1000, "gid": 1000}
        cfg["process"]["capabilities"] = {s: ["CAP_NET_BIND_SERVICE"] for s in SETS}

    assert int(status_field(kit, "CapEff", caps), 16) == cap_mask(["CAP_NET_BIND_SERVICE"])


def test_non_root_without_ambient_has_no_effective(kit):
    def caps(cfg):
        cfg["process"]["user"] = {"uid": 1000, "gid": 1000}
        cfg["process"]["capabilities"] = {
            s: ["CAP_NET_BIND_SERVICE"] for s in ("bounding", "effective", "permitted", "inheritable")
        }

    assert int(status_field(kit, "CapAmb", caps), 16) == 0


# -- noNewPrivileges, oomScoreAdj ------------------------------------------------------------------------


@pytest.mark.parametrize("flag,shown", [(True, "1"), (False, "0")])
def test_no_new_privileges(kit, flag, shown):
    def nnp(cfg):
        cfg["process"]["noNewPrivileges"] = flag

    assert status_field(kit, "NoNewPrivs", nnp) == shown


@pytest.mark.parametrize("score", [100, 500, 1000])
def test_oom_score_adj(kit, score):
    def oom(cfg):
        cfg["process"]["oomScoreAdj"] = score

    assert kit.sh("cat /proc/self/oom_score_adj", oom).out.strip() == str(score)


# -- scheduling extras (spec 1.2/1.3) --------------------------------------------------------------------


def test_io_priority(kit):
    def prio(cfg):
        cfg["process"]["ioPriority"] = {"class": "IOPRIO_CLASS_IDLE", "priority": 0}

    assert kit.sh("ionice -p $$", prio).out.strip().startswith("idle")


def test_scheduler_policy(kit):
    def sched(cfg):
        cfg["process"]["scheduler"] = {"policy": "SCHED_BATCH"}

    line = kit.sh("grep ^policy /proc/self/sched", sched).out
    assert line.split(":")[-1].strip() == "3", line


def test_exec_cpu_affinity(kit):
    """config.md: execCPUAffinity is "not applicable to the container's init process";
    it applies to processes run by exec."""
    if os.cpu_count() < 2:
        kit.skip_host("only one CPU")
    import json

    ctr = kit.started("sleep 300")
    proc = {
        "terminal": False,
        "user": {"uid": 0, "gid": 0},
        "args": ["grep", "^Cpus_allowed_list:", "/proc/self/status"],
        "env": ["PATH=/bin"],
        "cwd": "/",
        "execCPUAffinity": {"initial": "0", "final": "0"},
    }
    path = kit.fresh("process", ".json")
    path.write_text(json.dumps(proc))
    res = kit.cli("exec", "--process", str(path), ctr.id)
    assert res.rc == 0, res
    assert res.out.split(":", 1)[1].strip() == "0"


def test_exec_cpu_affinity_not_applied_to_init(kit):
    if os.cpu_count() < 2:
        kit.skip_host("only one CPU")

    def aff(cfg):
        cfg["process"]["execCPUAffinity"] = {"initial": "0", "final": "0"}

    assert status_field(kit, "Cpus_allowed_list", aff) != "0"


# -- LSMs ------------------------------------------------------------------------------------------------


def test_apparmor_profile_applied(kit):
    if not _host.lsm_enabled("apparmor"):
        kit.skip_host("no AppArmor LSM")

    def aa(cfg):
        cfg["process"]["apparmorProfile"] = "unconfined"

    assert "unconfined" in kit.sh("cat /proc/self/attr/current", aa).out


def test_selinux_label_applied(kit):
    if not _host.lsm_enabled("selinux"):
        kit.skip_host("no SELinux LSM")

    def se(cfg):
        cfg["process"]["selinuxLabel"] = "system_u:system_r:container_t:s0"

    assert "container_t" in kit.sh("cat /proc/self/attr/current", se).out


def test_apparmor_profile_without_apparmor_is_an_error(kit):
    if _host.lsm_enabled("apparmor"):
        kit.skip_host("AppArmor present (this case checks a host without it)")

    def aa(cfg):
        cfg["process"]["apparmorProfile"] = "bock-conf-no-such-profile"

    kit.sh("true", aa).expect_fail()  # a profile that cannot be applied must not be dropped silently


# -- terminal --------------------------------------------------------------------------------------------


def tty_container(kit, script, size=None):
    cfg = kit.config(script)
    cfg["process"]["terminal"] = True
    if size:
        cfg["process"]["consoleSize"] = {"height": size[0], "width": size[1]}
    sock = kit.console_socket()
    ctr = kit.create(cfg, "--console-socket", str(sock.path))
    got = sock.receive()
    kit.on_cleanup(got.close)
    return ctr, got


def test_console_socket_receives_one_fd(kit):
    _, got = tty_container(kit, "sleep 300")
    assert len(got.fds) == 1


def test_console_fd_is_pty_master(kit):
    _, got = tty_container(kit, "sleep 300")
    assert pty_number(got.fds[0]) >= 0


def test_terminal_output_reaches_master(kit):
    ctr, got = tty_container(kit, "echo through-the-pty; sleep 300")
    ctr.start().expect_ok()
    assert b"through-the-pty" in read_until(got.fds[0], b"through-the-pty")


def test_terminal_input_reaches_process(kit):
    ctr, got = tty_container(kit, "read line; echo got:$line; sleep 300")
    ctr.start().expect_ok()
    time.sleep(0.2)
    os.write(got.fds[0], b"ping\n")
    assert b"got:ping" in read_until(got.fds[0], b"got:ping")


def test_terminal_stdin_is_a_tty(kit):
    ctr, got = tty_container(kit, "test -t 0 && echo is-tty; sleep 300")
    ctr.start().expect_ok()
    assert b"is-tty" in read_until(got.fds[0], b"is-tty")


def test_terminal_console_size(kit):
    ctr, got = tty_container(kit, "stty size; sleep 300", size=(33, 111))
    ctr.start().expect_ok()
    out = read_until(got.fds[0], b"111")
    assert b"33 111" in out or window_size(got.fds[0]) == (33, 111), out


def test_terminal_dev_console_is_the_pty(kit):
    ctr, got = tty_container(kit, "stat -c %t /dev/console; sleep 300")
    ctr.start().expect_ok()
    out = read_until(got.fds[0], b"\n")
    assert b"88" in out, out  # major 136 = 0x88 (a /dev/pts slave)


def test_terminal_is_controlling_tty(kit):
    ctr, got = tty_container(kit, "tty; sleep 300")
    ctr.start().expect_ok()
    assert b"/dev/pts/" in read_until(got.fds[0], b"/dev/pts/")

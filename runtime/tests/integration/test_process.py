"""The process: hostname/domainname, args, env, cwd, user, umask, rlimits, oomScoreAdj,
noNewPrivileges, and a terminal whose pty master comes over --console-socket."""

from __future__ import annotations

import os
import subprocess

import pytest
from _support.console import ConsoleSocket, read_until

pytestmark = pytest.mark.root


def status_fields(out: str) -> dict[str, str]:
    return {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in out.splitlines()) if _}


def test_hostname_and_domainname(runtime, bundle):
    b = bundle("sh", "-c", "hostname; cat /proc/sys/kernel/domainname")
    b.config["hostname"] = "box"
    b.config["domainname"] = "example.org"
    b.save()
    assert runtime.run(b).ok().out.splitlines() == ["box", "example.org"]


def test_args_are_passed_verbatim(runtime, bundle):
    args = ["a b", "", "--flag=1", "$HOME", "'quoted'", "ü", "*"]
    b = bundle("sh", "-c", 'for a in "$@"; do echo "[$a]"; done', "argv0", *args)
    assert runtime.run(b).ok().out.splitlines() == [f"[{a}]" for a in args]


def test_argv0(runtime, bundle):
    b = bundle("sh", "-c", "cat /proc/self/cmdline | tr '\\0' ' '")
    assert runtime.run(b).ok().out.startswith("cat /proc/self/cmdline")


def test_env_is_the_configured_one_plus_home(runtime, bundle):
    b = bundle("cat", "/proc/self/environ")
    b.config["process"]["env"] = ["PATH=/bin", "A=1", "B=with space", "EMPTY=", "HOME=/h"]
    b.save()
    got = runtime.run(b).ok().out.split("\0")[:-1]
    assert got == ["PATH=/bin", "A=1", "B=with space", "EMPTY=", "HOME=/h"]


def test_home_comes_from_the_containers_passwd_when_unset(runtime, bundle):
    # as runc: HOME is added, from the container's /etc/passwd ("/" for an unknown user)
    b = bundle("cat", "/proc/self/environ")
    b.config["process"]["env"] = ["PATH=/bin"]
    b.save()
    assert runtime.run(b).ok().out.split("\0")[:-1] == ["PATH=/bin", "HOME=/root"]
    b.config["process"]["user"] = {"uid": 4242, "gid": 4242}
    b.save()
    assert runtime.run(b).ok().out.split("\0")[:-1] == ["PATH=/bin", "HOME=/"]


def test_configured_home_is_kept(runtime, bundle):
    b = bundle("cat", "/proc/self/environ")
    b.config["process"]["env"] = ["PATH=/bin", "HOME=/custom"]
    b.config["process"]["user"] = {"uid": 1000, "gid": 1000}
    b.save()
    assert runtime.run(b).ok().out.split("\0")[:-1] == ["PATH=/bin", "HOME=/custom"]


def test_home_of_a_non_root_user_comes_from_passwd(runtime, bundle):
    b = bundle("sh", "-c", "echo $HOME")
    b.config["process"]["user"] = {"uid": 1000, "gid": 1000}
    b.save()
    assert runtime.run(b).ok().out == "/home/user\n"


def test_env_path_is_used_to_find_the_program(runtime, bundle):
    b = bundle("busybox-alias")
    os.makedirs(os.path.join(b.rootfs, "opt", "tools"))
    os.symlink("/bin/busybox", os.path.join(b.rootfs, "opt", "tools", "busybox-alias"))
    b.config["process"]["env"] = ["PATH=/opt/tools"]
    b.save()
    res = runtime.run(b)
    assert "BusyBox" in res.out + res.err  # busybox ran (found through PATH)


def test_cwd(runtime, bundle):
    b = bundle("sh", "-c", "pwd; readlink /proc/self/cwd")
    b.config["process"]["cwd"] = "/home/user"
    b.save()
    assert runtime.run(b).ok().out.splitlines() == ["/home/user", "/home/user"]


def test_missing_cwd_is_created(runtime, bundle):
    b = bundle("pwd")
    b.config["process"]["cwd"] = "/new/work/dir"
    b.config["root"]["readonly"] = False
    b.save()
    assert runtime.run(b).ok().out == "/new/work/dir\n"
    assert os.path.isdir(os.path.join(b.rootfs, "new", "work", "dir"))


def test_relative_cwd_is_refused(runtime, bundle):
    b = bundle("pwd")
    b.config["process"]["cwd"] = "relative"
    b.save()
    res = runtime.run(b)
    assert res.rc == 1 and "cwd" in res.err


def test_user_uid_gid_additional_gids(runtime, bundle):
    b = bundle("sh", "-c", "grep -E '^(Uid|Gid|Groups):' /proc/self/status; id")
    b.config["process"]["user"] = {"uid": 1000, "gid": 1000, "additionalGids": [2000, 5]}
    b.save()
    out = runtime.run(b).ok().out
    f = status_fields(out)
    assert f["Uid"].split() == ["1000"] * 4
    assert f["Gid"].split() == ["1000"] * 4
    assert sorted(f["Groups"].split()) == ["2000", "5"]
    assert "uid=1000(user) gid=1000(user)" in out


def test_user_without_additional_gids_drops_root_groups(runtime, bundle):
    b = bundle("grep", "^Groups:", "/proc/self/status")
    b.config["process"]["user"] = {"uid": 1000, "gid": 1000}
    b.save()
    assert runtime.run(b).ok().out.split() == ["Groups:"]


def test_non_root_user_can_write_its_devices(runtime, bundle):
    b = bundle("sh", "-c", "echo x > /dev/null && echo ok")
    b.config["process"]["user"] = {"uid": 1000, "gid": 1000}
    b.save()
    assert runtime.run(b).ok().out == "ok\n"


@pytest.mark.parametrize(
    ("umask", "dir_mode", "file_mode"), [(0o027, "750", "640"), (0o077, "700", "600"), (0, "777", "666")]
)
def test_umask(runtime, bundle, umask, dir_mode, file_mode):
    b = bundle("sh", "-c", "umask; mkdir /tmp/d; touch /tmp/f; stat -c %a /tmp/d /tmp/f")
    b.config["process"]["user"]["umask"] = umask
    b.config["root"]["readonly"] = False
    b.save()
    out = runtime.run(b).ok().out.split()
    assert int(out[0], 8) == umask
    assert out[1:] == [dir_mode, file_mode]


def test_rlimits_lowered(runtime, bundle):
    b = bundle("sh", "-c", "grep -E 'Max (open files|processes|core file size)' /proc/self/limits")
    b.config["process"]["rlimits"] = [
        {"type": "RLIMIT_NOFILE", "soft": 100, "hard": 200},
        {"type": "RLIMIT_CORE", "soft": 0, "hard": 0},
        {"type": "RLIMIT_NPROC", "soft": 500, "hard": 1000},
    ]
    b.save()
    rows = {line[:26].strip(): line[26:].split()[:2] for line in runtime.run(b).ok().out.splitlines()}
    assert rows["Max open files"] == ["100", "200"]
    assert rows["Max core file size"] == ["0", "0"]
    assert rows["Max processes"] == ["500", "1000"]


def test_oom_score_adj(runtime, bundle):
    b = bundle("cat", "/proc/self/oom_score_adj")
    b.config["process"]["oomScoreAdj"] = 567
    b.save()
    assert runtime.run(b).ok().out == "567\n"


def test_oom_score_adj_unset_is_inherited(runtime, bundle):
    b = bundle("cat", "/proc/self/oom_score_adj")
    b.config["process"].pop("oomScoreAdj", None)
    b.save()
    with open("/proc/self/oom_score_adj") as f:
        mine = f.read()
    assert runtime.run(b).ok().out == mine


@pytest.mark.parametrize(("nnp", "expected"), [(True, "1"), (False, "0")])
def test_no_new_privileges(runtime, bundle, nnp, expected):
    b = bundle("grep", "NoNewPrivs", "/proc/self/status")
    b.config["process"]["noNewPrivileges"] = nnp
    b.save()
    assert runtime.run(b).ok().out.split() == ["NoNewPrivs:", expected]


# -- terminal -----------------------------------------------------------------------------


@pytest.mark.parametrize("sealed", [False, True], ids=["plain", "sealed-init"])
def test_terminal_over_console_socket(runtime, bundle, tmp_path, sealed):
    """``sealed``: CAP_SYS_PTRACE makes the init re-exec a sealed interpreter (bock._init.exeseal)
    first; the console socket fd and the pty set-up must survive it."""
    b = bundle(
        "sh",
        "-c",
        "tty; [ -t 0 ] && [ -t 1 ] && echo stdio-is-a-tty; stat -c '%t %T' /dev/console; "
        "stty size; read line; echo got:$line; sleep 0.2",
    )
    b.config["process"]["terminal"] = True
    b.config["process"]["consoleSize"] = {"height": 33, "width": 111}
    if sealed:
        for kind in ("bounding", "effective", "permitted"):
            b.config["process"]["capabilities"][kind].append("CAP_SYS_PTRACE")
    b.save()
    console = ConsoleSocket(str(tmp_path / "console.sock"))
    cid = runtime.new_id()
    master = None
    try:
        with open(b.out_path, "w") as out:
            proc = subprocess.Popen(
                [
                    runtime.binary,
                    "--root",
                    runtime.root,
                    "create",
                    "--bundle",
                    b.path,
                    "--console-socket",
                    console.path,
                    cid,
                ],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=out,
            )
            master, name = console.receive()
            assert proc.wait(timeout=30) == 0, b.output()
        assert name  # runc sends the pty's name with the fd
        runtime.start(cid)
        text = read_until(master, b"33 111")
        assert b"/dev/pts/0" in text
        assert b"stdio-is-a-tty" in text
        assert b"88 0" in text or b"88 1" in text  # /dev/console is a pty slave (major 136 = 0x88)
        os.write(master, b"hello\n")
        assert b"got:hello" in read_until(master, b"got:hello")
        assert b.output() == ""  # nothing went to the non-terminal stdio
    finally:
        if master is not None:
            os.close(master)
        console.close()


def test_terminal_needs_a_console_socket(runtime, bundle):
    b = bundle("true")
    b.config["process"]["terminal"] = True
    b.save()
    assert "console socket" in runtime.create_fails(b).err


def test_console_socket_without_terminal_is_refused(runtime, bundle, tmp_path):
    b = bundle("true")
    console = ConsoleSocket(str(tmp_path / "c.sock"))
    try:
        assert "console socket" in runtime.create_fails(b, "--console-socket", console.path).err
    finally:
        console.close()


def test_run_with_a_terminal_proxies_it(runtime, bundle):
    b = bundle("sh", "-c", "tty; echo done")
    b.config["process"]["terminal"] = True
    b.save()
    res = runtime.run(b).ok()
    assert res.out.replace("\r\n", "\n") == "/dev/pts/0\ndone\n"


def test_console_exists_with_a_terminal(runtime, bundle):
    b = bundle("sh", "-c", "ls /dev; readlink /proc/self/fd/0")
    b.config["process"]["terminal"] = True
    b.save()
    out = runtime.run(b).ok().out.replace("\r", "").split()
    assert "console" in out and "/dev/pts/0" in out


def test_signals_start_default_like_runc(runtime, bundle):
    """Python ignores SIGPIPE and SIGXFSZ; the container's process must not inherit that."""
    out = runtime.run(bundle("grep", "-E", "^Sig(Ign|Blk|Cgt):", "/proc/self/status")).ok().out
    assert status_fields(out) == {"SigIgn": "0" * 16, "SigBlk": "0" * 16, "SigCgt": "0" * 16}


def test_sigpipe_kills_a_writer_to_a_closed_pipe(runtime, bundle):
    res = runtime.run(bundle("sh", "-c", '(yes; echo "yes-exited=$?" >&2) | head -n 1')).ok()
    assert res.out == "y\n"
    assert "yes-exited=141" in res.err  # killed by SIGPIPE (128 + 13), not a write error


def test_run_with_a_terminal_exit_code_and_input(runtime, bundle):
    b = bundle("sh", "-c", "read x; echo got:$x; exit 5")
    b.config["process"]["terminal"] = True
    b.save()
    res = runtime("run", "--bundle", b.path, runtime.new_id(), input="hello\n")
    assert res.rc == 5, res
    assert "got:hello" in res.out


def test_env_entry_without_equals_is_refused_like_runc(runtime, bundle):
    b = bundle("true")
    b.config["process"]["env"] = ["PATH=/bin", "NOEQUALS"]
    b.save()
    assert 'invalid environment variable: \\"NOEQUALS\\"' in runtime.create_fails(b).err


def test_own_session_keyring(runtime, bundle):
    """runc joins a new session keyring _ses.<id> (the caller's keys are not the container's)."""
    b = bundle("cat", "/proc/keys")
    b.config["linux"]["maskedPaths"] = []
    b.save()
    cid = runtime.new_id()
    keys = runtime.run(b, cid).ok().out
    mine = [line for line in keys.splitlines() if line.endswith(f"_ses.{cid}: empty")]
    assert len(mine) == 1, keys
    assert int(mine[0].split()[4], 16) & 0x80000  # searchable by the possessor's uid


def test_no_new_keyring_keeps_the_callers(runtime, bundle):
    b = bundle("cat", "/proc/keys")
    b.config["linux"]["maskedPaths"] = []
    b.save()
    cid = runtime.new_id()
    keys = runtime.run(b, cid, "--no-new-keyring").ok().out
    assert f"_ses.{cid}" not in keys

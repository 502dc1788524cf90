"""CVE-2019-5736 class: between create and start the container's init is a host Python
process. From inside a container, /proc/<init>/exe must not give a way to overwrite the
host's interpreter.

The attacker is a second container that joins the first one's pid namespace while the
first is ``created``: it sees the waiting init as pid 1. bock's init is non-dumpable
(PR_SET_DUMPABLE 0) until execve, so only a process with CAP_SYS_PTRACE over it can open
its /proc/<pid>/exe. An init whose container may hold CAP_SYS_PTRACE runs a sealed copy
of the interpreter (bock._init.exeseal: a detached read-only overlayfs), so opening its
exe for writing fails with EROFS; a process that may hold CAP_SYS_PTRACE is refused next
to an init that waits unsealed.
"""

from __future__ import annotations

import errno
import hashlib
import os

import pytest

pytestmark = pytest.mark.root

PROBE = (
    "cat /proc/1/cmdline | tr '\\0' ' '; echo; "
    "if cat /proc/1/exe > /dev/null 2>&1; then echo read=ok; else echo read=denied; fi; "
    # open for appending, write nothing: the attack's first step, harmless if it succeeds
    "if ( exec 3>>/proc/1/exe ) 2>/dev/null; then echo write=ok; else echo write=denied; fi; "
    "if readlink /proc/1/exe > /dev/null 2>&1; then echo link=ok; else echo link=denied; fi; "
    "if ls /proc/1/fd/ > /dev/null 2>&1; then echo fds=ok; else echo fds=denied; fi"
)
# With CAP_SYS_PTRACE the link opens: try every way to a writable handle, report the error
# text. The append-open writes nothing: harmless if it ever succeeded.
PTRACE_PROBE = (
    "cat /proc/1/cmdline | tr '\\0' ' '; echo; "
    "echo link=$(readlink /proc/1/exe); "
    "( exec 3>>/proc/1/exe ) 2>&1 | sed 's/^/write=/'; "
    # CVE-2019-5736's own step: an O_PATH-like handle kept, reopened for writing later
    "exec 4</proc/1/exe; ( exec 5>>/proc/self/fd/4 ) 2>&1 | sed 's/^/reopen=/'; "
    "for m in /proc/1/map_files/*; do ( exec 6>>$m ) 2>&1 | sed 's/^/mapfile=/'; break; done; "
    "echo done=1"
)


def sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _attack(runtime, bundle, user: dict, caps: list[str] | None) -> tuple[dict, str, str, str]:
    victim = bundle("true", name="victim")
    first = runtime.create(victim)
    pid = runtime.state(first)["pid"]
    exe = os.path.realpath(f"/proc/{pid}/exe")
    before = sha256(exe)
    b = bundle("sh", "-c", PROBE, name="attacker")
    b.set_namespace("pid", f"/proc/{pid}/ns/pid")
    b.config["process"]["user"] = user
    if caps is not None:
        for kind in ("bounding", "effective", "permitted"):
            b.config["process"]["capabilities"][kind] = list(caps)
    b.config["process"]["noNewPrivileges"] = False
    b.save()
    res = runtime.run(b).ok()
    assert runtime.status(first) == "created"  # the victim still waits
    after = sha256(exe)
    lines = res.out.splitlines()
    result = dict(line.split("=", 1) for line in lines[1:] if "=" in line)
    return result, lines[0], before, after


def test_non_root_in_the_container_cannot_reach_the_init_exe(runtime, bundle):
    got, cmdline, before, after = _attack(runtime, bundle, {"uid": 1000, "gid": 1000}, None)
    assert "bock" in cmdline or "python" in cmdline  # it really sees the waiting init as pid 1
    assert got["read"] == "denied"
    assert got["write"] == "denied"
    assert got["link"] == "denied"
    assert got["fds"] == "denied"
    assert before == after


def _has_caps() -> bool:
    from _support.bock import binary_has

    return binary_has("bock._security.caps")


@pytest.mark.xfail(
    not _has_caps(),
    reason="without bock._security.caps (issue 3) capabilities are not dropped: root keeps CAP_SYS_PTRACE",
    strict=True,
)
def test_root_without_cap_sys_ptrace_cannot_reach_the_init_exe(runtime, bundle):
    caps = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_DAC_OVERRIDE", "CAP_CHOWN"]
    got, _cmdline, before, after = _attack(runtime, bundle, {"uid": 0, "gid": 0}, caps)
    assert got["write"] == "denied"
    assert before == after
    assert got["read"] == "denied"  # non-dumpable: no ptrace access without CAP_SYS_PTRACE
    assert got["link"] == "denied"


def _interpreter(runtime) -> str:
    """The host interpreter bock runs on (its shebang), resolved."""
    with open(runtime.binary, "rb") as f:
        first = f.readline().decode()
    return os.path.realpath(first[2:].split()[0])


def _same_file(a: str, b: str) -> bool:
    sa, sb = os.stat(a), os.stat(b)
    return (sa.st_dev, sa.st_ino) == (sb.st_dev, sb.st_ino)


def _mounts_of(pid: int | str, needle: str) -> list[str]:
    with open(f"/proc/{pid}/mountinfo") as f:
        return [line for line in f if needle in line]


PTRACE_CAPS = ["CAP_SYS_PTRACE", "CAP_DAC_OVERRIDE", "CAP_KILL"]


def _with_caps(b, caps: list[str]) -> None:
    for kind in ("bounding", "effective", "permitted"):
        b.config["process"]["capabilities"][kind] = list(caps)
    b.config["process"]["noNewPrivileges"] = False
    b.save()


def test_root_with_cap_sys_ptrace_cannot_write_the_sealed_init_exe(runtime, bundle):
    """The victim may hold CAP_SYS_PTRACE, so its waiting init runs a sealed interpreter; an
    attacker granted CAP_SYS_PTRACE in its pid namespace opens /proc/1/exe but never for
    writing, and the host's interpreter is untouched."""
    interpreter = _interpreter(runtime)
    pydir = os.path.dirname(interpreter)
    host_mounts = _mounts_of("self", f"lowerdir={pydir}")
    victim = bundle("true", name="victim")
    _with_caps(victim, PTRACE_CAPS)
    first = runtime.create(victim)
    pid = runtime.state(first)["pid"]
    assert not _same_file(f"/proc/{pid}/exe", interpreter)  # a copy, not the host file
    with open(f"/proc/{pid}/exe", "rb") as exe, open(interpreter, "rb") as host:
        assert exe.read(1 << 16) == host.read(1 << 16)  # ... of the same interpreter
    try:
        os.close(os.open(f"/proc/{pid}/exe", os.O_WRONLY | os.O_APPEND))
        raise AssertionError("the waiting init's exe opened for writing from the host")
    except OSError as err:
        assert err.errno == errno.EROFS, err
    # the detached overlay shows in no mount table: neither the host's nor the init's
    assert _mounts_of("self", f"lowerdir={pydir}") == host_mounts
    assert _mounts_of(pid, f"lowerdir={pydir}") == []
    before = sha256(interpreter)
    b = bundle("sh", "-c", PTRACE_PROBE, name="attacker")
    b.set_namespace("pid", f"/proc/{pid}/ns/pid")
    _with_caps(b, PTRACE_CAPS)
    res = runtime.run(b).ok()
    assert runtime.status(first) == "created"  # the victim still waits
    lines = res.out.splitlines()
    assert "python" in lines[0]  # it really sees the waiting init as pid 1
    got = dict(line.split("=", 1) for line in lines[1:] if "=" in line)
    assert got["done"] == "1"
    assert got["link"] and got["link"] != interpreter  # with CAP_SYS_PTRACE the link opens ...
    assert "Read-only file system" in got["write"]  # ... but not for writing
    assert "Read-only file system" in got["reopen"]
    # /proc/<pid>/map_files needs CAP_SYS_ADMIN (or CAP_CHECKPOINT_RESTORE) in the host's
    # user namespace: a container granted that can mount the host's disks anyway
    assert "Operation not permitted" in got["mapfile"]
    assert sha256(interpreter) == before
    runtime.start(first)


def test_ptrace_joiner_next_to_an_unsealed_init_is_refused(runtime, bundle):
    """The victim has no CAP_SYS_PTRACE (its init waits unsealed, non-dumpable): a container
    that joins its pid namespace with CAP_SYS_PTRACE is refused, and leaves nothing."""
    victim = bundle("true", name="victim")
    first = runtime.create(victim)
    pid = runtime.state(first)["pid"]
    assert _same_file(f"/proc/{pid}/exe", _interpreter(runtime))  # the default: no re-exec
    b = bundle("true", name="attacker")
    b.set_namespace("pid", f"/proc/{pid}/ns/pid")
    _with_caps(b, PTRACE_CAPS)
    res = runtime.create_fails(b)
    assert "refusing a process that may hold CAP_SYS_PTRACE" in res.err
    assert "CVE-2019-5736" in res.err
    assert sorted(os.listdir(runtime.root)) == [first]  # no state left behind
    # without CAP_SYS_PTRACE the same join is fine
    b2 = bundle("true", name="friend")
    b2.set_namespace("pid", f"/proc/{pid}/ns/pid")
    runtime.run(b2).ok()


def test_exec_with_cap_sys_ptrace_into_a_created_container(runtime, bundle):
    """exec --cap CAP_SYS_PTRACE: refused while an unsealed init waits; into a sealed one it
    runs (its helper sealed too) and cannot write the init's exe."""
    plain = runtime.create(bundle("true", name="plain"))
    res = runtime("exec", "--cap", "CAP_SYS_PTRACE", plain, "true")
    assert res.rc != 0 and "refusing a process that may hold CAP_SYS_PTRACE" in res.err
    runtime("exec", plain, "true").ok()  # without it: allowed (the init is non-dumpable)
    b = bundle("true", name="sealed")
    _with_caps(b, PTRACE_CAPS)
    sealed = runtime.create(b)
    res = runtime("exec", sealed, "sh", "-c", "( exec 3>>/proc/1/exe ) 2>&1; readlink /proc/1/exe").ok()
    assert "Read-only file system" in res.out
    assert "python" in res.out


def test_failed_and_deleted_sealed_creates_leave_no_mount(runtime, bundle):
    interpreter = _interpreter(runtime)
    needle = f"lowerdir={os.path.dirname(interpreter)}"
    host = _mounts_of("self", needle)
    b = bundle("no-such-binary", name="broken")
    _with_caps(b, PTRACE_CAPS)
    res = runtime.create_fails(b)
    assert "no-such-binary" in res.err and "executable file not found in $PATH" in res.err
    b = bundle("true", name="fine")
    _with_caps(b, PTRACE_CAPS)
    cid = runtime.create(b)
    runtime("delete", "--force", cid).ok()
    assert _mounts_of("self", needle) == host


def test_the_started_process_is_the_users_not_the_interpreter(runtime, bundle):
    """After start, /proc/<pid>/exe is the container's program, not the host's Python."""
    b = bundle("sleep", "60")
    cid = runtime.create(b)
    pid = runtime.state(cid)["pid"]
    assert "python" in os.path.basename(os.path.realpath(f"/proc/{pid}/exe"))
    with open(f"/proc/{pid}/status") as f:
        assert "\nNSpid:" in f.read()
    runtime.start(cid)
    import time

    deadline = time.monotonic() + 10
    while "python" in os.readlink(f"/proc/{pid}/exe"):
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert os.readlink(f"/proc/{pid}/exe").endswith("/bin/busybox")


def test_the_waiting_init_is_not_dumpable(runtime, bundle):
    """Checked from the host: a non-root host process cannot read the waiting init's exe."""
    cid = runtime.create(bundle("sleep", "60"))
    pid = runtime.state(cid)["pid"]
    child = os.fork()
    if child == 0:
        try:
            os.setgid(65534)
            os.setuid(65534)
            try:
                os.open(f"/proc/{pid}/exe", os.O_RDONLY)
                os._exit(1)
            except PermissionError:
                os._exit(0)
        except BaseException:
            os._exit(2)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def test_the_sealed_init_applies_seccomp_and_the_rest_of_the_config(runtime, bundle):
    """The re-exec'd init carries the whole context: a seccomp filter (its program is rebuilt
    in the new image), hostname, env, cwd, user and the exec.fifo handshake."""
    b = bundle("sh", "-c", "hostname; echo $FOO; pwd; id -u; mkdir /tmp/x 2>&1 || echo blocked", name="full")
    _with_caps(b, PTRACE_CAPS)
    b.config["hostname"] = "sealed-host"
    b.config["process"]["env"].append("FOO=bar")
    b.config["process"]["cwd"] = "/tmp"
    b.config["process"]["user"] = {"uid": 1000, "gid": 1000}
    b.config["linux"]["seccomp"] = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}],
    }
    b.save()
    cid = runtime.create(b)
    pid = runtime.state(cid)["pid"]
    assert not _same_file(f"/proc/{pid}/exe", _interpreter(runtime))  # really the sealed path
    runtime.start(cid)
    import time

    deadline = time.monotonic() + 10
    while runtime.status(cid) != "stopped":
        assert time.monotonic() < deadline
        time.sleep(0.01)
    res = runtime.run(b).ok()
    lines = res.out.splitlines()
    assert lines[:4] == ["sealed-host", "bar", "/tmp", "1000"]
    assert "Operation not permitted" in lines[4] and lines[5] == "blocked"


def test_exec_through_a_sealed_helper_keeps_its_options(runtime, bundle, tmp_path):
    """A container that may hold CAP_SYS_PTRACE: every exec helper re-executes sealed first;
    user, env, cwd, --preserve-fds and the runtime-exe refusal come through it."""
    b = bundle("sleep", "60", name="running")
    _with_caps(b, PTRACE_CAPS)
    cid = runtime.create(b)
    runtime.start(cid)
    path = tmp_path / "through-fd"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    try:
        res = runtime(
            "exec", "-u", "1000:1000", "-e", "FOO=bar", "--cwd", "/tmp", "--preserve-fds", "1", cid,
            "sh", "-c", "id -u; echo $FOO; pwd; echo via-fd >&3; ls /proc/self/fd | tr '\\n' ' '",
            fd_map={3: fd},
        ).ok()  # fmt: skip
    finally:
        os.close(fd)
    lines = res.out.splitlines()
    assert lines[:3] == ["1000", "bar", "/tmp"]
    assert sorted(int(x) for x in lines[3].split()) == [0, 1, 2, 3, 4]  # ls's own dir fd is the 5th
    assert path.read_text() == "via-fd\n"
    refused = runtime("exec", cid, "/proc/self/exe", "--version")
    assert refused.rc != 0 and "CVE-2019-5736" in refused.err


MEMFD_PROBE = (
    "echo link=$(readlink /proc/1/exe); echo size=$(wc -c < /proc/1/exe); "
    "( echo x >> /proc/1/exe ) 2>&1 | sed 's/^/write=/'; "
    # CVE-2019-5736's own step: keep a handle, wait for the init to exec, then write through it
    "exec 4</proc/1/exe; echo waiting=1; i=0; "
    "while readlink /proc/1/exe | grep -q memfd && [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done; "
    "echo now=$(readlink /proc/1/exe); "
    "( echo x >> /proc/self/fd/4 ) 2>&1 | sed 's/^/append=/'; "
    "( exec 5<>/proc/self/fd/4; echo x >&5 ) 2>&1 | sed 's/^/overwrite=/'; "
    "echo after=$(wc -c < /proc/self/fd/4)"
)


def test_without_overlayfs_the_init_runs_a_sealed_memfd_copy(runtime, bundle):
    """The fallback, forced: ``bock create`` runs under a seccomp filter that fails fsopen(2)
    with ENOSYS, so the init copies the interpreter into a sealed memfd. An attacker granted
    CAP_SYS_PTRACE in its pid namespace cannot write it while the init runs (ETXTBSY), nor
    through a handle kept until the init has exec'd (the seals: EPERM), nor grow it."""
    import subprocess
    import time

    from bock._security.seccomp import SeccompFilter

    no_fsopen = SeccompFilter.compile(
        {
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["fsopen"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.ENOSYS}],
        }
    )
    interpreter = _interpreter(runtime)
    size = os.stat(interpreter).st_size
    victim = bundle("sleep", "5", name="victim")
    _with_caps(victim, PTRACE_CAPS)
    cid = runtime.new_id()
    with open(victim.out_path, "ab") as out:
        proc = subprocess.run(
            [runtime.binary, "--root", runtime.root, "create", "--bundle", victim.path, cid],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            preexec_fn=no_fsopen.load,  # root: CAP_SYS_ADMIN allows a filter without no_new_privs
            timeout=60,
        )
    assert proc.returncode == 0, victim.output()
    pid = runtime.state(cid)["pid"]
    assert os.readlink(f"/proc/{pid}/exe").startswith("/memfd:bock-init")
    with open(f"/proc/{pid}/exe", "rb") as exe, open(interpreter, "rb") as host:
        assert exe.read(1 << 16) == host.read(1 << 16)
    before = sha256(interpreter)
    b = bundle("sh", "-c", MEMFD_PROBE, name="attacker")
    b.set_namespace("pid", f"/proc/{pid}/ns/pid")
    _with_caps(b, PTRACE_CAPS)
    attacker = runtime.create(b)
    runtime.start(attacker)
    deadline = time.monotonic() + 20
    while "waiting=1" not in b.output():
        assert time.monotonic() < deadline, b.output()
        time.sleep(0.02)
    runtime.start(cid)  # the init execs sleep: the memfd is no longer anyone's exe
    while runtime.status(attacker) != "stopped":
        assert time.monotonic() < deadline, b.output()
        time.sleep(0.02)
    got = dict(line.split("=", 1) for line in b.output().splitlines() if "=" in line)
    assert got["link"].startswith("/memfd:bock-init"), got
    assert got["now"] == "/bin/busybox", got  # the handle outlived the init's interpreter
    assert "Text file busy" in got["write"]
    assert "Operation not permitted" in got["append"]
    assert "Operation not permitted" in got["overwrite"]
    assert int(got["size"]) == int(got["after"]) == size
    assert sha256(interpreter) == before

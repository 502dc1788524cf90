"""Capabilities, no_new_privs and seccomp applied to a real forked process (root).

Every test forks a child that does what the container init does (finalize_credentials,
set_no_new_privs, SeccompFilter.load) and then reports what the kernel says: its
``/proc/self/status``, the errno of a denied syscall, or its death by SIGSYS. Some
children exec /bin/busybox so that the state seen is the one a container process gets.
"""

from __future__ import annotations

import ctypes
import fcntl
import json
import os
import signal
import socket
import struct
import tempfile
import threading
import uuid

import pytest
from bock._security import caps as capmod
from bock._security.caps import CAP_NUMBERS, CapSets, finalize_credentials, set_no_new_privs
from bock._security.seccomp import SeccompFilter, pidfd_getfd, send_notify_fd
from bock._spec.config import Capabilities, User
from bock._spec.seccomp import LinuxSeccomp
from bock.errors import SystemError_

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root"),
    pytest.mark.skipif(os.uname().machine != "x86_64", reason="raw syscall numbers are x86_64"),
]

DATA = os.path.join(os.path.dirname(os.path.dirname(__file__)), "data")
BUSYBOX = "/bin/busybox"
_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long

PODMAN_CAPS = [
    "CAP_AUDIT_WRITE",
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_MKNOD",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_RAW",
    "CAP_SETFCAP",
    "CAP_SETGID",
    "CAP_SETPCAP",
    "CAP_SETUID",
    "CAP_SYS_CHROOT",
]


def mask(names: list[str]) -> int:
    return sum(1 << CAP_NUMBERS[n] for n in set(names))


def parse_status(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        out[key] = value.strip()
    return out


def status_caps(st: dict[str, str]) -> dict[str, int]:
    return {k: int(st[k], 16) for k in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")}


class Child:
    """Result of :func:`in_child`: how it ended and what it wrote."""

    def __init__(self, status: int, out: bytes) -> None:
        self.status = status
        self.out = out

    @property
    def exit_code(self) -> int | None:
        return os.waitstatus_to_exitcode(self.status) if os.WIFEXITED(self.status) else None

    @property
    def signal(self) -> int | None:
        return os.WTERMSIG(self.status) if os.WIFSIGNALED(self.status) else None

    def json(self) -> dict:
        assert self.exit_code == 0, (self.status, self.out)
        return json.loads(self.out)


def in_child(setup, *, argv: list[str] | None = None, after_fork=None, timeout: float = 20) -> Child:
    """Fork; in the child run ``setup()`` with stdout on a pipe, then exec ``argv`` or print its result.

    ``setup`` returns a JSON-able value (printed when there is no ``argv``). An exception
    is reported as ``{"error": "Type: text"}`` with exit status 99. ``after_fork(pid)``
    runs in the parent while the child runs.
    """
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never return into pytest
        code = 0
        try:
            os.close(r)
            os.dup2(w, 1)
            os.dup2(w, 2)
            result = setup()
            if argv is not None:
                os.execv(argv[0], argv)
            os.write(1, json.dumps(result).encode())
        except BaseException as e:
            os.write(1, json.dumps({"error": f"{type(e).__name__}: {e}"}).encode())
            code = 99
        os._exit(code)
    os.close(w)
    try:
        if after_fork is not None:
            after_fork(pid)
        timer = threading.Timer(timeout, lambda: os.kill(pid, signal.SIGKILL))
        timer.start()
        chunks = []
        while chunk := os.read(r, 65536):
            chunks.append(chunk)
        _, status = os.waitpid(pid, 0)
        timer.cancel()
    except BaseException:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        raise
    finally:
        os.close(r)
    return Child(status, b"".join(chunks))


def read_status() -> dict:
    with open("/proc/self/status") as f:
        return parse_status(f.read())


def caps_spec(names: list[str], ambient: list[str] = (), inheritable: list[str] = ()) -> Capabilities:
    return Capabilities.from_json(
        {
            "bounding": names,
            "effective": names,
            "permitted": names,
            "inheritable": list(inheritable),
            "ambient": list(ambient),
        }
    )


def seccomp(doc: dict) -> SeccompFilter:
    return SeccompFilter.compile(LinuxSeccomp.from_json(doc))


def profile(name: str) -> SeccompFilter:
    with open(os.path.join(DATA, name)) as f:
        return seccomp(json.load(f))


def errno_of(nr: int, *args: int) -> int:
    """Raw syscall ``nr``; 0 on success, else the errno."""
    ctypes.set_errno(0)
    ret = _libc.syscall(nr, *[ctypes.c_long(a) for a in args])
    return ctypes.get_errno() if ret < 0 else 0


# --- capabilities ----------------------------------------------------------------------


def test_root_with_podman_caps_after_exec():
    sets = CapSets.from_spec(caps_spec(PODMAN_CAPS))
    user = User.from_json({"uid": 0, "gid": 0, "additionalGids": [10, 20]})
    child = in_child(
        lambda: finalize_credentials(user, sets, no_new_privileges=True),
        argv=[BUSYBOX, "cat", "/proc/self/status"],
    )
    assert child.exit_code == 0, child.out
    st = parse_status(child.out.decode())
    want = mask(PODMAN_CAPS)
    assert status_caps(st) == {"CapInh": 0, "CapPrm": want, "CapEff": want, "CapBnd": want, "CapAmb": 0}
    assert st["NoNewPrivs"] == "1"
    assert st["Uid"].split() == ["0"] * 4 and st["Gid"].split() == ["0"] * 4
    assert st["Groups"].split() == ["10", "20"]


def test_non_root_user_with_ambient_caps_keeps_them_across_exec():
    names = ["CAP_NET_BIND_SERVICE", "CAP_KILL"]
    sets = CapSets.from_spec(caps_spec(names, ambient=["CAP_NET_BIND_SERVICE"], inheritable=names))
    user = User.from_json({"uid": 1000, "gid": 1001, "additionalGids": [1002]})
    child = in_child(
        lambda: finalize_credentials(user, sets, no_new_privileges=False),
        argv=[BUSYBOX, "cat", "/proc/self/status"],
    )
    assert child.exit_code == 0, child.out
    st = parse_status(child.out.decode())
    nbs = 1 << CAP_NUMBERS["CAP_NET_BIND_SERVICE"]
    # execve as non-root without file caps: permitted = effective = ambient.
    assert status_caps(st) == {
        "CapInh": mask(names),
        "CapPrm": nbs,
        "CapEff": nbs,
        "CapBnd": mask(names),
        "CapAmb": nbs,
    }
    assert st["Uid"].split() == ["1000"] * 4
    assert st["Gid"].split() == ["1001"] * 4
    assert st["Groups"].split() == ["1002"]
    assert st["NoNewPrivs"] == "0"


def test_non_root_user_caps_before_exec():
    # KEEPCAPS across setresuid, then capset: the user has the configured sets before execve.
    sets = CapSets.from_spec(caps_spec(PODMAN_CAPS))
    user = User.from_json({"uid": 1000, "gid": 1000})

    def setup():
        finalize_credentials(user, sets, no_new_privileges=True)
        return read_status()

    st = in_child(setup).json()
    want = mask(PODMAN_CAPS)
    assert status_caps(st) == {"CapInh": 0, "CapPrm": want, "CapEff": want, "CapBnd": want, "CapAmb": 0}
    assert st["Uid"].split() == ["1000"] * 4
    assert st["Groups"] == ""
    assert st["NoNewPrivs"] == "1"


def test_no_capabilities_in_spec_leaves_sets_alone():
    before = status_caps(read_status())
    user = User.from_json({"uid": 0, "gid": 0})
    child = in_child(
        lambda: finalize_credentials(user, CapSets.from_spec(None), no_new_privileges=False),
        argv=[BUSYBOX, "cat", "/proc/self/status"],
    )
    assert status_caps(parse_status(child.out.decode())) == before


def test_unknown_capability_is_ignored_and_the_rest_applied():
    spec = caps_spec(["CAP_KILL", "CAP_NO_SUCH_THING"])
    sets = CapSets.from_spec(spec)
    assert sets.warning() == "ignoring unknown or unavailable capabilities: [CAP_NO_SUCH_THING]"
    child = in_child(
        lambda: finalize_credentials(User(), sets, no_new_privileges=False),
        argv=[BUSYBOX, "cat", "/proc/self/status"],
    )
    caps = status_caps(parse_status(child.out.decode()))
    assert caps["CapEff"] == caps["CapBnd"] == 1 << CAP_NUMBERS["CAP_KILL"]


def test_capability_the_runtime_lacks_is_a_clear_error():
    own_bounding = status_caps(read_status())["CapBnd"]
    missing = [
        n for n, num in CAP_NUMBERS.items() if num <= capmod.last_cap() and not own_bounding >> num & 1
    ]
    if not missing:
        pytest.skip("this host's bounding set is full")
    sets = CapSets.from_spec(caps_spec(["CAP_KILL", missing[0]]))
    result = in_child(lambda: finalize_credentials(User(), sets, no_new_privileges=False))
    assert result.exit_code == 99
    err = json.loads(result.out)["error"]
    assert err.startswith("SystemError_: unable to apply caps: operation not permitted")
    assert f"permitted {missing[0]} not held by the runtime" in err


def test_ambient_that_cannot_be_raised_is_a_warning():
    # Ambient without inheritable: the kernel refuses the raise; runc only warns.
    sets = CapSets.from_spec(caps_spec(["CAP_KILL"], ambient=["CAP_KILL"]))
    warnings: list[str] = []

    def setup():
        finalize_credentials(User(), sets, no_new_privileges=False, warn=warnings.append)
        return {"warnings": warnings, "status": read_status()}

    out = in_child(setup).json()
    assert out["warnings"] == ["can't raise ambient capability CAP_KILL: operation not permitted"]
    assert int(out["status"]["CapAmb"], 16) == 0


@pytest.mark.parametrize(("uid", "gid", "kind"), [(0, 0, "uid"), (5, 99, "gid")])
def test_unmapped_user_in_user_namespace_error(uid, gid, kind):
    def setup():
        if _libc.unshare(0x10000000) < 0:  # CLONE_NEWUSER
            raise OSError(ctypes.get_errno(), "unshare")
        if kind == "gid":  # map the uid only
            with open("/proc/self/uid_map", "w") as f:
                f.write(f"{uid} 0 1")
        finalize_credentials(User.from_json({"uid": uid, "gid": gid}), None, no_new_privileges=False)

    result = in_child(setup)
    assert result.exit_code == 99
    err = json.loads(result.out)["error"]
    assert err == f"SystemError_: unable to setup user: cannot set {kind} to unmapped user in user namespace"


def test_no_new_privs_alone():
    def setup():
        set_no_new_privs()
        return read_status()["NoNewPrivs"]

    assert in_child(setup).json() == "1"


# --- seccomp ---------------------------------------------------------------------------

MKDIR, RMDIR, GETPGID, PERSONALITY, GETPPID, ACCT, UNAME = 83, 84, 121, 135, 110, 163, 63


def test_denied_mkdir_errno_and_seccomp_mode():
    flt = seccomp(
        {
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [
                {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"},
                {"names": ["rmdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 123},
            ],
        }
    )
    tmp = tempfile.mkdtemp(prefix="bock-t-")
    try:

        def setup():
            set_no_new_privs()
            flt.load()
            out = {"status": read_status()}
            try:
                os.mkdir(os.path.join(tmp, "x"))
                out["mkdir"] = 0
            except OSError as e:
                out["mkdir"] = e.errno
            out["rmdir"] = errno_of(RMDIR, 0)
            return out

        out = in_child(setup).json()
        assert out["status"]["Seccomp"] == "2"
        assert out["status"]["Seccomp_filters"] == "1"
        assert out["mkdir"] == 1  # EPERM: SCMP_ACT_ERRNO without errnoRet
        assert out["rmdir"] == 123
        assert not os.path.exists(os.path.join(tmp, "x"))
    finally:
        os.rmdir(tmp)


def test_busybox_mkdir_sees_the_errno():
    flt = seccomp(
        {
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}],
        }
    )
    tmp = tempfile.mkdtemp(prefix="bock-t-")
    try:
        child = in_child(lambda: [set_no_new_privs(), flt.load()], argv=[BUSYBOX, "mkdir", f"{tmp}/d"])
        assert child.exit_code == 1
        assert b"Permission denied" in child.out
    finally:
        os.rmdir(tmp)


def test_personality_denied_only_for_one_argument():
    flt = seccomp(
        {
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [
                {
                    "names": ["personality"],
                    "action": "SCMP_ACT_ERRNO",
                    "errnoRet": 22,
                    "args": [{"index": 0, "value": 0x0040000, "op": "SCMP_CMP_EQ"}],  # ADDR_NO_RANDOMIZE
                }
            ],
        }
    )

    def setup():
        set_no_new_privs()
        flt.load()
        return {"query": errno_of(PERSONALITY, 0xFFFFFFFF), "norandom": errno_of(PERSONALITY, 0x0040000)}

    assert in_child(setup).json() == {"query": 0, "norandom": 22}


@pytest.mark.parametrize(
    ("op", "value", "value_two", "denied", "allowed"),
    [
        ("SCMP_CMP_EQ", 5, 0, [5], [4, 6]),
        ("SCMP_CMP_NE", 5, 0, [4, 6], [5]),
        ("SCMP_CMP_LT", 5, 0, [4], [5, 6]),
        ("SCMP_CMP_LE", 5, 0, [4, 5], [6]),
        ("SCMP_CMP_GT", 5, 0, [6], [4, 5]),
        ("SCMP_CMP_GE", 5, 0, [5, 6], [4]),
        ("SCMP_CMP_MASKED_EQ", 0xF0, 0x20, [0x21, 0x2F], [0x30, 0x1F]),
    ],
)
def test_every_operator_in_the_kernel(op, value, value_two, denied, allowed):
    # getpgid(pid): when allowed, 0 or ESRCH (whether that pid exists); 77 when the filter says no.
    arg = {"index": 0, "value": value, "valueTwo": value_two, "op": op}
    flt = seccomp(
        {
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["getpgid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 77, "args": [arg]}],
        }
    )

    def setup():
        set_no_new_privs()
        flt.load()
        return {str(v): errno_of(GETPGID, v) for v in denied + allowed}

    out = in_child(setup).json()
    for v in denied:
        assert out[str(v)] == 77, (op, v)
    for v in allowed:
        assert out[str(v)] != 77, (op, v)


def test_two_args_on_one_rule_are_anded():
    flt = seccomp(
        {
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [
                {
                    "names": ["kill"],
                    "action": "SCMP_ACT_ERRNO",
                    "errnoRet": 66,
                    "args": [
                        {"index": 0, "value": 4_000_001, "op": "SCMP_CMP_EQ"},
                        {"index": 1, "value": 0, "op": "SCMP_CMP_EQ"},
                    ],
                }
            ],
        }
    )

    def setup():
        set_no_new_privs()
        flt.load()
        return [errno_of(62, 4_000_001, 0), errno_of(62, 4_000_001, 15), errno_of(62, 4_000_002, 0)]

    assert in_child(setup).json() == [66, 3, 3]  # ESRCH where the rule does not match


def test_enosys_stub_for_syscalls_newer_than_the_profile():
    # containerd 1.6's profile: default EPERM. Syscalls it does not name but older than its
    # newest get EPERM; newer ones (mseal, 462, on Linux 6.10+) get ENOSYS, as under runc.
    flt = profile("containerd-1.6-ctr-run-seccomp.json")

    def setup():
        set_no_new_privs()
        flt.load()
        return {"acct": errno_of(ACCT, 0), "mseal": errno_of(462, 0, 0, 0), "uname_ok": errno_of(UNAME, 0)}

    out = in_child(setup).json()
    assert out["acct"] == 1
    assert out["mseal"] == 38
    assert out["uname_ok"] == 14  # EFAULT: allowed, reached the kernel with a NULL buffer


@pytest.mark.parametrize(
    ("action", "signo"),
    [
        ("SCMP_ACT_KILL", signal.SIGSYS),
        ("SCMP_ACT_KILL_PROCESS", signal.SIGSYS),
        ("SCMP_ACT_TRAP", signal.SIGSYS),
    ],
)
def test_killing_actions(action, signo):
    flt = seccomp({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["getppid"], "action": action}]})

    def setup():
        set_no_new_privs()
        flt.load()
        os.getppid()
        return "survived"

    child = in_child(setup)
    assert child.signal == signo, (child.status, child.out)


def test_log_and_trace_actions():
    flt = seccomp(
        {
            "defaultAction": "SCMP_ACT_ALLOW",
            "flags": [
                "SECCOMP_FILTER_FLAG_LOG",
                "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
                "SECCOMP_FILTER_FLAG_TSYNC",
            ],
            "syscalls": [
                {"names": ["getppid"], "action": "SCMP_ACT_LOG"},
                {"names": ["getpgid"], "action": "SCMP_ACT_TRACE"},
            ],
        }
    )

    def setup():
        set_no_new_privs()
        flt.load()
        # TRACE without a tracer: the kernel fails the syscall with ENOSYS.
        return {"log": os.getppid() > 0, "trace": errno_of(GETPGID, 0)}

    assert in_child(setup).json() == {"log": True, "trace": 38}


def test_load_without_no_new_privs_needs_cap_sys_admin():
    flt = seccomp(
        {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["acct"], "action": "SCMP_ACT_ERRNO"}]}
    )

    def setup():
        flt.load()  # root with CAP_SYS_ADMIN: allowed without no_new_privs (runc's early load)
        first = read_status()
        capmod.capset(0, 0, 0)
        try:
            flt.load()
        except SystemError_ as e:
            return {"first": first["Seccomp"], "second": str(e)}
        return {"first": first["Seccomp"], "second": "loaded"}

    out = in_child(setup).json()
    assert out["first"] == "2"
    assert (
        out["second"]
        == "error loading seccomp filter into kernel: error loading seccomp filter: permission denied"
    )


# --- SCMP_ACT_NOTIFY and the agent ------------------------------------------------------

NOTIF_RECV = 0xC0502100  # _IOWR('!', 0, struct seccomp_notif), 80 bytes
NOTIF_SEND = 0xC0182101  # _IOWR('!', 1, struct seccomp_notif_resp), 24 bytes


class Agent:
    """A seccomp agent on a unix socket: takes the fd + state, answers one notification."""

    def __init__(self, path: str, reply: int = 0, error: int = 0) -> None:
        self.path = path
        self.reply = reply
        self.error_reply = error  # a negative errno, or 0 for success with ``reply``
        self.state: dict | None = None
        self.notification: dict | None = None
        self.error: BaseException | None = None
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        self.sock.listen(1)
        self.sock.settimeout(15)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            conn, _ = self.sock.accept()
            with conn:
                msg, anc, _flags, _addr = conn.recvmsg(65536, socket.CMSG_SPACE(4))
                self.state = json.loads(msg)
                ((level, kind, data),) = anc
                assert (level, kind) == (socket.SOL_SOCKET, socket.SCM_RIGHTS)
                fd = int.from_bytes(data[:4], "little")
            try:
                req = bytearray(80)
                fcntl.ioctl(fd, NOTIF_RECV, req)
                nid, pid, _f, nr, arch, _ip, *args = struct.unpack("=QIIiIQ6Q", req)
                self.notification = {"pid": pid, "nr": nr, "arch": arch, "arg0": args[0]}
                resp = struct.pack("=QqiI", nid, self.reply, self.error_reply, 0)
                fcntl.ioctl(fd, NOTIF_SEND, bytearray(resp))
            finally:
                os.close(fd)
        except BaseException as e:
            self.error = e

    def close(self) -> None:
        self.sock.close()
        self.thread.join(5)


@pytest.fixture
def agent_dir():
    d = tempfile.mkdtemp(prefix="bock-t-agent-")
    try:
        yield d
    finally:
        for name in os.listdir(d):
            os.unlink(os.path.join(d, name))
        os.rmdir(d)


def test_notify_fd_reaches_the_agent_which_answers(agent_dir):
    path = os.path.join(agent_dir, f"t-{uuid.uuid4().hex[:12]}.sock")
    flt = seccomp(
        {
            "defaultAction": "SCMP_ACT_ALLOW",
            "listenerPath": path,
            "listenerMetadata": "hello-agent",
            "syscalls": [{"names": ["getpgid"], "action": "SCMP_ACT_NOTIFY"}],
        }
    )
    assert flt.needs_notify
    agent = Agent(path, reply=4242)
    fdpipe_r, fdpipe_w = os.pipe()

    def setup():
        set_no_new_privs()
        fd = flt.load()
        os.write(fdpipe_w, str(fd).encode())  # like runc's procSeccomp sync: the number only
        return {"getpgid": os.getpgid(4_000_123)}

    def parent(pid: int) -> None:
        # runc's parent: fetch the child's fd with pidfd_getfd, send it with the state.
        os.close(fdpipe_w)
        child_fd = int(os.read(fdpipe_r, 32))
        fd = pidfd_getfd(pid, child_fd)
        try:
            state = {
                "ociVersion": "1.3.0",
                "id": "t-notify",
                "status": "creating",
                "pid": pid,
                "bundle": "/b",
            }
            send_notify_fd(flt.listener_path, fd, state, flt.listener_metadata or "", pid=pid)
        finally:
            os.close(fd)

    try:
        out = in_child(setup, after_fork=parent).json()
    finally:
        os.close(fdpipe_r)
        agent.close()
    assert agent.error is None, agent.error
    assert out == {"getpgid": 4242}  # the agent's answer, not ESRCH
    assert agent.notification["nr"] == GETPGID
    assert agent.notification["arg0"] == 4_000_123
    assert agent.notification["arch"] == 0xC000003E
    st = agent.state
    assert st["ociVersion"] and st["fds"] == ["seccompFd"] and st["metadata"] == "hello-agent"
    assert st["pid"] == agent.notification["pid"]
    assert st["state"]["id"] == "t-notify" and st["state"]["pid"] == st["pid"]


def test_send_notify_fd_to_a_missing_agent(agent_dir):
    r, w = os.pipe()
    try:
        with pytest.raises(SystemError_, match="failed to connect with seccomp agent"):
            send_notify_fd(os.path.join(agent_dir, "absent.sock"), r, {"pid": 1})
    finally:
        os.close(r)
        os.close(w)


def test_wait_killable_recv_with_notify_loads(agent_dir):
    flt = seccomp(
        {
            "defaultAction": "SCMP_ACT_ALLOW",
            "flags": ["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],
            "listenerPath": os.path.join(agent_dir, "unused.sock"),
            "syscalls": [{"names": ["acct"], "action": "SCMP_ACT_NOTIFY"}],
        }
    )

    def setup():
        set_no_new_privs()
        fd = flt.load()
        return {"fd": fd, "seccomp": read_status()["Seccomp"]}

    out = in_child(setup).json()
    assert out["fd"] > 2 and out["seccomp"] == "2"


# --- real profiles with ordinary programs ----------------------------------------------


@pytest.mark.parametrize("name", ["podman-4.3-default-seccomp.json", "containerd-1.6-ctr-run-seccomp.json"])
def test_ordinary_programs_work_under_real_profiles(name):
    flt = profile(name)
    sets = CapSets.from_spec(caps_spec(PODMAN_CAPS))
    tmp = tempfile.mkdtemp(prefix="bock-t-")
    try:
        with open(os.path.join(tmp, "hello.txt"), "w") as f:
            f.write("hello-from-file\n")
        script = (
            f"ls {tmp}; cat {tmp}/hello.txt; echo piped | cat; echo $((6*7)); "
            f"cp {tmp}/hello.txt {tmp}/copy.txt && wc -c {tmp}/copy.txt; "
            "sh -c 'echo nested'; date +%Y >/dev/null && echo date-ok; "
            "grep -E '^(Seccomp|NoNewPrivs|CapEff):' /proc/self/status"
        )

        def setup():
            # runc's order with noNewPrivileges: caps and user, no_new_privs, then seccomp last.
            finalize_credentials(User(), sets, no_new_privileges=True)
            flt.load()

        child = in_child(setup, argv=[BUSYBOX, "sh", "-c", script])
        text = child.out.decode()
        assert child.exit_code == 0, text
        lines = text.splitlines()
        assert lines[:6] == ["hello.txt", "hello-from-file", "piped", "42", f"16 {tmp}/copy.txt", "nested"]
        assert "date-ok" in lines
        st = parse_status(text)
        assert st["Seccomp"] == "2" and st["NoNewPrivs"] == "1"
        assert int(st["CapEff"], 16) == mask(PODMAN_CAPS)
    finally:
        for entry in os.listdir(tmp):
            os.unlink(os.path.join(tmp, entry))
        os.rmdir(tmp)


def test_denied_under_podman_profile():
    flt = profile("podman-4.3-default-seccomp.json")

    def setup():
        set_no_new_privs()
        flt.load()
        # create_module is in no rule: podman's default, ENOSYS (defaultErrnoRet 38);
        # acct is in podman's explicit EPERM list.
        return {"create_module": errno_of(174, 0), "acct": errno_of(ACCT, 0)}

    assert in_child(setup).json() == {"create_module": 38, "acct": 1}


# --- end to end: `bock run` on a busybox bundle, runc as the oracle ---------------------

RUNTIME_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BOCK = [
    "/usr/bin/python3",
    "-I",
    "-S",
    "-c",
    f"import sys; sys.path.insert(0, {RUNTIME_DIR!r}); from bock._main import main; sys.exit(main(sys.argv[1:]))",
]
RUNC = "/usr/sbin/runc"
STATUS_KEYS = (
    "Uid",
    "Gid",
    "Groups",
    "CapInh",
    "CapPrm",
    "CapEff",
    "CapBnd",
    "CapAmb",
    "NoNewPrivs",
    "Seccomp",
)


def _rmtree(path: str) -> None:
    import subprocess

    subprocess.run(["rm", "-rf", "--one-file-system", path], check=False)


@pytest.fixture
def bundle():
    """A busybox bundle (``config.json`` from ``bock spec``), its own state roots, cleaned up."""
    import subprocess

    base = tempfile.mkdtemp(prefix="bock-t-seccaps-")
    rootfs = os.path.join(base, "bundle", "rootfs")
    os.makedirs(os.path.join(rootfs, "bin"))
    os.makedirs(os.path.join(rootfs, "tmp"))
    with open(BUSYBOX, "rb") as src, open(os.path.join(rootfs, "bin", "busybox"), "wb") as dst:
        dst.write(src.read())
    os.chmod(os.path.join(rootfs, "bin", "busybox"), 0o755)
    applets = subprocess.run([BUSYBOX, "--list"], capture_output=True, text=True, check=True).stdout.split()
    for applet in applets:
        if applet != "busybox":
            os.symlink("busybox", os.path.join(rootfs, "bin", applet))
    subprocess.run([*BOCK, "spec"], cwd=os.path.join(base, "bundle"), check=True)
    b = Bundle(base)
    try:
        yield b
    finally:
        for runtime, root, cid in b.started:
            subprocess.run(
                [*runtime, "--root", root, "delete", "--force", cid], capture_output=True, check=False
            )
        _rmtree(base)


class Bundle:
    def __init__(self, base: str) -> None:
        self.base = base
        self.path = os.path.join(base, "bundle")
        self.started: list[tuple[list[str], str, str]] = []
        with open(os.path.join(self.path, "config.json")) as f:
            self.config = json.load(f)
        self.config["process"]["terminal"] = False
        self.config["root"]["readonly"] = False

    def run(self, runtime: list[str], args: list[str], timeout: float = 60):
        import subprocess

        with open(os.path.join(self.path, "config.json"), "w") as f:
            json.dump({**self.config, "process": {**self.config["process"], "args": args}}, f)
        cid = f"t-{uuid.uuid4().hex[:12]}"
        root = os.path.join(
            self.base, "root-" + os.path.basename(runtime[-1] if runtime[0] == RUNC else "bock")
        )
        self.started.append((runtime, root, cid))
        return subprocess.run(
            [*runtime, "--root", root, "run", "--bundle", self.path, cid],
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )


def status_lines(text: str) -> dict[str, str]:
    st = parse_status(text)
    return {k: st.get(k) for k in STATUS_KEYS}


def with_podman_security(
    config: dict, *, uid: int = 0, gid: int = 0, groups=(), ambient=(), nnp: bool = True, profile=None
) -> None:
    with open(os.path.join(DATA, profile or "podman-4.3-default-seccomp.json")) as f:
        config["linux"]["seccomp"] = json.load(f)
    config["process"]["noNewPrivileges"] = nnp
    config["process"]["user"] = {"uid": uid, "gid": gid, "additionalGids": list(groups)}
    caps = [*PODMAN_CAPS, "CAP_NOT_A_CAPABILITY"]
    config["process"]["capabilities"] = {
        "bounding": caps,
        "effective": caps,
        "permitted": caps,
        "inheritable": list(ambient),
        "ambient": list(ambient),
    }


# Ordinary programs first (their output is not compared; /dev/null is left alone on purpose:
# main's mknod still applies the umask, so uid 1000 cannot open it, see the seccaps report).
SHOW = (
    "ls / | cat | wc -l | grep -q . && date | grep -q . && sh -c true && "
    "grep -E '^(Uid|Gid|Groups|Cap...|NoNewPrivs|Seccomp):' /proc/self/status"
)


@pytest.mark.parametrize(
    ("nnp", "profile"),
    [
        (True, "podman-4.3-default-seccomp.json"),
        # Without no_new_privs the filter is loaded before the user switch and capset (runc's
        # order): those syscalls then go through the profile.
        (False, "podman-4.3-default-seccomp.json"),
        (False, "containerd-1.6-ctr-run-seccomp.json"),
    ],
)
def test_bock_run_status_inside_matches_runc(bundle, nnp, profile):
    with_podman_security(
        bundle.config,
        uid=1000,
        gid=1000,
        groups=[10, 20],
        ambient=["CAP_NET_BIND_SERVICE"],
        nnp=nnp,
        profile=profile,
    )
    bock = bundle.run(BOCK, ["sh", "-c", SHOW])
    assert bock.returncode == 0, bock.stderr
    st = status_lines(bock.stdout)
    nbs = 1 << CAP_NUMBERS["CAP_NET_BIND_SERVICE"]
    assert st["Uid"].split() == ["1000"] * 4 and st["Groups"].split() == ["10", "20"]
    assert int(st["CapEff"], 16) == int(st["CapAmb"], 16) == nbs
    assert int(st["CapBnd"], 16) == mask(PODMAN_CAPS)
    assert st["NoNewPrivs"] == ("1" if nnp else "0") and st["Seccomp"] == "2"
    assert "ignoring unknown or unavailable capabilities: [CAP_NOT_A_CAPABILITY]" in bock.stderr
    if os.path.exists(RUNC):
        runc = bundle.run([RUNC], ["sh", "-c", SHOW])
        assert runc.returncode == 0, runc.stderr
        assert status_lines(runc.stdout) == st


def test_bock_run_denied_syscall_errno_inside(bundle):
    with_podman_security(bundle.config)
    rules = bundle.config["linux"]["seccomp"]["syscalls"]
    rules.insert(0, {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13})
    rules.insert(0, {"names": ["rmdir"], "action": "SCMP_ACT_ERRNO"})
    script = "mkdir /tmp/a; echo mkdir=$?; rmdir /bin; echo rmdir=$?; ls /tmp | wc -l; echo done"
    out = bundle.run(BOCK, ["sh", "-c", script])
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["mkdir=1", "rmdir=1", "0", "done"]
    assert "can't create directory '/tmp/a': Permission denied" in out.stderr
    assert "Operation not permitted" in out.stderr  # rmdir: EPERM, no errnoRet


def test_bock_run_unknown_seccomp_action_fails_and_leaves_nothing(bundle):
    bundle.config["linux"]["seccomp"] = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_SOMETIMES"}],
    }
    out = bundle.run(BOCK, ["true"])
    assert out.returncode == 1
    # the schema catches it first, naming the JSON path and the rule broken
    assert "$.linux.seccomp.syscalls[0].action" in out.stderr
    assert "(rule: enum)" in out.stderr
    root = bundle.started[-1][1]
    assert not os.path.exists(root) or os.listdir(root) == []


@pytest.mark.parametrize("runtime", ["bock", "runc"])
def test_bock_run_notify_agent(bundle, runtime):
    if runtime == "runc" and not os.path.exists(RUNC):
        pytest.skip("runc not installed")
    path = os.path.join(bundle.base, "agent.sock")
    bundle.config["linux"]["seccomp"] = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "listenerPath": path,
        "listenerMetadata": "from-e2e",
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}],
    }
    bundle.config["process"]["noNewPrivileges"] = True
    agent = Agent(path, error=-18)  # EXDEV: an answer only the agent can give
    try:
        out = bundle.run(
            BOCK if runtime == "bock" else [RUNC], ["sh", "-c", "mkdir /tmp/n; echo rc=$?; ls /tmp"]
        )
    finally:
        agent.close()
    assert agent.error is None, agent.error
    assert out.returncode == 0, out.stderr
    assert out.stdout == "rc=1\n"  # mkdir failed and created nothing
    assert "cross-device link" in out.stderr.lower()
    assert agent.notification["nr"] in (83, 258)  # mkdir or mkdirat
    state = agent.state
    assert state["fds"] == ["seccompFd"] and state["metadata"] == "from-e2e"
    assert state["pid"] == state["state"]["pid"] > 0  # the init (mkdir runs in a child of sh)
    assert state["state"]["id"] == bundle.started[-1][2]
    assert state["state"]["bundle"] == bundle.path
    assert set(state) >= {"ociVersion", "fds", "pid", "metadata", "state"}


@pytest.mark.parametrize("runtime", ["bock", "runc"])
def test_run_with_bad_syscall_names_like_runc(bundle, runtime):
    """An unknown name is skipped (runc: "unknown seccomp syscall ... ignored"); an empty one fails."""
    if runtime == "runc" and not os.path.exists(RUNC):
        pytest.skip("runc not installed")
    rt = BOCK if runtime == "bock" else [RUNC]
    rule = {"names": ["no_such_syscall_at_all", "mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}
    bundle.config["linux"]["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [rule]}
    out = bundle.run(rt, ["sh", "-c", "mkdir /tmp/q; echo rc=$?"])
    assert out.returncode == 0, out.stderr
    assert out.stdout == "rc=1\n"
    rule["names"] = ["", "mkdir"]
    out = bundle.run(rt, ["true"])
    assert out.returncode == 1
    assert "empty string is not a valid syscall" in out.stderr

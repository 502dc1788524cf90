"""The sealed interpreter of the waiting init (bock._init.exeseal): when, and the sequence
behind the recording syscall seam; the memfd fallback and the overlay on real files."""

from __future__ import annotations

import ast
import errno
import fcntl
import os
import pathlib
import sys

import pytest
from bock import _syscalls as s
from bock._init import ctxcodec, exeseal, process, stages
from bock._init.security import Security
from bock._spec.config import Spec

BASE_CAPS = ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"]


def spec_of(namespaces=("pid", "mount"), caps: object = "default", **paths: str) -> Spec:
    process_doc: dict = {"args": ["sh"], "cwd": "/"}
    if caps == "default":
        caps = {kind: list(BASE_CAPS) for kind in ("bounding", "effective", "permitted")}
    if caps is not None:
        process_doc["capabilities"] = caps
    nss = [{"type": t, **({"path": paths[t]} if t in paths else {})} for t in namespaces]
    doc = {
        "ociVersion": "1.3.0",
        "process": process_doc,
        "root": {"path": "rootfs"},
        "linux": {"namespaces": nss},
    }
    return Spec.from_json(doc)


def needs(spec: Spec, *more: object) -> bool:
    return exeseal.needs_seal(spec.linux, spec.process.capabilities, *more)


# -- the decision ----------------------------------------------------------------------------


def test_the_default_container_needs_no_seal():
    assert not needs(spec_of())


@pytest.mark.parametrize("kind", ["bounding", "effective", "permitted", "inheritable", "ambient"])
def test_cap_sys_ptrace_in_any_set_needs_the_seal(kind):
    caps = {kind: [*BASE_CAPS, "CAP_SYS_PTRACE"]}
    assert needs(spec_of(caps=caps))


def test_no_capabilities_at_all_means_every_capability():
    assert needs(spec_of(caps=None))


def test_a_new_user_namespace_makes_cap_sys_ptrace_harmless():
    caps = {"bounding": ["CAP_SYS_PTRACE"]}
    assert not needs(spec_of(("pid", "mount", "user"), caps=caps))
    # joined by path: that namespace may be the host's
    assert needs(spec_of(("pid", "mount", "user"), caps=caps, user="/proc/1/ns/user"))


def test_a_shared_pid_namespace_needs_the_seal_whatever_the_capabilities():
    assert needs(spec_of(("mount",)))  # the host's pid namespace
    assert needs(spec_of(("pid", "mount"), pid="/proc/1/ns/pid"))
    assert needs(spec_of(("pid", "mount", "user"), pid="/proc/1/ns/pid"))


def test_exec_counts_the_new_process_and_the_containers_json_capabilities():
    spec = spec_of()
    assert not exeseal.needs_seal(spec.linux, {"bounding": BASE_CAPS}, spec.process.capabilities)
    assert exeseal.needs_seal(spec.linux, {"bounding": ["CAP_SYS_PTRACE"]}, spec.process.capabilities)
    assert exeseal.needs_seal(spec.linux, None, spec.process.capabilities)  # config without caps


def test_a_joiner_without_ptrace_or_in_its_own_user_ns_or_in_our_pid_ns_is_not_checked():
    ptrace = {"bounding": ["CAP_SYS_PTRACE"]}
    assert exeseal.check_ptrace_joiner("/proc/self/ns/pid", False, ptrace) is None  # ours
    assert exeseal.check_ptrace_joiner("/proc/1/ns/pid", True, ptrace) is None
    assert exeseal.check_ptrace_joiner("/proc/1/ns/pid", False, {"bounding": BASE_CAPS}) is None
    assert exeseal.check_joined(spec_of()) is None  # a new pid namespace: nothing to join


# -- the sequence behind the seam ------------------------------------------------------------


class Recorder(s.RecordingSyscalls):
    """Also keeps what the new image would read: the payload memfd at execveat time."""

    payload = None

    def execveat(self, fd, argv, env):
        super().execveat(fd, argv, env)
        data = int(argv[4])
        self.payload = os.pread(data, os.fstat(data).st_size, 0)


@pytest.fixture
def ctx():
    import _socket

    mine, theirs = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_SEQPACKET | _socket.SOCK_CLOEXEC)
    fifo = os.open("/dev/null", os.O_RDONLY | os.O_CLOEXEC)
    spec = spec_of(caps={"bounding": ["CAP_SYS_PTRACE"]})
    context = stages.InitContext(
        spec=spec,
        bundle="/b",
        rootfs="/b/rootfs",
        sync=theirs,
        fifo_fd=fifo,
        join=[],
        new_flags=s.CLONE_NEWPID,
        security=Security(spec),
        state_for_hooks=stages.HookState("t-x", "/b", {"a": "b"}),
        seal=exeseal.reexec,
    )
    yield context
    mine.close()
    theirs.close()
    os.close(fifo)


def test_the_init_reexecs_from_a_detached_readonly_overlay(ctx):
    rec = Recorder()
    ctx.sys = rec
    exeseal.reexec(ctx, stages.stage1)
    interpreter = os.readlink("/proc/self/exe")
    directory, name = os.path.split(interpreter)
    names = [c[0] for c in rec.calls]
    assert names == [
        "fsopen", "fsconfig", "fsconfig", "fsconfig", "fsmount",  # an empty tmpfs, never attached
        "fsopen", "fsconfig", "fsconfig", "fsmount",  # the overlay, never attached
        "openat", "execveat",
    ]  # fmt: skip
    assert rec.calls[0] == ("fsopen", "tmpfs")
    assert rec.calls[3] == ("fsconfig", "create", None)
    ro = exeseal.MOUNT_ATTR_RDONLY | exeseal.MOUNT_ATTR_NOSUID | exeseal.MOUNT_ATTR_NODEV
    assert rec.calls[4] == ("fsmount", ro | exeseal.MOUNT_ATTR_NOEXEC)
    assert rec.calls[5] == ("fsopen", "overlay")
    key, lower = rec.calls[6][1:]
    assert key == "lowerdir" and lower.startswith(directory + ":/proc/self/fd/")  # two layers, no upper
    assert rec.calls[8] == ("fsmount", ro)  # read-only, and executable
    assert rec.calls[9] == ("openat", name, os.O_RDONLY | os.O_CLOEXEC)
    _, fd, argv = rec.calls[10]
    assert fd == rec._next_fd  # the file opened in the overlay
    assert argv[:4] == [sys.executable or interpreter, "-IS", "-c", exeseal.BOOT]
    assert argv[5] == str(ctx.sync.fileno())
    assert argv[6] == str(pathlib.Path(exeseal.__file__).parents[2])  # the package's directory
    assert argv[7:] == sys.path
    # what the new image needs stays open across exec; the payload is the whole context
    assert os.get_inheritable(ctx.sync.fileno()) and os.get_inheritable(ctx.fifo_fd)
    payload = ctxcodec.loads(rec.payload)
    resumed = payload["ctx"]
    assert payload["entry"] is stages.stage1
    assert payload["how"] == "overlay"
    assert resumed.seal is None  # the new image does not seal again
    assert resumed.sync.fileno() == ctx.sync.fileno()
    resumed.sync.detach()  # the same fd as the fixture's: never closed twice
    assert resumed.spec.process.capabilities.bounding == ["CAP_SYS_PTRACE"]
    assert resumed.state_for_hooks("created", 7)["pid"] == 7
    assert resumed.security.spec.process.args == ["sh"]
    assert payload["host"] == (os.stat("/proc/self/exe").st_dev, os.stat("/proc/self/exe").st_ino)
    assert "bock._init.stages" in payload["modules"]
    assert not [m for m in payload["modules"] if m.startswith(exeseal.RUNTIME_SIDE)]


def test_without_overlayfs_the_init_reexecs_a_sealed_memfd(ctx):
    rec = Recorder(fail={"fsopen": OSError(errno.EPERM, "fsopen: Operation not permitted")})
    ctx.sys = rec
    exeseal.reexec(ctx, stages.stage1)
    names = [c[0] for c in rec.calls]
    assert names == ["fsopen", "memfd_create", "add_seals", "execveat"]
    assert rec.calls[1] == (
        "memfd_create",
        "bock-init",
        exeseal.MFD_CLOEXEC | exeseal.MFD_ALLOW_SEALING | exeseal.MFD_EXEC,
    )
    seals = exeseal.F_SEAL_SEAL | exeseal.F_SEAL_SHRINK | exeseal.F_SEAL_GROW | exeseal.F_SEAL_WRITE
    assert rec.calls[2] == ("add_seals", seals)
    payload = ctxcodec.loads(rec.payload)
    payload["ctx"].sync.detach()  # the fixture's fd: never closed twice
    assert payload["how"] == "memfd"


def test_the_seccomp_program_pointer_is_rebuilt_not_copied(ctx):
    """A compiled filter holds a ctypes pointer to its program: valid in one process only."""
    import ctypes

    from bock._security.seccomp import SeccompFilter

    program = bytes(range(16))  # two cBPF instructions' worth of bytes
    ctx.security.seccomp = SeccompFilter(program, 1, listener_path="/l")
    rec = Recorder()
    ctx.sys = rec
    exeseal.reexec(ctx, stages.stage1)
    payload = ctxcodec.loads(rec.payload)
    payload["ctx"].sync.detach()
    flt = payload["ctx"].security.seccomp
    assert (flt.program, flt.flags, flt.listener_path) == (program, 1, "/l")
    assert flt._fprog.filter == ctypes.addressof(flt._buf)  # its own buffer
    assert flt._buf is not ctx.security.seccomp._buf


def test_a_raw_ctypes_object_cannot_cross_the_reexec(ctx):
    import ctypes

    ctx.bundle = ctypes.c_int(1)
    ctx.sys = Recorder()
    with pytest.raises(TypeError, match="ctypes object cannot cross"):
        exeseal.reexec(ctx, stages.stage1)


def test_when_neither_copy_can_be_made_the_init_fails_closed(ctx):
    err = OSError(errno.EPERM, "denied")
    ctx.sys = Recorder(fail={"fsopen": err, "memfd_create": err})
    with pytest.raises(OSError, match=r"cannot seal the interpreter \(CVE-2019-5736\)") as got:
        exeseal.reexec(ctx, stages.stage1)
    assert got.value.errno == errno.EPERM
    assert "execveat" not in [c[0] for c in ctx.sys.calls]


def test_the_sealed_memfd_copy_cannot_be_changed(tmp_path):
    src = tmp_path / "interp"
    src.write_bytes(os.urandom(300_000))
    fd = exeseal.memfd_copy(s.LinuxSyscalls(), str(src))
    try:
        assert os.pread(fd, 400_000, 0) == src.read_bytes()
        for attempt in (
            lambda: os.pwrite(fd, b"x", 0),
            lambda: os.ftruncate(fd, 10),
            lambda: os.ftruncate(fd, 10**6),
            lambda: fcntl.fcntl(fd, fcntl.F_ADD_SEALS, 0x10),
        ):
            with pytest.raises(PermissionError):
                attempt()
        # and through a new open of the same file (what /proc/<pid>/exe would give)
        wfd = os.open(f"/proc/self/fd/{fd}", os.O_WRONLY)
        try:
            with pytest.raises(PermissionError):
                os.write(wfd, b"x")
        finally:
            os.close(wfd)
    finally:
        os.close(fd)


@pytest.mark.root
def test_the_overlay_copy_is_read_only_and_mounted_nowhere(tmp_path):
    src = tmp_path / "dir,with:odd" / "interp"
    src.parent.mkdir()
    src.write_bytes(b"\x7fELF" + os.urandom(1000))

    def mounts() -> list[str]:
        with open("/proc/self/mountinfo") as f:
            return [line for line in f if "overlay" in line and str(tmp_path) in line]

    fd = exeseal.overlay_copy(s.LinuxSyscalls(), str(src))
    try:
        assert mounts() == []
        assert os.pread(fd, 2000, 0) == src.read_bytes()
        with pytest.raises(OSError) as err:
            os.open(f"/proc/self/fd/{fd}", os.O_WRONLY | os.O_APPEND)
        assert err.value.errno == errno.EROFS
    finally:
        os.close(fd)
    assert mounts() == []


def test_the_runtime_exe_check_knows_the_host_interpreter_behind_the_seal(tmp_path, monkeypatch):
    host = tmp_path / "python3"
    host.write_bytes(b"\x7fELF")
    other = tmp_path / "sh"
    other.write_bytes(b"#!/bin/true\n")
    st = host.stat()
    monkeypatch.setattr(process, "host_interpreter", (st.st_dev, st.st_ino))
    with pytest.raises(process.RuntimeExeRefused):
        process.refuse_runtime_exe(str(host))
    script = tmp_path / "script"
    script.write_text(f"#!{host}\n")
    with pytest.raises(process.RuntimeExeRefused):
        process.refuse_runtime_exe(str(script))
    process.refuse_runtime_exe(str(other))  # anything else passes


# -- what the new image imports ----------------------------------------------------------------


def test_the_new_image_imports_the_inits_modules_only():
    loaded = [
        "re",
        "time",
        "bock",
        "bock._main",
        "bock._init.stages",
        "bock._cgroups.v2",
        "bock._log",
        "ctypes",
    ]
    assert exeseal.init_modules(loaded) == ["time", "bock", "bock._init.stages", "bock._log", "ctypes"]


INIT_CODE = [
    "_init",
    "_security",
    "_spec",
    "_log.py",
    "_libc.py",
    "_syscalls.py",
    "_pathsafe.py",
    "_fsutil.py",
]


def _init_sources():
    base = pathlib.Path(exeseal.__file__).parents[1]
    for name in INIT_CODE:
        path = base / name
        yield from sorted(path.glob("*.py")) if path.is_dir() else [path]


def test_the_init_code_never_imports_the_runtime_side_and_lazy_stdlib_is_listed():
    """What the sealed image does not import must never be needed: the init's code imports
    no runtime-side module, and what it imports inside functions is in LAZY_STDLIB."""
    lazy_needed = set()
    for path in _init_sources():
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            for name in names:
                assert not name.startswith(exeseal.RUNTIME_SIDE), (path, name)
        for func in ast.walk(tree):
            if not isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(func):
                if isinstance(node, ast.Import):
                    lazy_needed.update(a.name.split(".")[0] for a in node.names)
                elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    lazy_needed.add(node.module.split(".")[0])
    # exeseal's own lazy imports happen in the new image itself
    lazy_needed -= {"bock", "__future__", "os", "sys"}
    assert lazy_needed <= set(exeseal.LAZY_STDLIB), lazy_needed - set(exeseal.LAZY_STDLIB)

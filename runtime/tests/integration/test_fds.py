"""File descriptors: nothing above 2 reaches the container unless --preserve-fds asks
(containerd leaks fd 3 into the runtime), and no host cwd or directory fd does either
(the CVE-2024-21626 class)."""

from __future__ import annotations

import os
import time

import pytest

pytestmark = pytest.mark.root


def container_fds(pid: int) -> dict[int, str]:
    out = {}
    for name in os.listdir(f"/proc/{pid}/fd"):
        try:
            out[int(name)] = os.readlink(f"/proc/{pid}/fd/{name}")
        except FileNotFoundError:
            pass
    return out


def wait_exec(pid: int, comm: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while True:
        with open(f"/proc/{pid}/comm") as f:
            if f.read().strip() == comm:
                return
        assert time.monotonic() < deadline, "the user process never started"
        time.sleep(0.01)


SEALED = pytest.mark.parametrize("sealed", [False, True], ids=["plain", "sealed-init"])


def maybe_sealed(b, sealed: bool):
    """CAP_SYS_PTRACE: the init re-executes a sealed interpreter first (bock._init.exeseal);
    the fds must come out of that exactly as they do without it."""
    if sealed:
        for kind in ("bounding", "effective", "permitted"):
            b.config["process"]["capabilities"][kind].append("CAP_SYS_PTRACE")
        b.save()
    return b


@pytest.fixture
def leaked_fds(tmp_path):
    """Inheritable fds 3..9 in this process, as a careless caller (containerd) leaves them:
    files, a directory and a pipe."""
    opened = []
    host_dir = tmp_path / "host-dir"
    host_dir.mkdir()
    for i in range(3):
        fd = os.open(tmp_path / f"leak{i}", os.O_RDWR | os.O_CREAT)
        opened.append(fd)
    opened.append(os.open(host_dir, os.O_RDONLY | os.O_DIRECTORY))
    r, w = os.pipe()
    opened += [r, w]
    for fd in opened:
        os.set_inheritable(fd, True)
    try:
        yield sorted(opened)
    finally:
        for fd in opened:
            os.close(fd)


@SEALED
def test_no_fd_above_2_leaks_into_the_container(runtime, bundle, leaked_fds, sealed):
    assert min(leaked_fds) >= 3
    b = maybe_sealed(bundle("sleep", "60"), sealed)
    cid = runtime.new_id()
    with open(b.out_path, "w") as out:
        runtime("create", "--bundle", b.path, cid, stdout=out, stderr=out, pass_fds=leaked_fds).ok()
    pid = runtime.state(cid)["pid"]
    runtime.start(cid)
    wait_exec(pid, "sleep")
    assert sorted(container_fds(pid)) == [0, 1, 2], container_fds(pid)


def test_no_fd_leaks_through_run(runtime, bundle, leaked_fds):
    b = bundle("ls", "/proc/self/fd")
    # ls opens the directory itself (fd 3): anything beyond that is a leak
    res = runtime.run(b, None, pass_fds=leaked_fds).ok()
    assert sorted(int(x) for x in res.out.split()) == [0, 1, 2, 3]


@SEALED
def test_waiting_init_holds_no_leaked_fd(runtime, bundle, leaked_fds, tmp_path, sealed):
    b = maybe_sealed(bundle("sleep", "60"), sealed)
    cid = runtime.new_id()
    with open(b.out_path, "w") as out:
        runtime("create", "--bundle", b.path, cid, stdout=out, stderr=out, pass_fds=leaked_fds).ok()
    pid = runtime.state(cid)["pid"]
    targets = container_fds(pid).values()
    assert not any(str(tmp_path / "leak") in t or str(tmp_path / "host-dir") in t for t in targets), targets
    assert not any("bock-init" in t or "python" in t for t in targets), targets  # nothing of the re-exec


@SEALED
@pytest.mark.parametrize("n", [1, 3])
def test_preserve_fds_passes_exactly_n(runtime, bundle, leaked_fds, tmp_path, n, sealed):
    b = maybe_sealed(bundle("sleep", "60"), sealed)
    cid = runtime.new_id()
    with open(b.out_path, "w") as out:
        runtime(
            "create",
            "--bundle",
            b.path,
            "--preserve-fds",
            str(n),
            cid,
            stdout=out,
            stderr=out,
            fd_map={3: leaked_fds[0], 4: leaked_fds[1], 5: leaked_fds[2]},  # the leak* files
            pass_fds=leaked_fds,  # and more above them that must not pass
        ).ok()
    pid = runtime.state(cid)["pid"]
    runtime.start(cid)
    wait_exec(pid, "sleep")
    fds = container_fds(pid)
    assert sorted(fds) == list(range(3 + n)), fds
    for i in range(n):
        assert fds[3 + i] == str(tmp_path / f"leak{i}")


def test_preserved_fd_is_usable(runtime, bundle, tmp_path):
    path = tmp_path / "shared.txt"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    try:
        b = bundle("sh", "-c", "echo through-fd-3 >&3")
        runtime.run(b, None, "--preserve-fds=1", fd_map={3: fd}).ok()
    finally:
        os.close(fd)
    assert path.read_text() == "through-fd-3\n"


def test_preserve_fds_rejects_garbage(runtime, bundle):
    res = runtime("create", "--bundle", bundle("true").path, "--preserve-fds", "x", runtime.new_id())
    assert res.rc == 1 and "preserve-fds" in res.err


# -- CVE-2024-21626: no host directory as cwd ---------------------------------------------------


def test_host_cwd_does_not_reach_the_container(runtime, bundle, tmp_path):
    host_cwd = tmp_path / "host-cwd"
    host_cwd.mkdir()
    (host_cwd / "HOST_MARKER").write_text("x")
    b = bundle("sh", "-c", "readlink /proc/self/cwd; ls -a")
    res = runtime.run(b, None, cwd=str(host_cwd)).ok()
    lines = res.out.split()
    assert lines[0] == "/"
    assert "HOST_MARKER" not in lines and "bin" in lines


@pytest.mark.parametrize("fd", list(range(3, 12)))
def test_cwd_through_a_leaked_directory_fd_stays_inside(runtime, bundle, tmp_path, fd):
    """runc < 1.1.12 leaked a host directory fd into its init; a cwd of /proc/self/fd/N then
    put the container process in the host's filesystem."""
    host_dir = tmp_path / "host-dir"
    host_dir.mkdir()
    (host_dir / "HOST_MARKER").write_text("x")
    dfd = os.open(host_dir, os.O_RDONLY | os.O_DIRECTORY)
    try:
        b = bundle("sh", "-c", "ls -a; readlink /proc/self/cwd")
        b.config["process"]["cwd"] = f"/proc/self/fd/{fd}"
        b.save()
        res = runtime.run(b, None, fd_map={fd: dfd})
    finally:
        os.close(dfd)
    assert "HOST_MARKER" not in res.out, res
    if res.rc == 0:
        assert not res.out.split()[-1].startswith(str(tmp_path)), res

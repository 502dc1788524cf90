"""exec, ps, pause/resume, update, events, features: the same calls on runc and on bock."""

from __future__ import annotations

import json
import os
import subprocess
import time

import pytest

pytestmark = pytest.mark.root


def _ns(pid: int) -> dict[str, str]:
    return {n: os.readlink(f"/proc/{pid}/ns/{n}") for n in ("mnt", "pid", "net", "ipc", "uts")}


def _cgroups(pid: int) -> str:
    with open(f"/proc/{pid}/cgroup") as f:
        return f.read()


def _read(path: str) -> str:
    with open(path) as f:
        return f.read()


def _unquote(text: str) -> str:
    """The text log format quotes the message like Go's %q."""
    return text.replace('\\"', '"')


def _init_pid(bundle, cid: str) -> int:
    return json.loads(bundle.rt("state", cid).stdout)["pid"]


def test_exec_foreground_status_output_and_overrides(bundle):
    cid = bundle.start_container()
    out = bundle.rt("exec", cid, "sh", "-c", "echo out; echo err >&2; exit 3", check=False)
    # runc >= 1.2 and bock warn about ambient capabilities that cannot be raised (runc spec
    # lists ambient caps but no inheritable ones); runc 1.1 is silent
    stderr = "".join(line + "\n" for line in out.stderr.splitlines() if "level=warning" not in line)
    assert (out.returncode, out.stdout, stderr) == (3, "out\n", "err\n")
    out = bundle.rt(
        "exec", "-u", "1000:1000", "-g", "5", "-e", "FOO=bar", "--cwd", "/proc", cid,
        "sh", "-c", 'id; pwd; echo "$FOO"',
    )  # fmt: skip
    assert out.stdout == "uid=1000 gid=1000 groups=5\n/proc\nbar\n"
    killed = bundle.rt("exec", cid, "sh", "-c", "kill -9 $$", check=False)
    assert killed.returncode == 137
    fds = bundle.rt("exec", cid, "ls", "/proc/self/fd").stdout.split()
    assert fds == ["0", "1", "2", "3"]  # 3 is ls's own directory fd


def test_exec_detached_pid_file_is_the_real_process(bundle, tmp_path):
    cid = bundle.start_container()
    init = _init_pid(bundle, cid)
    pid_file = tmp_path / "exec.pid"
    bundle.rt("exec", "-d", "--pid-file", str(pid_file), cid, "sleep", "100", detached=True)
    raw = pid_file.read_text()
    assert raw.isdigit()  # no newline: containerd uses strconv.Atoi
    pid = int(raw)
    with open(f"/proc/{pid}/comm") as f:
        assert f.read().strip() == "sleep"
    with open(f"/proc/{pid}/status") as f:
        ppid = int(next(line for line in f if line.startswith("PPid:")).split()[1])
    with open(f"/proc/{ppid}/comm") as f:
        assert f.read().strip() not in ("bock", "python3", "runc", "runc:[2:INIT]")
    assert _ns(pid) == _ns(init)
    assert _cgroups(pid) == _cgroups(init)
    with open(f"/proc/{pid}/status") as f:
        nspid = next(line for line in f if line.startswith("NSpid:")).split()
    assert len(nspid) == 3 and nspid[2] != "1"  # host pid, pid in the container's namespace


def test_exec_failures_exit_255_with_runc_wording(bundle, tmp_path):
    cid = bundle.start_container()
    pid_file = tmp_path / "bad.pid"
    out = bundle.rt(
        "exec", "-d", "--pid-file", str(pid_file), cid, "/nonexistent", check=False, detached=True
    )
    assert out.returncode == 255
    assert (
        'exec failed: unable to start container process: exec: "/nonexistent": stat /nonexistent: no such file or directory'
        in _unquote(out.stderr)
    )
    assert not pid_file.exists()  # conmon decides failure by its absence
    out = bundle.rt("exec", cid, "nothere", check=False)
    assert out.returncode == 255 and 'exec: "nothere": executable file not found in $PATH' in _unquote(
        out.stderr
    )
    bundle.rt("kill", cid, "9")
    for _ in range(50):
        if json.loads(bundle.rt("state", cid).stdout)["status"] == "stopped":
            break
        time.sleep(0.1)
    out = bundle.rt("exec", cid, "true", check=False)
    assert out.returncode == 255 and "cannot exec in a stopped container" in out.stderr


def test_exec_process_file_and_tty(bundle, tmp_path):
    cid = bundle.start_container()
    process = dict(bundle.config["process"], args=["sh", "-c", "echo from-file; exit 5"], env=["PATH=/bin"])
    path = tmp_path / "process.json"
    path.write_text(json.dumps(process))
    out = bundle.rt("exec", "--process", str(path), cid, check=False)
    assert (out.returncode, out.stdout) == (5, "from-file\n")
    cmd = f"{bundle.runtime} --root {bundle.root} exec -t {cid} sh -c 'tty; exit 4'"
    out = subprocess.run(["script", "-qec", cmd, "/dev/null"], capture_output=True, text=True, timeout=30,
                         stdin=subprocess.DEVNULL)  # fmt: skip
    assert out.returncode == 4
    assert "/dev/pts/" in out.stdout


def test_ps_json_lists_the_container_pids(bundle, require_cgroups, tmp_path):
    cid = bundle.start_container()
    init = _init_pid(bundle, cid)
    pid_file = tmp_path / "e.pid"
    bundle.rt("exec", "-d", "--pid-file", str(pid_file), cid, "sleep", "100", detached=True)
    out = bundle.rt("ps", "--format", "json", cid)
    assert out.stderr == ""
    assert sorted(json.loads(out.stdout)) == sorted([init, int(pid_file.read_text())])
    table = bundle.rt("ps", cid).stdout.splitlines()
    assert "PID" in table[0].split() and len(table) == 3


def test_pause_resume(bundle, require_cgroups):
    cid = bundle.start_container()
    out = bundle.rt("resume", cid, check=False)
    assert out.returncode == 1 and "container not paused" in out.stderr
    bundle.rt("pause", cid)
    assert json.loads(bundle.rt("state", cid).stdout)["status"] == "paused"
    out = bundle.rt("exec", cid, "true", check=False)
    assert out.returncode == 255 and "paused" in out.stderr
    bundle.rt("resume", cid)
    assert json.loads(bundle.rt("state", cid).stdout)["status"] == "running"
    bundle.rt("kill", cid, "9")
    time.sleep(0.5)
    out = bundle.rt("pause", cid, check=False)
    assert out.returncode == 1 and "container not running" in out.stderr


def test_pause_a_created_container(bundle, require_cgroups):
    """runc freezes a created container too: its state says paused, start is refused until
    resume, and then the container starts as usual."""
    cid = bundle.start_container(started=False)
    bundle.rt("pause", cid)
    assert json.loads(bundle.rt("state", cid).stdout)["status"] == "paused"
    out = bundle.rt("start", cid, check=False)
    assert out.returncode == 1 and "paused" in out.stderr
    bundle.rt("resume", cid)
    assert json.loads(bundle.rt("state", cid).stdout)["status"] == "created"
    bundle.rt("start", cid)
    assert json.loads(bundle.rt("state", cid).stdout)["status"] == "running"


def test_update_applies_live(bundle, require_cgroups):
    cid = bundle.start_container()
    bundle.rt("update", "--pids-limit", "77", cid)
    assert _read(f"/sys/fs/cgroup/pids/{cid}/pids.max").strip() == "77"
    bundle.rt("update", "--resources", "-", cid, input=json.dumps({"memory": {"limit": 64 << 20}}))
    assert int(_read(f"/sys/fs/cgroup/memory/{cid}/memory.limit_in_bytes")) == 64 << 20
    bundle.rt("update", "--memory", "32m", cid)
    assert int(_read(f"/sys/fs/cgroup/memory/{cid}/memory.limit_in_bytes")) == 32 << 20


def test_events_stats_shape(bundle, require_cgroups):
    cid = bundle.start_container()
    out = bundle.rt("events", "--stats", cid)
    lines = out.stdout.splitlines()
    assert len(lines) == 1
    event = json.loads(lines[0])
    assert event["type"] == "stats" and event["id"] == cid
    data = event["data"]
    assert data["pids"]["current"] >= 1
    assert data["memory"]["usage"]["usage"] > 0
    assert "usage" in data["cpu"]
    bundle.rt("kill", cid, "9")
    time.sleep(0.5)
    out = bundle.rt("events", "--stats", cid, check=False)
    assert out.returncode != 0 and f"container with id {cid} is not running" in out.stderr


def test_features_json_only_on_stdout(runtime_path, runtime):
    out = subprocess.run([runtime_path, "features"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0 and out.stderr == ""
    doc = json.loads(out.stdout)
    assert doc["ociVersionMin"] and doc["ociVersionMax"]
    assert "mount" in doc["linux"]["namespaces"]
    if runtime != "bock":
        return
    # idmapped mounts are implemented (bock._security.idmap; tests in test_idmap_apply.py)
    assert doc["linux"]["mountExtensions"]["idmap"]["enabled"] is True
    assert {"idmap", "ridmap"} <= set(doc["mountOptions"])
    schema_dir = os.path.join(os.path.dirname(__file__), "..", "..", "..", "spec-schemas")
    schema_path = os.path.join(schema_dir, "features-schema.json")
    if not os.path.exists(schema_path):
        pytest.skip("spec-schemas/features-schema.json is not in this tree")
    import jsonschema
    from referencing import Registry, Resource

    docs = {}
    for name in os.listdir(schema_dir):
        if name.endswith(".json"):
            with open(os.path.join(schema_dir, name)) as f:
                docs[name] = json.load(f)
    registry = Registry().with_resources((n, Resource.from_contents(d)) for n, d in docs.items())
    jsonschema.Draft202012Validator(docs["features-schema.json"], registry=registry).validate(doc)


def test_checkpoint_is_refused(runtime_path, runtime):
    if runtime == "runc":
        pytest.skip("runc supports checkpoint (through criu); the refusal is bock's")
    out = subprocess.run([runtime_path, "checkpoint", "--help"], capture_output=True, text=True)
    assert out.returncode != 0  # podman's probe: exit 0 would mean "supports checkpoint"
    out = subprocess.run([runtime_path, "restore", "x"], capture_output=True, text=True)
    assert out.returncode == 1 and "not supported" in out.stderr


def test_exec_preserve_fds(bundle, tmp_path):
    cid = bundle.start_container()
    src = tmp_path / "shared.txt"
    src.write_text("through-fd-3\n")
    # fd 3 of the runtime is set by a shell in the child only (pytest-xdist uses our own fd 3)
    inner = "cat <&3; ls /proc/self/fd"
    cmd = f"exec 3<{src}; exec {bundle.runtime} --root {bundle.root} exec --preserve-fds 1 {cid} sh -c '{inner}'"
    out = subprocess.run(["/bin/sh", "-c", cmd], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.split()
    assert lines[0] == "through-fd-3"
    assert "3" in lines[1:] and "5" not in lines[1:]


def test_exec_cgroup_subpath_and_ignore_paused(bundle, require_cgroups, tmp_path):
    cid = bundle.start_container()
    sub = f"/sys/fs/cgroup/pids/{cid}/sub"
    os.mkdir(sub)
    try:
        pid_file = tmp_path / "p.pid"
        bundle.rt(
            "exec",
            "-d",
            "--cgroup",
            "pids:sub",
            "--pid-file",
            str(pid_file),
            cid,
            "sleep",
            "50",
            detached=True,
        )
        assert f":pids:/{cid}/sub\n" in _cgroups(int(pid_file.read_text()))
        assert f":memory:/{cid}\n" in _cgroups(int(pid_file.read_text()))
        out = bundle.rt("exec", "--cgroup", "pids:nothere", cid, "true", check=False)
        assert out.returncode == 255
        out = bundle.rt("exec", "--cgroup", "nothere:/", cid, "true", check=False)
        assert out.returncode == 255
        bundle.rt("pause", cid)
        refused = bundle.rt("exec", "-d", cid, "true", check=False, detached=True)
        assert refused.returncode == 255 and "paused" in refused.stderr
        # allowed with --ignore-paused: the process joins the frozen cgroup and starts on resume
        late = subprocess.Popen(
            [bundle.runtime, "--root", bundle.root, "exec", "-d", "--ignore-paused", cid, "true"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        time.sleep(0.5)
        bundle.rt("resume", cid)
        assert late.wait(20) == 0
        os.kill(int(pid_file.read_text()), 9)
    finally:
        bundle.rt("kill", cid, "9", check=False)
        time.sleep(0.3)
        bundle.rt("delete", "-f", cid, check=False)
        if os.path.isdir(sub):
            os.rmdir(sub)


def test_events_interval_streams_stats_and_oom(bundle, require_cgroups):
    bundle.config["linux"].setdefault("resources", {})["memory"] = {"limit": 16 << 20, "swap": 16 << 20}
    cid = bundle.start_container()
    proc = subprocess.Popen(
        [bundle.runtime, "--root", bundle.root, "events", "--interval", "200ms", cid],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        first = json.loads(proc.stdout.readline())
        assert first["type"] == "stats" and first["id"] == cid
        # allocate past the limit inside the container: the kernel OOM-kills the shell
        bundle.rt("exec", cid, "tail", "/dev/zero", check=False)  # no newline: tail's buffer grows
        kinds = set()
        deadline = time.monotonic() + 10
        while "oom" not in kinds and time.monotonic() < deadline:
            kinds.add(json.loads(proc.stdout.readline())["type"])
        assert "oom" in kinds
    finally:
        proc.kill()
        proc.wait()


def test_exec_joins_the_user_namespace(bundle):
    os.chmod(os.path.dirname(bundle.dir), 0o755)  # mkdtemp's 0700 would stop the mapped root
    linux = bundle.config["linux"]
    linux["namespaces"].append({"type": "user"})
    linux["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    linux["gidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    bundle.config["mounts"] = [m for m in bundle.config["mounts"] if m["type"] != "cgroup"]
    cid = bundle.start_container()
    init = _init_pid(bundle, cid)
    out = bundle.rt("exec", cid, "sh", "-c", "id -u; cat /proc/self/uid_map; readlink /proc/self/ns/user")
    lines = out.stdout.split("\n")
    assert lines[0] == "0"
    assert lines[1].split() == ["0", "100000", "65536"]
    assert lines[2] == os.readlink(f"/proc/{init}/ns/user")


def test_exec_pidfd_socket(bundle, runtime, tmp_path):
    if runtime == "runc":
        pytest.skip("runc 1.1 has no --pidfd-socket (runc >= 1.2)")
    import socket

    cid = bundle.start_container()
    path = str(tmp_path / "pidfd.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        listener.bind(path)
        listener.listen(1)
        pid_file = tmp_path / "p.pid"
        bundle.rt(
            "exec",
            "-d",
            "--pidfd-socket",
            path,
            "--pid-file",
            str(pid_file),
            cid,
            "sleep",
            "30",
            detached=True,
        )
        conn, _ = listener.accept()
        with conn:
            msg, fds, _flags, _addr = socket.recv_fds(conn, 4096, 1)
    assert msg == b"setns" and len(fds) == 1
    try:
        with open(f"/proc/self/fdinfo/{fds[0]}") as f:
            assert f"Pid:\t{pid_file.read_text()}\n" in f.read()
        os.kill(int(pid_file.read_text()), 9)
    finally:
        os.close(fds[0])


def test_exec_environment_like_runc(bundle):
    """HOME from the container's passwd, umask 0022, SIGPIPE not ignored, /proc/self/exe refused."""
    cid = bundle.start_container()
    out = bundle.rt("exec", cid, "sh", "-c", 'echo "$HOME"; umask; grep SigIgn /proc/self/status')
    home, umask, sigign = out.stdout.split("\n")[:3]
    assert (home, umask) == ("/root", "0022")
    assert int(sigign.split()[1], 16) & (1 << 12) == 0  # SIGPIPE (13) is not ignored
    out = bundle.rt("exec", cid, "/proc/self/exe", "--version", check=False)
    # the runtime's own binary must never run in the container (runc 1.1 runs a sealed
    # memfd copy that fails; bock refuses before execve)
    assert out.returncode != 0 and "version" not in out.stdout

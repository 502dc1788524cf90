"""Hooks through ``bock create/start/delete``: when, where (namespaces), with what state, and failures."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import pytest

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(not os.path.exists("/bin/busybox"), reason="needs busybox"),
]

RUNTIME = Path(__file__).resolve().parents[2]
BOCK = ["/usr/bin/python3", str(RUNTIME / "bin" / "bock")]


class Bundle:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.root = path / "state"
        self.ids: list[str] = []
        rootfs = path / "rootfs"
        (rootfs / "bin").mkdir(parents=True)
        for d in ("proc", "sys", "dev", "tmp", "etc", "rec"):
            (rootfs / d).mkdir()
        shutil.copy("/bin/busybox", rootfs / "bin" / "busybox")
        for applet in subprocess.run(
            ["/bin/busybox", "--list"], capture_output=True, text=True
        ).stdout.split():
            if applet != "busybox":
                os.symlink("busybox", rootfs / "bin" / applet)
        self.rec = path / "rec"
        self.rec.mkdir()
        self.config = {
            "ociVersion": "1.0.2",
            "process": {"args": ["true"], "cwd": "/", "env": ["PATH=/bin", "IN_CONTAINER=1"]},
            "root": {"path": "rootfs"},
            "mounts": [
                {"destination": "/proc", "type": "proc", "source": "proc"},
                {"destination": "/rec", "type": "bind", "source": str(self.rec), "options": ["rbind"]},
            ],
            "linux": {"namespaces": [{"type": t} for t in ("pid", "ipc", "uts", "mount", "network")]},
        }

    def bock(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        # files, not pipes: a created container's init holds the stdio it inherits
        env = dict(os.environ, PYTHONPATH=str(RUNTIME))
        with open(self.path / "out", "w+") as out, open(self.path / "err", "w+") as err:
            proc = subprocess.run(
                [*BOCK, "--root", str(self.root), *args],
                cwd=self.path,
                stdout=out,
                stderr=err,
                env=env,
                timeout=60,
            )
            out.seek(0)
            err.seek(0)
            result = subprocess.CompletedProcess(proc.args, proc.returncode, out.read(), err.read())
        if check and result.returncode != 0:
            raise AssertionError(f"bock {args} failed: {result.stderr}")
        return result

    def delete_all(self) -> None:
        for cid in self.ids:
            self.bock("delete", "-f", cid, check=False)

    def new_id(self) -> str:
        cid = "t-" + uuid.uuid4().hex[:12]
        self.ids.append(cid)
        return cid

    def write(self) -> None:
        (self.path / "config.json").write_text(json.dumps(self.config))


@pytest.fixture
def bundle(tmp_path):
    b = Bundle(tmp_path)
    try:
        yield b
    finally:
        b.delete_all()


def recorder(b: Bundle, kind: str, log: str) -> dict:
    """A hook appending "<kind> <mnt ns> <pid ns>" to ``log`` and saving its stdin as rec/<kind>.json."""
    script = (
        f'echo "{kind} $(readlink /proc/self/ns/mnt) $(readlink /proc/self/ns/pid) $IN_CONTAINER" >> {log}; '
    )
    script += f"cat > {os.path.dirname(log)}/{kind}.json"
    return {"path": "/bin/busybox", "args": ["sh", "-c", script]}


def test_every_hook_runs_in_order_in_its_namespace_with_the_state(bundle):
    host = str(bundle.rec / "log")
    bundle.config["hooks"] = {
        "prestart": [recorder(bundle, "prestart", host)],
        "createRuntime": [recorder(bundle, "createRuntime", host)],
        "createContainer": [recorder(bundle, "createContainer", host)],
        # path and files resolve inside the container: /bin/sh is the container's busybox
        "startContainer": [
            {
                "path": "/bin/sh",
                "args": ["sh", "-c", recorder(bundle, "startContainer", "/rec/log")["args"][2]],
            }
        ],
        "poststart": [recorder(bundle, "poststart", host)],
        "poststop": [recorder(bundle, "poststop", host)],
    }
    bundle.config["process"]["args"] = ["sleep", "30"]
    bundle.write()
    cid = bundle.new_id()
    bundle.bock("create", cid)
    pid = json.loads(bundle.bock("state", cid).stdout)["pid"]
    bundle.bock("start", cid)
    bundle.bock("kill", cid, "KILL")
    for _ in range(100):
        if json.loads(bundle.bock("state", cid).stdout)["status"] == "stopped":
            break
        time.sleep(0.05)
    bundle.bock("delete", cid)
    lines = [line.split(" ") for line in (bundle.rec / "log").read_text().splitlines()]
    assert [line[0] for line in lines] == [
        "prestart",
        "createRuntime",
        "createContainer",
        "startContainer",
        "poststart",
        "poststop",
    ]
    host_ns = (os.readlink("/proc/self/ns/mnt"), os.readlink("/proc/self/ns/pid"))
    where = {line[0]: tuple(line[1:3]) for line in lines}
    for kind in ("prestart", "createRuntime", "poststart", "poststop"):
        assert where[kind] == host_ns, kind
    for kind in ("createContainer", "startContainer"):
        assert where[kind][0] != host_ns[0] and where[kind][1] != host_ns[1], kind
    # hooks without env: in the container, the process's env (as runc); in the runtime, the runtime's
    env_seen = {line[0]: line[3] if len(line) > 3 else "" for line in lines}
    assert env_seen["startContainer"] == "1" and env_seen["createContainer"] == "1"
    assert env_seen["prestart"] == env_seen["poststart"] == ""
    states = {k: json.loads((bundle.rec / f"{k}.json").read_text()) for k, *_ in lines}
    expected_status = {
        "prestart": "creating",
        "createRuntime": "creating",
        "createContainer": "creating",
        "startContainer": "created",
        "poststart": "running",
        "poststop": "stopped",
    }
    for kind, state in states.items():
        assert state["id"] == cid and state["status"] == expected_status[kind], kind
        assert state["bundle"] == str(bundle.path)
    assert states["prestart"]["pid"] == pid and states["poststart"]["pid"] == pid


def _nothing_left(bundle: Bundle, cid: str) -> None:
    assert not (bundle.root / cid).exists()
    assert cid not in bundle.bock("list").stdout


def test_failing_create_runtime_hook_fails_create_and_leaves_nothing(bundle):
    bundle.config["hooks"] = {
        "createRuntime": [
            {"path": "/bin/busybox", "args": ["true"]},
            {"path": "/bin/busybox", "args": ["sh", "-c", "echo out; echo boom >&2; exit 1"]},
        ]
    }
    bundle.write()
    cid = bundle.new_id()
    out = bundle.bock("create", cid, check=False)
    assert out.returncode != 0
    assert "error running createRuntime hook #1: exit status 1, stdout: out\\n, stderr: boom\\n" in out.stderr
    _nothing_left(bundle, cid)


def test_hanging_hook_is_killed_at_its_timeout(bundle):
    bundle.config["hooks"] = {"prestart": [{"path": "/bin/busybox", "args": ["sleep", "30"], "timeout": 1}]}
    bundle.write()
    cid = bundle.new_id()
    t0 = time.monotonic()
    out = bundle.bock("create", cid, check=False)
    assert out.returncode != 0
    assert "error running prestart hook #0: hook ran past specified timeout of 1.0s" in out.stderr
    assert time.monotonic() - t0 < 10
    _nothing_left(bundle, cid)


def test_failing_create_container_hook_fails_create(bundle):
    bundle.config["hooks"] = {"createContainer": [{"path": "/nonexistent/hook"}]}
    bundle.write()
    cid = bundle.new_id()
    out = bundle.bock("create", cid, check=False)
    assert out.returncode != 0
    assert (
        "error running createContainer hook #0: fork/exec /nonexistent/hook: no such file or directory"
        in out.stderr
    )
    _nothing_left(bundle, cid)


def test_failing_poststop_hook_only_warns(bundle):
    bundle.config["hooks"] = {
        "poststop": [{"path": "/bin/busybox", "args": ["sh", "-c", "echo nope >&2; exit 2"]}]
    }
    bundle.write()
    cid = bundle.new_id()
    bundle.bock("create", cid)
    out = bundle.bock("delete", "-f", cid, check=False)
    assert out.returncode == 0
    assert "error running poststop hook #0: exit status 2" in out.stderr
    _nothing_left(bundle, cid)


def test_failing_poststart_hook_fails_start_and_stops_the_container(bundle):
    bundle.config["hooks"] = {"poststart": [{"path": "/bin/busybox", "args": ["false"]}]}
    bundle.config["process"]["args"] = ["sleep", "30"]
    bundle.write()
    cid = bundle.new_id()
    bundle.bock("create", cid)
    pid = json.loads(bundle.bock("state", cid).stdout)["pid"]
    out = bundle.bock("start", cid, check=False)
    assert out.returncode != 0
    assert "error running poststart hook #0: exit status 1, stdout: , stderr: " in out.stderr
    for _ in range(100):
        state = bundle.bock("state", cid, check=False)
        if state.returncode != 0 or json.loads(state.stdout)["status"] == "stopped":
            break
        time.sleep(0.05)
    else:
        pytest.fail("the container kept running after its poststart hook failed")
    try:
        with open(f"/proc/{pid}/stat") as f:
            assert f.read().split(")")[1].split()[0] == "Z"  # at most a zombie not yet reaped
    except FileNotFoundError:
        pass

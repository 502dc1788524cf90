"""config.md "POSIX-platform Hooks": each hook runs, in order, at its moment, in its namespaces, with the
state on stdin; failures have the effect the spec gives."""

from __future__ import annotations

import json
import os
import time

import pytest

from bock_conformance import _host

pytestmark = pytest.mark.section("hooks")

ALL = ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"]
EXPECTED_STATUS = {
    "prestart": "creating",
    "createRuntime": "creating",
    "createContainer": "creating",
    "startContainer": "created",
    "poststart": "running",
    "poststop": "stopped",
}


class HookLog:
    """Host hook scripts that record their stdin, args, env and namespace into a log directory.

    The log directory is bind-mounted at /hooklog in the container so that startContainer (whose path
    resolves inside the container) writes to the same place.
    """

    def __init__(self, kit, cfg):
        self.kit = kit
        self.dir = kit.path("hooklog")
        self.dir.mkdir(exist_ok=True)
        os.chmod(self.dir, 0o777)
        self.cfg = cfg
        cfg["mounts"].append(
            {"destination": "/hooklog", "type": "bind", "source": str(self.dir), "options": ["rbind"]}
        )
        cfg.setdefault("hooks", {})

    def script(self, name, body="", fail=False):
        text = (
            "#!/bin/sh\n"
            f'D={self.dir}; [ -d "$D" ] || D=/hooklog\n'
            f'cat > "$D/{name}.stdin"\n'
            f'echo {name} >> "$D/order"\n'
            f'echo "$@" > "$D/{name}.args"\n'
            f'env > "$D/{name}.env"\n'
            f'readlink /proc/self/ns/mnt > "$D/{name}.mntns"\n'
            f'hostname > "$D/{name}.hostname"\n'
            f'date +%s.%N > "$D/{name}.time"\n'
            f"{body}\n" + ("exit 3\n" if fail else "exit 0\n")
        )
        host = self.dir / f"{name}.sh"
        host.write_text(text)
        host.chmod(0o755)
        return host

    def add(self, kind, name=None, fail=False, body="", **extra):
        name = name or kind
        host = self.script(name, body, fail)
        path = "/hooklog/" + host.name if kind == "startContainer" else str(host)
        entry = {"path": path, "args": [name, "arg1", "arg two"]}
        entry.update(extra)
        self.cfg["hooks"].setdefault(kind, []).append(entry)
        return entry

    def read(self, name, ext):
        p = self.dir / f"{name}.{ext}"
        return p.read_text() if p.exists() else None

    def state(self, name):
        text = self.read(name, "stdin")
        return json.loads(text) if text else None

    def order(self):
        path = self.dir / "order"
        return path.read_text().split() if path.exists() else []


def full_cycle(kit, hooks, script="sleep 300"):
    """create, start, kill, delete a container whose config holds *hooks*; returns the container."""
    ctr = kit.create(hooks.cfg)
    ctr.start().expect_ok()
    ctr.kill("KILL")
    ctr.wait_status("stopped")
    ctr.delete()
    return ctr


def setup(kit, kinds=ALL, script="sleep 300"):
    cfg = kit.config(script)
    hooks = HookLog(kit, cfg)
    for kind in kinds:
        hooks.add(kind)
    return hooks


@pytest.mark.parametrize("kind", ALL)
def test_hook_runs(kit, kind):
    hooks = setup(kit, [kind])
    full_cycle(kit, hooks)
    assert hooks.read(kind, "stdin") is not None, f"{kind} did not run"


@pytest.mark.parametrize("kind", ALL)
def test_hook_sees_status(kit, kind):
    hooks = setup(kit, [kind])
    full_cycle(kit, hooks)
    state = hooks.state(kind)
    assert state is not None and state.get("status") == EXPECTED_STATUS[kind], state


def test_hooks_run_in_lifecycle_order(kit):
    hooks = setup(kit)
    full_cycle(kit, hooks)
    assert (kit.path("hooklog") / "order").read_text().split() == ALL


def test_hook_state_has_id_and_bundle(kit):
    hooks = setup(kit, ["createRuntime"])
    ctr = full_cycle(kit, hooks)
    state = hooks.state("createRuntime")
    assert state["id"] == ctr.id and os.path.samefile(state["bundle"], ctr.bundle)


def test_hook_state_has_pid(kit):
    hooks = setup(kit, ["createRuntime"])
    ctr = kit.create(hooks.cfg)
    assert hooks.state("createRuntime").get("pid") == ctr.pid


def test_hook_state_has_annotations(kit):
    hooks = setup(kit, ["createRuntime"])
    hooks.cfg["annotations"] = {"org.example.hook": "yes"}
    kit.create(hooks.cfg)
    assert hooks.state("createRuntime").get("annotations") == {"org.example.hook": "yes"}


def test_hook_args_passed(kit):
    hooks = setup(kit, ["createRuntime"])
    kit.create(hooks.cfg)
    assert hooks.read("createRuntime", "args").strip() == "arg1 arg two"


def test_hook_env_passed(kit):
    cfg = kit.config("sleep 300")
    hooks = HookLog(kit, cfg)
    hooks.add("createRuntime", env=["HOOK_VAR=hook-value", "PATH=/usr/bin:/bin"])
    kit.create(cfg)
    env = dict(line.split("=", 1) for line in hooks.read("createRuntime", "env").splitlines() if "=" in line)
    assert env.get("HOOK_VAR") == "hook-value" and set(env) <= {"HOOK_VAR", "PATH", "PWD", "SHLVL", "_"}, env


def test_hooks_of_one_kind_run_in_listed_order(kit):
    cfg = kit.config("sleep 300")
    hooks = HookLog(kit, cfg)
    for name in ("first", "second", "third"):
        hooks.add("createRuntime", name=name)
    kit.create(cfg)
    assert hooks.order() == ["first", "second", "third"]


def test_create_runtime_hook_runs_in_runtime_namespace(kit):
    hooks = setup(kit, ["createRuntime"])
    kit.create(hooks.cfg)
    assert hooks.read("createRuntime", "mntns").strip() == _host.ns_inode("self", "mnt")


def test_create_container_hook_runs_in_container_namespace(kit):
    hooks = setup(kit, ["createContainer"])
    ctr = kit.create(hooks.cfg)
    assert hooks.read("createContainer", "mntns").strip() == _host.ns_inode(ctr.pid, "mnt")


def test_start_container_hook_runs_in_container(kit):
    hooks = setup(kit, ["startContainer"])
    ctr = kit.create(hooks.cfg)
    ctr.start().expect_ok()
    assert hooks.read("startContainer", "hostname").strip() == "conformance"


def test_poststart_hook_runs_after_start_invoked(kit):
    hooks = setup(kit, ["poststart"])
    ctr = kit.create(hooks.cfg)
    time.sleep(0.2)
    before_start = time.time()
    ctr.start().expect_ok()
    ran = hooks.read("poststart", "time")
    assert ran is not None and float(ran) >= before_start, (ran, before_start)


@pytest.mark.parametrize("kind", ["prestart", "createRuntime", "createContainer"])
def test_failing_create_hook_fails_create(kit, kind):
    cfg = kit.config("sleep 300")
    hooks = HookLog(kit, cfg)
    hooks.add(kind, fail=True)
    ctr, res = kit.try_create(cfg)
    res.expect_fail()
    assert ctr.status() is None or ctr.status() == "stopped"
    ctr.delete("--force")
    assert _host.existing_cgroup_dirs(cfg["linux"]["cgroupsPath"]) == []


def test_failing_start_container_hook_fails_start(kit):
    cfg = kit.config("sleep 300")
    hooks = HookLog(kit, cfg)
    hooks.add("startContainer", fail=True)
    ctr = kit.create(cfg)
    assert ctr.start().rc != 0


def test_failing_start_container_hook_user_program_never_runs(kit):
    cfg = kit.config("echo user-program-ran; sleep 300")
    hooks = HookLog(kit, cfg)
    hooks.add("startContainer", fail=True)
    ctr = kit.create(cfg)
    ctr.start()
    status = ctr.wait_status("stopped", timeout=5)
    assert "user-program-ran" not in ctr.output() and status in (None, "stopped"), (ctr.output(), status)


def test_failing_poststart_hook_stops_container(kit):
    cfg = kit.config("sleep 300")
    hooks = HookLog(kit, cfg)
    hooks.add("poststart", fail=True)
    ctr, res = kit.try_create(cfg)
    start = ctr.start() if res.rc == 0 else res
    status = ctr.wait_status("stopped", timeout=5)
    assert start.rc != 0 and status in (None, "stopped"), (start, status)


def test_failing_poststop_hook_only_warns(kit):
    cfg = kit.config("true")
    hooks = HookLog(kit, cfg)
    hooks.add("poststop", fail=True)
    ctr = kit.create(cfg)
    ctr.start().expect_ok()
    ctr.wait_status("stopped")
    res = ctr.delete()
    assert res.rc == 0 and ctr.status() is None, res


def test_hook_timeout_kills_hook(kit):
    cfg = kit.config("sleep 300")
    hooks = HookLog(kit, cfg)
    hooks.add("createRuntime", body="exec sleep 60", timeout=1)
    t0 = time.monotonic()
    _, res = kit.try_create(cfg, timeout=40)
    elapsed = time.monotonic() - t0
    assert res.rc != 0 and elapsed < 30, (res, elapsed)

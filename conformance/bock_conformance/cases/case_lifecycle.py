"""runtime.md: the lifecycle, every operation in every state, the required errors, the state document."""

from __future__ import annotations

import json
import os
import re
import time
from importlib import resources
from pathlib import Path

import jsonschema
import pytest

pytestmark = pytest.mark.section("lifecycle")

SLEEP = "sleep 300"
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")


def state_schema() -> dict:
    return json.loads(resources.files("bock_conformance").joinpath("schemas/state.json").read_text())


def stopped(kit, script="true"):
    ctr = kit.started(script)
    assert ctr.wait_status("stopped") == "stopped"
    return ctr


# -- create -------------------------------------------------------------------------------------------


def test_create_gives_created_status(kit):
    ctr = kit.create(kit.config(SLEEP))
    assert ctr.state()["status"] == "created"


def test_create_does_not_run_user_program(kit):
    ctr = kit.create(kit.config("echo ran > /ran; sleep 300"))
    time.sleep(0.3)
    assert not (ctr.bundle / "rootfs" / "ran").exists(), "process.args ran before start"


def test_created_pid_is_alive_on_host(kit):
    ctr = kit.create(kit.config(SLEEP))
    pid = ctr.pid
    assert pid > 0 and os.path.exists(f"/proc/{pid}")


def test_create_duplicate_id_fails(kit):
    ctr = kit.create(kit.config(SLEEP))
    _, res = kit.try_create(kit.config(SLEEP), cid=ctr.id)
    res.expect_fail()
    assert ctr.status() == "created", "the first container must be untouched"


@pytest.mark.parametrize("bad_id", ["a/b", "..", ".", "a b", ""])
def test_create_invalid_id_fails(kit, bad_id):
    _, res = kit.try_create(kit.config(SLEEP), cid=bad_id, pid_file=False)
    res.expect_fail()
    left = list(kit.root.iterdir()) if kit.root.is_dir() else []
    assert not left, f"state left behind: {left}"


def test_create_without_config_fails(kit):
    bdir = kit.bundle(None)
    cid = kit.new_id()
    res = kit.cli("create", "--bundle", bdir, cid)
    res.expect_fail()
    assert not (kit.root / cid).exists()


def test_create_with_broken_json_fails_and_leaves_nothing(kit):
    bdir = kit.bundle(None)
    (bdir / "config.json").write_text('{"ociVersion": "1.0.2", "process": ')
    cid = kit.new_id()
    kit.cli("create", "--bundle", bdir, cid).expect_fail()
    assert kit.cli("state", cid).rc != 0


def test_create_missing_bundle_dir_fails(kit):
    cid = kit.new_id()
    kit.cli("create", "--bundle", kit.path("no-such-bundle"), cid).expect_fail()
    assert kit.cli("state", cid).rc != 0


def test_create_missing_rootfs_fails(kit):
    cfg = kit.config(SLEEP)
    cfg["root"]["path"] = "no-such-rootfs"
    ctr, res = kit.try_create(cfg)
    res.expect_fail()
    assert ctr.status() is None


def test_failed_create_leaves_no_cgroup(kit):
    from bock_conformance import _host

    cfg = kit.config(SLEEP)
    cfg["root"]["path"] = "no-such-rootfs"
    _, res = kit.try_create(cfg)
    res.expect_fail()
    left = _host.existing_cgroup_dirs(cfg["linux"]["cgroupsPath"])
    assert not left, f"cgroup left behind in {left}"


def test_config_change_after_create_has_no_effect(kit):
    cfg = kit.config("echo original; sleep 300")
    ctr = kit.create(cfg)
    changed = json.loads(json.dumps(cfg))
    changed["process"]["args"] = ["sh", "-c", "echo changed; sleep 300"]
    kit.write_config(ctr.bundle, changed)
    ctr.start().expect_ok()
    out = ctr.wait_output("\n")
    assert kit.observe("out", out).strip() == "original"


# -- state ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", ["created", "running", "stopped"])
def test_state_validates_against_schema(kit, status):
    if status == "created":
        ctr = kit.create(kit.config(SLEEP))
    elif status == "running":
        ctr = kit.started(SLEEP)
    else:
        ctr = stopped(kit)
    doc = ctr.state()
    assert doc["status"] == status
    jsonschema.validate(doc, state_schema())


def test_state_id_matches(kit):
    ctr = kit.create(kit.config(SLEEP))
    assert ctr.state()["id"] == ctr.id


def test_state_bundle_is_absolute_bundle_path(kit):
    ctr = kit.create(kit.config(SLEEP))
    bundle = ctr.state()["bundle"]
    assert os.path.isabs(bundle) and os.path.samefile(bundle, ctr.bundle)


def test_state_oci_version_is_semver(kit):
    ctr = kit.create(kit.config(SLEEP))
    version = ctr.state()["ociVersion"]
    assert re.match(r"^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$", version), version


def test_state_pid_matches_pid_file(kit):
    ctr = kit.create(kit.config(SLEEP))
    assert ctr.pid == int(ctr.pid_file.read_text())


def test_state_created_is_rfc3339(kit):
    ctr = kit.create(kit.config(SLEEP))
    created = ctr.state(record=False).get("created")
    assert created is not None and RFC3339.match(created), created


def test_state_pid_zero_when_stopped(kit):
    ctr = stopped(kit)
    assert ctr.state(record=False).get("pid", 0) == 0


def test_state_of_missing_container_fails(kit):
    res = kit.cli("state", kit.new_id())
    assert res.rc == 1 and "does not exist" in res.err + res.out


def test_state_without_id_fails(kit):
    kit.cli("state").expect_fail()


def test_state_stopped_after_process_exits(kit):
    ctr = kit.started("exit 0")
    assert ctr.wait_status("stopped") == "stopped"


# -- start ----------------------------------------------------------------------------------------------


def test_start_runs_user_program(kit):
    ctr = kit.started("echo started; sleep 300")
    assert kit.observe("out", ctr.wait_output("started")).strip() == "started"


def test_start_makes_status_running(kit):
    ctr = kit.started(SLEEP)
    assert ctr.state()["status"] == "running"


def test_start_on_running_fails_without_effect(kit):
    ctr = kit.started("echo once; sleep 300")
    pid = ctr.pid
    ctr.start().expect_fail()
    assert ctr.status() == "running" and ctr.pid == pid
    assert ctr.wait_output("once").count("once") == 1


def test_start_on_stopped_fails(kit):
    ctr = stopped(kit)
    ctr.start().expect_fail()
    assert ctr.status() == "stopped"


def test_start_on_missing_fails(kit):
    res = kit.cli("start", kit.new_id())
    assert res.rc != 0 and "does not exist" in res.err + res.out


def test_start_without_id_fails(kit):
    kit.cli("start").expect_fail()


# -- kill -----------------------------------------------------------------------------------------------


def test_kill_created_container_stops_it(kit):
    ctr = kit.create(kit.config(SLEEP))
    ctr.kill("KILL").expect_ok()
    assert ctr.wait_status("stopped") == "stopped"


def test_kill_running_container_stops_it(kit):
    ctr = kit.started(SLEEP)
    ctr.kill("KILL").expect_ok()
    assert ctr.wait_status("stopped") == "stopped"


@pytest.mark.parametrize("sig", ["USR1", "SIGUSR1", "10"])
def test_kill_delivers_signal_forms(kit, sig):
    ctr = kit.started("trap 'echo got-usr1' USR1; echo ready; while true; do sleep 0.1; done")
    ctr.wait_output("ready")
    ctr.kill(sig).expect_ok()
    assert "got-usr1" in kit.observe("out", ctr.wait_output("got-usr1"))


@pytest.mark.parametrize("sig", ["TERM", "SIGTERM", "15"])
def test_kill_term_forms_stop_container(kit, sig):
    ctr = kit.started("trap 'exit 0' TERM; while true; do sleep 0.1; done")
    time.sleep(0.2)
    ctr.kill(sig).expect_ok()
    assert ctr.wait_status("stopped") == "stopped"


def test_kill_stopped_container_fails(kit):
    ctr = stopped(kit)
    res = ctr.kill("KILL")
    assert res.rc != 0 and "not running" in res.err + res.out


def test_kill_missing_container_fails(kit):
    res = kit.cli("kill", kit.new_id(), "KILL")
    assert res.rc != 0 and "does not exist" in res.err + res.out


def test_kill_invalid_signal_fails(kit):
    ctr = kit.started(SLEEP)
    ctr.kill("NOSUCHSIG").expect_fail()
    assert ctr.status() == "running"


# -- delete ---------------------------------------------------------------------------------------------


def test_delete_stopped_removes_container(kit):
    ctr = stopped(kit)
    ctr.delete().expect_ok()
    assert ctr.status() is None


def test_delete_makes_id_reusable(kit):
    ctr = stopped(kit)
    ctr.delete().expect_ok()
    again, res = kit.try_create(kit.config(SLEEP), cid=ctr.id)
    res.expect_ok()
    assert again.status() == "created"


def test_delete_running_fails_without_effect(kit):
    ctr = kit.started(SLEEP)
    ctr.delete().expect_fail()
    assert ctr.status() == "running"


def test_delete_created_succeeds_runc_contract(kit):
    ctr = kit.create(kit.config(SLEEP))
    ctr.delete().expect_ok()
    assert ctr.status() is None


def test_delete_force_running(kit):
    ctr = kit.started(SLEEP)
    pid = ctr.pid
    ctr.delete("--force").expect_ok()
    assert ctr.status() is None
    time.sleep(0.2)
    assert not os.path.exists(f"/proc/{pid}") or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]


def test_delete_missing_fails(kit):
    res = kit.cli("delete", kit.new_id())
    assert res.rc != 0 and "does not exist" in res.err + res.out


def test_delete_removes_cgroup(kit):
    from bock_conformance import _host

    ctr = stopped(kit)
    path = ctr.config["linux"]["cgroupsPath"]
    assert _host.existing_cgroup_dirs(path), "no cgroup was created"
    ctr.delete().expect_ok()
    assert _host.existing_cgroup_dirs(path) == []


def test_delete_removes_state_dir(kit):
    ctr = stopped(kit)
    ctr.delete().expect_ok()
    assert not (kit.root / ctr.id).exists()


def test_delete_leaves_bundle_alone(kit):
    ctr = stopped(kit)
    ctr.delete().expect_ok()
    assert (ctr.bundle / "config.json").exists() and (ctr.bundle / "rootfs" / "bin" / "busybox").exists()


# -- pause / resume (runc extension) ---------------------------------------------------------------------


def test_pause_gives_paused_status(kit):
    kit.require_subcommand("pause")
    ctr = kit.started(SLEEP)
    kit.cli("pause", ctr.id).expect_ok()
    assert ctr.state()["status"] == "paused"


def test_resume_gives_running_status(kit):
    kit.require_subcommand("pause")
    ctr = kit.started(SLEEP)
    kit.cli("pause", ctr.id).expect_ok()
    kit.cli("resume", ctr.id).expect_ok()
    assert ctr.state()["status"] == "running"


def test_paused_process_makes_no_progress(kit):
    kit.require_subcommand("pause")
    ctr = kit.started("i=0; while true; do i=$((i+1)); echo $i > /count; sleep 0.05; done")
    time.sleep(0.3)
    kit.cli("pause", ctr.id).expect_ok()
    count = ctr.bundle / "rootfs" / "count"
    first = count.read_text()
    time.sleep(0.4)
    assert count.read_text() == first


def test_start_on_paused_fails(kit):
    kit.require_subcommand("pause")
    ctr = kit.started(SLEEP)
    kit.cli("pause", ctr.id).expect_ok()
    ctr.start().expect_fail()
    assert ctr.status() == "paused"


def test_resume_not_paused_fails(kit):
    kit.require_subcommand("pause")
    ctr = kit.started(SLEEP)
    kit.cli("resume", ctr.id).expect_fail()
    assert ctr.status() == "running"


# -- run ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("code", [0, 3, 42])
def test_run_exit_code_propagates(kit, code):
    res = kit.sh(f"exit {code}")
    assert res.rc == code


def test_run_killed_by_signal_exit_code(kit):
    def no_pidns(cfg):
        cfg["linux"]["namespaces"] = [n for n in cfg["linux"]["namespaces"] if n["type"] != "pid"]

    res = kit.sh("kill -9 $$", no_pidns)
    assert res.rc == 137


def test_run_removes_container_afterwards(kit):
    res = kit.sh("true")
    res.expect_ok()
    assert kit.cli("state", kit.ids[-1]).rc != 0


def test_delete_paused_fails_without_effect(kit):
    kit.require_subcommand("pause")
    ctr = kit.started(SLEEP)
    kit.cli("pause", ctr.id).expect_ok()
    ctr.delete().expect_fail()
    assert ctr.status() == "paused"


def test_delete_force_paused(kit):
    kit.require_subcommand("pause")
    ctr = kit.started(SLEEP)
    kit.cli("pause", ctr.id).expect_ok()
    ctr.delete("--force").expect_ok()
    assert ctr.status() is None


def test_create_with_id_of_stopped_container_fails(kit):
    ctr = stopped(kit)
    _, res = kit.try_create(kit.config(SLEEP), cid=ctr.id)
    res.expect_fail()
    assert ctr.status() == "stopped"


def test_pause_stopped_fails(kit):
    kit.require_subcommand("pause")
    ctr = stopped(kit)
    res = kit.cli("pause", ctr.id)
    assert res.rc != 0 and "not running" in res.err + res.out, res

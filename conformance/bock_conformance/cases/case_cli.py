"""The runc command-line contract that containerd, podman, CRI-O and buildah rely on
(../shared/docs/runtime-cli-contract.md and the recorded calls in ../shared/docs/contracts/)."""

from __future__ import annotations

import json
import os
import re
import select
import subprocess
import time
from importlib import resources
from pathlib import Path

import jsonschema
import pytest

from bock_conformance import _host
from bock_conformance._console import read_until

pytestmark = pytest.mark.section("cli")

RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")
SLEEP = "sleep 300"


# -- argv shapes of the real callers ---------------------------------------------------------------------


def test_containerd_argv_shape(kit):
    cfg = kit.config(SLEEP)
    bdir = kit.bundle(cfg)
    cid = kit.new_id()
    log = bdir / "log.json"
    globs = ["--root", str(kit.root), "--log", str(log), "--log-format", "json"]
    out = bdir / "ctr.out"
    res = kit.cli(
        "create",
        "--bundle",
        bdir,
        "--pid-file",
        bdir / "init.pid",
        cid,
        global_args=globs,
        stdout_file=out,
        cwd=bdir,
    )
    res.expect_ok()
    kit.cli("start", cid, global_args=globs).expect_ok()
    kit.cli("kill", cid, "9", global_args=globs).expect_ok()
    time.sleep(0.3)
    kit.cli("delete", cid, global_args=globs).expect_ok()
    assert kit.cli("delete", "--force", cid, global_args=globs).rc == 0


def test_podman_argv_shape(kit):
    cfg = kit.config(SLEEP)
    bdir = kit.bundle(cfg)
    cid = kit.new_id()
    globs = [f"--root={kit.root}", "--log-format=json", "--log", str(bdir / "oci-log")]
    res = kit.cli(
        "create",
        "--bundle",
        bdir,
        "--pid-file",
        bdir / "pidfile",
        cid,
        global_args=globs,
        stdout_file=bdir / "out",
    )
    res.expect_ok()
    kit.cli("start", cid, global_args=[f"--root={kit.root}"]).expect_ok()
    assert kit.cli("state", cid).rc == 0 and json.loads(kit.cli("state", cid).out)["status"] == "running"


def test_create_short_bundle_flag(kit):
    cfg = kit.config(SLEEP)
    bdir = kit.bundle(cfg)
    cid = kit.new_id()
    kit.cli("create", "-b", bdir, cid, stdout_file=bdir / "out").expect_ok()
    assert json.loads(kit.cli("state", cid).out)["status"] == "created"


def test_create_bundle_defaults_to_cwd(kit):
    cfg = kit.config(SLEEP)
    bdir = kit.bundle(cfg)
    cid = kit.new_id()
    kit.cli("create", cid, cwd=bdir, stdout_file=bdir / "out").expect_ok()
    assert os.path.samefile(json.loads(kit.cli("state", cid).out)["bundle"], bdir)


@pytest.mark.parametrize("flag", ["--all", "-a"])
def test_kill_all_flag(kit, flag):
    ctr = kit.started(SLEEP)
    ctr.kill("9", flag).expect_ok()
    assert ctr.wait_status("stopped") == "stopped"


def test_delete_short_force_flag(kit):
    ctr = kit.started(SLEEP)
    ctr.delete("-f").expect_ok()
    assert ctr.status() is None


def test_delete_force_missing_id_succeeds_silently(kit):
    res = kit.cli("delete", "--force", kit.new_id())
    assert res.rc == 0 and res.out == "", res


def test_global_debug_flag_accepted(kit):
    ctr = kit.create(kit.config(SLEEP))
    assert kit.cli("state", ctr.id, global_args=["--root", str(kit.root), "--debug"]).rc == 0


def test_global_criu_flag_accepted(kit):
    ctr = kit.create(kit.config(SLEEP))
    assert kit.cli("state", ctr.id, global_args=["--root", str(kit.root), "--criu", "/usr/sbin/criu"]).rc == 0


def test_create_no_new_keyring(kit):
    ctr = kit.create(kit.config(SLEEP), "--no-new-keyring")
    assert ctr.status() == "created"


# -- log file --------------------------------------------------------------------------------------------


def failed_create_with_log(kit, log, fmt="json"):
    cfg = kit.config(args=["/nonexistent-binary"])
    bdir = kit.bundle(cfg)
    globs = ["--root", str(kit.root), "--log", str(log), "--log-format", fmt]
    cid = kit.new_id()
    if kit.cli("create", "--bundle", bdir, cid, global_args=globs, stdout_file=bdir / "out").rc == 0:
        kit.cli("start", cid, global_args=globs)  # a runtime may report a missing binary at start
    return cid


def test_log_json_lines_are_objects(kit):
    log = kit.path("log.json")
    failed_create_with_log(kit, log)
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    assert lines and all({"level", "msg", "time"} <= set(obj) for obj in lines), lines


def test_log_json_time_is_rfc3339(kit):
    log = kit.path("log.json")
    failed_create_with_log(kit, log)
    times = [json.loads(line)["time"] for line in log.read_text().splitlines() if line.strip()]
    assert times and all(RFC3339.match(t) for t in times), times


def test_log_json_has_error_line_naming_the_problem(kit):
    log = kit.path("log.json")
    failed_create_with_log(kit, log)
    errors = [json.loads(line) for line in log.read_text().splitlines() if '"error"' in line]
    assert errors and "nonexistent-binary" in errors[-1]["msg"], errors


def test_log_is_appended(kit):
    log = kit.path("log.json")
    log.write_text('{"level":"info","msg":"earlier","time":"2020-01-01T00:00:00Z"}\n')
    failed_create_with_log(kit, log)
    assert log.read_text().startswith('{"level":"info","msg":"earlier"')


def test_log_file_created_when_missing(kit):
    log = kit.path("fresh-log.json")
    ctr = kit.create(kit.config(SLEEP))
    kit.cli("state", ctr.id, global_args=["--root", str(kit.root), "--log", str(log), "--log-format", "json"])
    assert log.exists()


def test_log_format_invalid_rejected(kit):
    res = kit.cli("list", global_args=["--root", str(kit.root), "--log-format", "yaml"])
    assert res.rc != 0


# -- pid file --------------------------------------------------------------------------------------------


def test_pid_file_digits_only(kit):
    ctr = kit.create(kit.config(SLEEP))
    text = ctr.pid_file.read_text()
    assert re.fullmatch(r"[0-9]+", text), repr(text)


def test_pid_file_is_live_container_init(kit):
    ctr = kit.create(kit.config(SLEEP))
    pid = int(ctr.pid_file.read_text())
    assert os.path.exists(f"/proc/{pid}") and _host.ns_inode(pid, "pid") != _host.ns_inode("self", "pid")


def test_pid_file_relative_to_caller_cwd(kit):
    cfg = kit.config(SLEEP)
    bdir = kit.bundle(cfg)
    cid = kit.new_id()
    sub = kit.path("callercwd")
    sub.mkdir()
    kit.cli(
        "create", "--bundle", bdir, "--pid-file", "rel.pid", cid, cwd=sub, stdout_file=bdir / "out"
    ).expect_ok()
    assert (sub / "rel.pid").exists()


def test_no_pid_file_after_failed_create(kit):
    cfg = kit.config(SLEEP)
    cfg["root"]["path"] = "missing-rootfs"
    ctr, res = kit.try_create(cfg)
    res.expect_fail()
    assert not ctr.pid_file.exists()


# -- exec --------------------------------------------------------------------------------------------------


def process_json(kit, args, **extra):
    proc = {
        "terminal": False,
        "user": {"uid": 0, "gid": 0},
        "args": args,
        "env": ["PATH=/bin", "EXEC_VAR=e"],
        "cwd": "/",
    }
    proc.update(extra)
    path = kit.fresh("process", ".json")
    path.write_text(json.dumps(proc))
    return path


@pytest.mark.parametrize("code", [0, 7])
def test_exec_foreground_exit_code(kit, code):
    ctr = kit.started(SLEEP)
    res = kit.cli("exec", "--process", process_json(kit, ["sh", "-c", f"exit {code}"]), ctr.id)
    assert res.rc == code


def test_exec_process_env_and_cwd(kit):
    ctr = kit.started(SLEEP)
    res = kit.cli(
        "exec", "--process", process_json(kit, ["sh", "-c", "echo $EXEC_VAR; pwd"], cwd="/tmp"), ctr.id
    )
    assert res.out.split() == ["e", "/tmp"]


def test_exec_missing_binary_exit_255(kit):
    ctr = kit.started(SLEEP)
    res = kit.cli("exec", "--process", process_json(kit, ["/no/such/binary"]), ctr.id)
    assert res.rc == 255, res


def test_exec_on_stopped_container_fails(kit):
    ctr = kit.started("true")
    ctr.wait_status("stopped")
    assert kit.cli("exec", ctr.id, "true").rc != 0


def test_exec_detach_pid_file_is_the_process(kit):
    ctr = kit.started(SLEEP)
    pidf = kit.path("exec.pid")
    proc = process_json(kit, ["sleep", "301"])
    res = kit.cli(
        "exec", "--process", proc, "--detach", "--pid-file", pidf, ctr.id, stdout_file=kit.path("exec.out")
    )
    res.expect_ok()
    pid = int(pidf.read_text())
    assert Path(f"/proc/{pid}/cmdline").read_text().split("\0")[:2] == ["sleep", "301"]


def test_exec_joins_container_namespaces(kit):
    ctr = kit.started(SLEEP)
    res = ctr.exec(["readlink", "/proc/self/ns/mnt"])
    assert res.out.strip() == _host.ns_inode(ctr.pid, "mnt")


# -- console socket ----------------------------------------------------------------------------------------


def test_console_create_does_not_hold_caller_stdout(kit):
    cfg = kit.config(SLEEP)
    cfg["process"]["terminal"] = True
    sock = kit.console_socket()
    bdir = kit.bundle(cfg)
    cid = kit.new_id()
    proc = subprocess.Popen(
        kit.argv("create", "--bundle", str(bdir), "--console-socket", str(sock.path), cid),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    got = sock.receive()
    kit.on_cleanup(got.close)
    assert proc.wait(timeout=30) == 0
    ready, _, _ = select.select([proc.stdout], [], [], 10)
    assert ready and proc.stdout.read() == b"", "the container holds the runtime's stdout pipe"
    proc.stderr.close()
    proc.stdout.close()


def test_console_socket_sent_before_accept(kit):
    cfg = kit.config(SLEEP)
    cfg["process"]["terminal"] = True
    sock = kit.console_socket()
    ctr = kit.create(cfg, "--console-socket", str(sock.path))  # create returns before we accept
    got = sock.receive(timeout=5)
    kit.on_cleanup(got.close)
    assert len(got.fds) == 1 and ctr.status() == "created"


def test_terminal_create_without_console_socket_fails(kit):
    cfg = kit.config(SLEEP)
    cfg["process"]["terminal"] = True
    _, res = kit.try_create(cfg)
    res.expect_fail()


def test_console_socket_without_terminal_fails(kit):
    sock = kit.console_socket()
    _, res = kit.try_create(kit.config(SLEEP), "--console-socket", str(sock.path))
    res.expect_fail()


# -- output formats ----------------------------------------------------------------------------------------


def test_ps_json_is_clean_pid_list(kit):
    kit.require_subcommand("ps")
    ctr = kit.started(SLEEP)
    res = kit.cli("ps", "--format", "json", ctr.id)
    pids = json.loads(res.out)
    assert (
        res.err == "" and isinstance(pids, list) and ctr.pid in pids and all(isinstance(p, int) for p in pids)
    )


def test_ps_json_lists_exec_processes(kit):
    kit.require_subcommand("ps")
    ctr = kit.started("sleep 300 & sleep 300 & echo ready; wait")
    ctr.wait_output("ready")
    pids = json.loads(kit.cli("ps", "--format", "json", ctr.id).out)
    assert len(pids) == 3, pids


def test_state_stdout_is_pure_json(kit):
    ctr = kit.create(kit.config(SLEEP))
    res = kit.cli("state", ctr.id)
    assert isinstance(json.loads(res.out), dict) and res.err == ""


@pytest.mark.parametrize("op", ["start", "kill", "delete"])
def test_quiet_stdout_on_success(kit, op):
    ctr = kit.create(kit.config(SLEEP))
    if op in ("kill", "delete"):
        ctr.start().expect_ok()
    if op == "delete":
        ctr.kill("KILL").expect_ok()
        ctr.wait_status("stopped")
    res = {"start": ctr.start, "kill": lambda: ctr.kill("KILL"), "delete": ctr.delete}[op]()
    assert res.rc == 0 and res.out == "" and res.err == "", res


def test_list_json_contains_container(kit):
    kit.require_subcommand("list")
    ctr = kit.create(kit.config(SLEEP))
    items = json.loads(kit.cli("list", "--format", "json").out)
    assert [i["status"] for i in items if i["id"] == ctr.id] == ["created"]


def test_list_quiet_prints_ids(kit):
    kit.require_subcommand("list")
    ctr = kit.create(kit.config(SLEEP))
    assert kit.cli("list", "-q").out.split() == [ctr.id]


def test_version_output_shape(kit):
    lines = kit.cli("--version", global_args=[], record=False).out.splitlines()
    assert re.match(r"^\S+ version \S+", lines[0]) and any(ln.startswith("spec:") for ln in lines), lines


def test_errors_exit_1(kit):
    assert kit.cli("state", kit.new_id()).rc == 1


def test_duplicate_id_message(kit):
    ctr = kit.create(kit.config(SLEEP))
    _, res = kit.try_create(kit.config(SLEEP), cid=ctr.id)
    assert "already exists" in res.err, res


def test_start_running_message(kit):
    ctr = kit.started(SLEEP)
    res = ctr.start()
    assert "cannot start an already running container" in res.err, res


def test_delete_running_message(kit):
    ctr = kit.started(SLEEP)
    assert "is not stopped" in ctr.delete().err


def test_spec_writes_default_config(kit):
    kit.require_subcommand("spec")
    bdir = kit.bundle(None, rootfs=False)
    kit.cli("spec", "--bundle", bdir).expect_ok()
    doc = json.loads((bdir / "config.json").read_text())
    assert doc["ociVersion"] and doc["process"]["args"] and doc["root"]["path"] == "rootfs"


def test_run_detach(kit):
    cfg = kit.config(SLEEP)
    bdir = kit.bundle(cfg)
    cid = kit.new_id()
    kit.cli("run", "--detach", "--bundle", bdir, cid, stdout_file=bdir / "out", timeout=20).expect_ok()
    assert json.loads(kit.cli("state", cid).out)["status"] == "running"


# -- fds ------------------------------------------------------------------------------------------------


def create_with_fd3(kit, cfg, *flags):
    """create with the caller's fd 3 open on a host file (as containerd-shim leaks it)."""
    secret = kit.path("fd3-secret")
    secret.write_text("host-secret\n")
    bdir = kit.bundle(cfg)
    cid = kit.new_id()
    out = kit.path(f"{cid}.out")
    with open(secret) as f, open(out, "wb") as o:
        fd = f.fileno()
        proc = subprocess.run(
            kit.argv("run", *flags, "--bundle", str(bdir), cid),
            pass_fds=(3,),
            preexec_fn=lambda: os.dup2(fd, 3),
            stdout=o,
            stderr=subprocess.PIPE,
            timeout=60,
            stdin=subprocess.DEVNULL,
        )
    return proc.returncode, out.read_text()


def test_caller_fd_not_leaked_into_container(kit):
    rc, out = create_with_fd3(kit, kit.config("ls /proc/self/fd"))
    fds = sorted(int(x) for x in out.split())
    assert rc == 0 and fds[:3] == [0, 1, 2] and 3 not in fds[:-1] and len(fds) <= 4, fds


def test_preserve_fds_passes_fd3(kit):
    rc, out = create_with_fd3(kit, kit.config("cat <&3"), "--preserve-fds", "1")
    assert rc == 0 and out == "host-secret\n"


# -- update, events, features ------------------------------------------------------------------------------


def memory_limit(ctr):
    d = _host.v1_dir("memory", ctr.config["linux"]["cgroupsPath"])
    if d is None:
        d = _host.v2_dir(ctr.config["linux"]["cgroupsPath"])
        return (d / "memory.max").read_text().strip()
    return (d / "memory.limit_in_bytes").read_text().strip()


@pytest.mark.parametrize("form", [["--resources", "-"], ["--resources=-"]])
def test_update_resources_from_stdin(kit, form):
    kit.require_subcommand("update")
    ctr = kit.started(SLEEP)
    res = kit.cli("update", *form, ctr.id, stdin=json.dumps({"memory": {"limit": 100 * 1024 * 1024}}))
    res.expect_ok()
    assert memory_limit(ctr) == str(100 * 1024 * 1024)


def test_update_resources_from_file(kit):
    kit.require_subcommand("update")
    ctr = kit.started(SLEEP)
    f = kit.path("resources.json")
    f.write_text(json.dumps({"pids": {"limit": 321}}))
    kit.cli("update", f"--resources={f}", ctr.id).expect_ok()
    assert (
        _host.cgroup_dir("pids", ctr.config["linux"]["cgroupsPath"]) / "pids.max"
    ).read_text().strip() == "321"


def test_update_memory_flag(kit):
    kit.require_subcommand("update")
    ctr = kit.started(SLEEP)
    kit.cli("update", "--memory", str(90 * 1024 * 1024), ctr.id).expect_ok()
    assert memory_limit(ctr) == str(90 * 1024 * 1024)


def test_events_stats_one_json_object(kit):
    kit.require_subcommand("events")
    ctr = kit.started(SLEEP)
    res = kit.cli("events", "--stats", ctr.id)
    obj = json.loads(res.out)
    assert obj["type"] == "stats" and obj["id"] == ctr.id and "pids" in obj["data"], obj


def test_events_on_stopped_container_fails(kit):
    kit.require_subcommand("events")
    ctr = kit.started("true")
    ctr.wait_status("stopped")
    assert kit.cli("events", "--stats", ctr.id).rc != 0


def features(kit):
    kit.require_subcommand("features")
    res = kit.cli("features", global_args=[])
    res.expect_ok()
    return res, json.loads(res.out)


def test_features_valid_against_schema(kit):
    _, doc = features(kit)
    schema = json.loads(resources.files("bock_conformance").joinpath("schemas/features.json").read_text())
    jsonschema.validate(doc, schema)


def test_features_version_range(kit):
    _, doc = features(kit)

    def key(v):
        return tuple(int(x) for x in re.findall(r"\d+", v)[:3])

    assert key(doc["ociVersionMin"]) <= key(doc["ociVersionMax"])


def test_features_lists_all_hooks(kit):
    _, doc = features(kit)
    assert set(doc.get("hooks") or []) >= {
        "prestart",
        "createRuntime",
        "createContainer",
        "startContainer",
        "poststart",
        "poststop",
    }


def test_features_stdout_only(kit):
    res, doc = features(kit)
    assert res.err == "" and isinstance(doc, dict)


def test_features_namespaces_known(kit):
    _, doc = features(kit)
    ns = set((doc.get("linux") or {}).get("namespaces") or [])
    assert {"pid", "network", "mount", "ipc", "uts"} <= ns, ns


def test_checkpoint_help_probe(kit):
    """podman's probe: `checkpoint --help` exits 0 only where checkpoint/restore works."""
    kit.require_subcommand("checkpoint")
    res = kit.cli("checkpoint", "--help")
    if res.rc != 0 and "not supported" in res.err:
        pytest.skip("runtime lacks the `checkpoint` subcommand (it says it is not supported)")
    assert res.rc == 0, res


def test_exec_killed_by_signal_exit_code(kit):
    ctr = kit.started(SLEEP)
    res = kit.cli("exec", "--process", process_json(kit, ["sh", "-c", "kill -9 $$"]), ctr.id)
    assert res.rc == 137, res


def test_pid_file_written_atomically(kit):
    ctr = kit.create(kit.config(SLEEP))
    leftovers = [p.name for p in ctr.pid_file.parent.iterdir() if p.name.startswith(".")]
    assert ctr.pid_file.exists() and leftovers == [], leftovers


def test_exec_tty_console_socket(kit):
    ctr = kit.started(SLEEP)
    sock = kit.console_socket()
    proc = process_json(kit, ["sh", "-c", "tty; sleep 300"], terminal=True)
    res = kit.cli(
        "exec",
        "--process",
        proc,
        "--detach",
        "--console-socket",
        sock.path,
        "--pid-file",
        kit.path("tty.pid"),
        ctr.id,
    )
    res.expect_ok()
    got = sock.receive()
    kit.on_cleanup(got.close)
    assert len(got.fds) == 1 and b"/dev/pts/" in read_until(got.fds[0], b"/dev/pts/")

"""The command line: global flags in every form, --version, --log/--log-format, exit codes,
the error wording callers match on, and a clean stdout."""

from __future__ import annotations

import json
import os
import pathlib
import re
import subprocess
from datetime import datetime

import pytest

pytestmark = pytest.mark.root

RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")


def parse_rfc3339(value: str) -> datetime:
    assert RFC3339.match(value), value
    return datetime.fromisoformat(
        value.replace("Z", "+00:00")[:26] + "+00:00" if "." in value else value.replace("Z", "+00:00")
    )


# -- --version ----------------------------------------------------------------------------


@pytest.mark.parametrize("flag", ["--version", "-v", "-version"])
def test_version_lines(runtime, flag):
    res = runtime.raw([flag]).ok()
    lines = res.out.splitlines()
    assert re.fullmatch(r"bock version \S+", lines[0])
    assert lines[1].startswith("commit: ")
    assert lines[2] == "spec: 1.3.0"
    assert res.err == ""


def test_help_goes_to_stdout(runtime):
    res = runtime.raw(["--help"]).ok()
    assert "USAGE" in res.out and "create" in res.out


# -- global flags in every form -----------------------------------------------------------


@pytest.mark.parametrize(
    "form",
    [
        lambda r: ["--root", r],
        lambda r: [f"--root={r}"],
        lambda r: ["-root", r],
        lambda r: [f"-root={r}"],
    ],
)
def test_root_flag_forms_reach_the_same_container(runtime, bundle, form):
    cid = runtime.create(bundle("sleep", "10"))
    res = runtime.raw([*form(runtime.root), "state", cid]).ok()
    assert json.loads(res.out)["id"] == cid


def test_relative_root_is_made_absolute(runtime, bundle, tmp_path):
    cid = runtime.create(bundle("sleep", "10"))
    rel = os.path.relpath(runtime.root, str(tmp_path))
    res = runtime.raw(["--root", rel, "state", cid], cwd=str(tmp_path)).ok()
    assert json.loads(res.out)["status"] == "created"


def test_root_slash_is_refused(runtime):
    res = runtime.raw(["--root", "/", "list"])
    assert res.rc == 1 and res.out == ""


@pytest.mark.parametrize(
    "flags",
    [
        ["--debug"],
        ["--debug=false"],
        ["--systemd-cgroup=false"],
        ["--rootless=false"],
        ["--rootless=auto"],
        ["--criu", "/usr/sbin/criu"],
        ["--criu=/usr/sbin/criu"],
        ["--log-format", "text"],
        ["--log-format=json"],
        ["-log-format", "json"],
    ],
)
def test_accepted_global_flags(runtime, bundle, flags):
    cid = runtime.create(bundle("sleep", "10"))
    res = runtime.raw([*flags, "--root", runtime.root, "state", cid]).ok()
    assert json.loads(res.out)["id"] == cid


def test_all_global_flags_together_on_a_whole_lifecycle(runtime, bundle, tmp_path):
    b = bundle("true")
    cid = runtime.new_id()
    log = str(tmp_path / "all.log")
    g = ["--root", runtime.root, "--log", log, "--log-format", "json", "--debug", "--criu", "criu"]
    with open(b.out_path, "w") as out:
        runtime.raw([*g, "create", "--bundle", b.path, cid], stdout=out, stderr=out).ok()
    runtime.raw([*g, "start", cid]).ok()
    runtime.raw([*g, "delete", "--force", cid]).ok()
    for line in pathlib.Path(log).read_text().splitlines():
        assert set(json.loads(line)) == {"level", "msg", "time"}


def test_invalid_log_format(runtime):
    res = runtime.raw(["--log-format", "xml", "--root", runtime.root, "list"])
    assert res.rc == 1
    assert "invalid log-format" in res.err and res.out == ""


def test_unknown_global_flag(runtime):
    res = runtime.raw(["--no-such-flag", "list"])
    assert res.rc != 0 and "flag provided but not defined" in res.err and res.out == ""


def test_unknown_subcommand(runtime):
    res = runtime("frobnicate")
    assert res.rc != 0 and res.out == ""


# -- --log ------------------------------------------------------------------------------


def test_log_file_is_created_even_on_success(runtime, tmp_path):
    log = tmp_path / "sub-not-needed.log"
    runtime.raw(["--log", str(log), "--log-format", "json", "--root", runtime.root, "list"]).ok()
    assert log.exists()
    assert oct(log.stat().st_mode & 0o777) == oct(0o644 & ~_umask())


def _umask() -> int:
    m = os.umask(0)
    os.umask(m)
    return m


def test_json_log_lines_on_error_are_appended(runtime, tmp_path):
    log = tmp_path / "log.json"
    log.write_text('{"level":"info","msg":"earlier","time":"2020-01-01T00:00:00Z"}\n')
    res = runtime.raw(
        ["--log", str(log), "--log-format", "json", "--root", runtime.root, "state", "t-missing0000"]
    )
    assert res.rc == 1
    assert res.out == ""
    lines = log.read_text().splitlines()
    assert json.loads(lines[0])["msg"] == "earlier"  # appended, not truncated
    last = json.loads(lines[-1])
    assert set(last) == {"level", "msg", "time"}
    assert last["level"] == "error"
    assert "does not exist" in last["msg"]
    parse_rfc3339(last["time"])
    res2 = runtime.raw(
        ["--log", str(log), "--log-format=json", "--root", runtime.root, "kill", "t-missing0000"]
    )
    assert res2.rc == 1
    assert len(log.read_text().splitlines()) == len(lines) + 1


def test_text_log_on_error(runtime, tmp_path):
    log = tmp_path / "log.txt"
    res = runtime.raw(["--log", str(log), "--root", runtime.root, "state", "t-missing0000"])
    assert res.rc == 1
    text = log.read_text()
    assert "level=error" in text and "does not exist" in text
    m = re.search(r'time="([^"]+)"', text)
    assert m and RFC3339.match(m.group(1))


def test_error_without_log_goes_to_stderr_only(runtime):
    res = runtime("state", "t-missing0000")
    assert res.rc == 1 and res.out == "" and "does not exist" in res.err


def test_log_json_on_stderr_without_a_file(runtime):
    res = runtime.raw(["--log-format", "json", "--root", runtime.root, "state", "t-missing0000"])
    assert res.rc == 1
    line = json.loads(res.err.strip().splitlines()[-1])
    assert line["level"] == "error" and "does not exist" in line["msg"]


# -- error wording --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        ["state", "t-nope00000000"],
        ["start", "t-nope00000000"],
        ["kill", "t-nope00000000", "9"],
        ["delete", "t-nope00000000"],
    ],
)
def test_does_not_exist(runtime, argv):
    res = runtime(*argv)
    assert res.rc == 1
    assert "does not exist" in res.err
    assert res.out == ""


def test_delete_force_of_a_missing_id_exits_zero(runtime):
    res = runtime("delete", "--force", "t-nope00000000")
    assert res.rc == 0 and res.out == ""


def test_kill_stopped_container_not_running(runtime, bundle):
    b = bundle("true")
    cid = runtime.create(b)
    runtime.start(cid)
    _wait_status(runtime, cid, "stopped")
    res = runtime("kill", cid, "KILL")
    assert res.rc == 1 and "container not running" in res.err and res.out == ""


def _json_error(res) -> str:
    """The msg of the last JSON log line on stderr (what containerd and conmon read)."""
    assert res.rc == 1, res
    assert res.out == ""
    return json.loads(res.err.strip().splitlines()[-1])["msg"]


def test_missing_absolute_executable(runtime, bundle):
    b = bundle("/no/such/binary", "arg")
    cid = runtime.new_id()
    res = runtime.raw(
        ["--log-format", "json", "--root", runtime.root, "create", "--bundle", b.path, cid],
        stdin=subprocess.DEVNULL,
    )
    assert 'exec: "/no/such/binary": stat /no/such/binary: no such file or directory' in _json_error(res)
    assert runtime("state", cid).rc == 1  # nothing left behind
    assert not os.path.exists(os.path.join(runtime.root, cid))


def test_missing_executable_in_path(runtime, bundle):
    b = bundle("no-such-command")
    res = runtime.raw(
        ["--log-format=json", "--root", runtime.root, "run", "--bundle", b.path, runtime.new_id()],
        stdin=subprocess.DEVNULL,
    )
    assert 'exec: "no-such-command": executable file not found in $PATH' in _json_error(res)


def test_exec_error_in_the_log_file_and_on_stderr(runtime, bundle, tmp_path):
    log = tmp_path / "log.json"
    b = bundle("/no/such/binary")
    res = runtime.raw(
        [
            "--log",
            str(log),
            "--log-format",
            "json",
            "--root",
            runtime.root,
            "run",
            "--bundle",
            b.path,
            runtime.new_id(),
        ],
        stdin=subprocess.DEVNULL,
    )
    assert res.rc == 1 and res.out == ""
    last = json.loads(log.read_text().splitlines()[-1])
    assert last["level"] == "error"
    assert 'exec: "/no/such/binary": stat /no/such/binary: no such file or directory' in last["msg"]
    # runc also prints the plain error on stderr when logging to a file
    assert 'exec: "/no/such/binary": stat /no/such/binary: no such file or directory' in res.err


def test_non_executable_file(runtime, bundle):
    b = bundle("/etc/passwd")
    res = runtime.run(b)
    assert res.rc == 1 and "permission denied" in res.err


def test_container_already_exists(runtime, bundle):
    b = bundle("sleep", "10")
    cid = runtime.create(b)
    res = runtime("create", "--bundle", b.path, cid, stdin=subprocess.DEVNULL)
    assert res.rc == 1
    assert "container with given ID already exists" in res.err
    assert runtime.status(cid) == "created"  # the first one is untouched


@pytest.mark.parametrize("cid", ["../escape", "a/b", "a b", ".", "..", "ä", "x" * 1025])
def test_invalid_container_ids(runtime, bundle, cid, tmp_path):
    b = bundle("true")
    res = runtime("create", "--bundle", b.path, cid, stdin=subprocess.DEVNULL)
    assert res.rc == 1
    assert "invalid container ID format" in res.err
    assert not (tmp_path / "escape").exists()
    assert not os.path.exists(runtime.root) or os.listdir(runtime.root) == []
    for verb in (["state"], ["start"], ["delete"], ["kill"]):
        r = runtime(*verb, cid)
        assert r.rc == 1 and "invalid container ID format" in r.err, (verb, r)


def test_missing_bundle(runtime, tmp_path):
    res = runtime("create", "--bundle", str(tmp_path / "nope"), runtime.new_id())
    assert res.rc == 1 and "config.json" in res.err and res.out == ""


def test_missing_rootfs(runtime, bundle):
    b = bundle("true", rootfs=False)
    assert "rootfs" in runtime.create_fails(b).err


def test_wrong_number_of_arguments(runtime):
    for argv in (["state"], ["start"], ["delete"], ["state", "a", "b"], ["kill"]):
        res = runtime(*argv)
        assert res.rc == 1 and res.out == "", (argv, res)


def test_bad_signal(runtime, bundle):
    cid = runtime.create(bundle("sleep", "10"))
    res = runtime("kill", cid, "SIGNOPE")
    assert res.rc == 1 and res.out == ""
    assert runtime.status(cid) == "created"


# -- stdout stays clean ---------------------------------------------------------------------


def test_stdout_is_clean_through_the_lifecycle(runtime, bundle):
    b = bundle("sleep", "10")
    cid = runtime.new_id()
    out_file = b.out_path + ".stdout"
    with open(out_file, "w") as cout, open(b.out_path, "w") as cerr:
        # a file, not a pipe: the container inherits bock's stdout and would hold a pipe open
        runtime("create", "--bundle", b.path, cid, stdin=subprocess.DEVNULL, stdout=cout, stderr=cerr).ok()
    with open(out_file) as f:
        assert f.read() == ""
    assert runtime("start", cid).out == ""
    assert runtime("kill", cid, "KILL").out == ""
    _wait_status(runtime, cid, "stopped")
    assert runtime("delete", cid).out == ""


def _wait_status(runtime, cid: str, status: str, timeout: float = 10) -> None:
    import time

    deadline = time.monotonic() + timeout
    while True:
        got = runtime.status(cid)
        if got == status:
            return
        assert time.monotonic() < deadline, f"{cid} is {got}, wanted {status}"
        time.sleep(0.02)


@pytest.mark.parametrize("value", ["true", "false", "auto"])
def test_rootless_takes_a_separate_value_too(runtime, value):
    # urfave/cli: --rootless is a string flag, so "--rootless false" is flag + value
    res = runtime.raw(["--rootless", value, "--root", runtime.root, "list", "-q"])
    assert res.rc == 0, res


def test_systemd_cgroup_bare_is_accepted(runtime):
    runtime.raw(["--systemd-cgroup", "--root", runtime.root, "list"]).ok()


def test_run_detach_with_terminal_needs_a_console_socket(runtime, bundle):
    b = bundle("true")
    b.config["process"]["terminal"] = True
    b.save()
    cid = runtime.new_id()
    res = runtime("run", "--detach", "--bundle", b.path, cid)
    assert res.rc == 1 and "console socket" in res.err
    assert not os.path.exists(os.path.join(runtime.root, cid))


def test_no_new_keyring_is_accepted(runtime, bundle):
    for form in ("--no-new-keyring", "-no-new-keyring", "--no-new-keyring=false"):
        runtime.run(bundle("true"), None, form).ok()


def test_pid_file_in_a_missing_directory_fails_and_cleans_up(runtime, bundle, tmp_path):
    b = bundle("sleep", "60")
    before = set(os.listdir("/proc"))
    res = runtime.create_fails(b, "--pid-file", str(tmp_path / "missing-dir" / "x.pid"))
    assert "missing-dir" in res.err
    # the init that was waiting is gone too
    for pid in set(os.listdir("/proc")) - before:
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                assert b.path.encode() not in f.read()
        except FileNotFoundError:
            pass


@pytest.mark.parametrize("text", ["{nope", "", "[]", '{"ociVersion": "1.0.0"', "\xff\xfe"])
def test_malformed_config_json_is_a_clear_error(runtime, bundle, text):
    b = bundle("true")
    with open(os.path.join(b.path, "config.json"), "w", encoding="latin-1") as f:
        f.write(text)
    res = runtime.create_fails(b)
    assert "config.json" in res.err
    assert "Traceback" not in res.err


def test_damaged_state_is_a_clear_error_and_force_delete_removes_it(runtime):
    cid = "t-damaged00000"
    os.makedirs(os.path.join(runtime.root, cid))
    with open(os.path.join(runtime.root, cid, "state.json"), "w") as f:
        f.write("{half a write")
    for argv in (["state", cid], ["delete", cid], ["kill", cid, "9"], ["start", cid]):
        res = runtime(*argv)
        assert res.rc == 1 and "damaged" in res.err and "Traceback" not in res.err, (argv, res)
    assert runtime("list", "-q").ok().out == ""
    runtime("delete", "--force", cid).ok()
    assert not os.path.exists(os.path.join(runtime.root, cid))

"""The runc-compatible flag parser (bock._args): every accepted form, and its errors."""

from __future__ import annotations

import pytest
from bock import _args
from bock._main import CREATE_FLAGS, RUN_FLAGS
from bock.errors import UsageError

KILL = ((("all", "a"), "bool", "all"),)


@pytest.mark.parametrize(
    "argv",
    [
        ["--bundle", "/b", "id"],
        ["--bundle=/b", "id"],
        ["-bundle", "/b", "id"],
        ["-bundle=/b", "id"],
        ["-b", "/b", "id"],
        ["-b=/b", "id"],
        ["--b", "/b", "id"],
    ],
)
def test_string_flag_forms(argv):
    p = _args.parse(argv, CREATE_FLAGS)
    assert p["bundle"] == "/b"
    assert p.args == ["id"]


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--no-pivot", "id"], True),
        (["-no-pivot", "id"], True),
        (["--no-pivot=true", "id"], True),
        (["--no-pivot=false", "id"], False),
        (["--no-pivot=FALSE", "id"], False),
        (["--no-pivot=0", "id"], False),
        (["--no-pivot=1", "id"], True),
        (["id"], False),
    ],
)
def test_bool_flag_forms(argv, expected):
    p = _args.parse(argv, CREATE_FLAGS)
    assert p["no_pivot"] is expected
    assert p.args == ["id"]


def test_bool_flag_does_not_eat_the_next_argument():
    p = _args.parse(["--no-pivot", "false"], CREATE_FLAGS)
    assert p["no_pivot"] is True
    assert p.args == ["false"]  # "false" is the container id here, as in Go's flag package


def test_invalid_bool_value():
    with pytest.raises(UsageError, match='invalid boolean value "maybe"'):
        _args.parse(["--no-pivot=maybe", "id"], CREATE_FLAGS)


def test_short_aliases():
    assert _args.parse(["-a", "id", "9"], KILL)["all"] is True
    p = _args.parse(["-d", "-b", "/x", "id"], RUN_FLAGS)
    assert p["detach"] is True and p["bundle"] == "/x"
    p = _args.parse(["-f", "id"], ((("force", "f"), "bool", "force"),))
    assert p["force"] is True


def test_single_dash_long_flag_as_go_runc_sends_it():
    p = _args.parse(["-no-subreaper", "--bundle", "/b", "id"], RUN_FLAGS)
    assert p["no_subreaper"] is True


def test_stops_at_first_positional():
    specs = ((("detach", "d"), "bool", "detach"),)
    p = _args.parse(["-d", "id", "sh", "-c", "--detach", "-d"], specs)
    assert p["detach"] is True
    assert p.args == ["id", "sh", "-c", "--detach", "-d"]


def test_double_dash_ends_flags():
    p = _args.parse(["--", "-id-with-dash"], CREATE_FLAGS)
    assert p.args == ["-id-with-dash"]


def test_lone_dash_is_positional():
    p = _args.parse(["-"], CREATE_FLAGS)
    assert p.args == ["-"]


def test_defaults():
    p = _args.parse(["id"], CREATE_FLAGS)
    assert p["bundle"] is None and p["pid_file"] is None and p["no_new_keyring"] is False


def test_repeatable_list_flag():
    specs = ((("env", "e"), "list", "env"),)
    p = _args.parse(["-e", "A=1", "--env=B=2", "--env", "C=3", "id"], specs)
    assert p["env"] == ["A=1", "B=2", "C=3"]


def test_value_may_start_with_a_dash():
    p = _args.parse(["--pid-file", "-weird", "id"], CREATE_FLAGS)
    assert p["pid_file"] == "-weird"


def test_value_with_equals_sign_keeps_the_rest():
    p = _args.parse(["--bundle=/a=b", "id"], CREATE_FLAGS)
    assert p["bundle"] == "/a=b"


def test_unknown_flag():
    with pytest.raises(UsageError, match="flag provided but not defined: -nope"):
        _args.parse(["--nope", "id"], CREATE_FLAGS)


def test_missing_value():
    with pytest.raises(UsageError, match="flag needs an argument: -bundle"):
        _args.parse(["--bundle"], CREATE_FLAGS)


# -- global flags -----------------------------------------------------------------------


def test_global_defaults():
    g, rest = _args.parse_global(["state", "x"])
    assert rest == ["state", "x"]
    assert g["root"] is None and g["log"] is None and g["log_format"] == "text"
    assert g["debug"] is False and g["systemd_cgroup"] is False and g["rootless"] == "auto"


@pytest.mark.parametrize(
    "argv",
    [
        ["--root", "/r", "--log", "/l", "--log-format", "json", "state", "x"],
        ["--root=/r", "--log=/l", "--log-format=json", "state", "x"],
        ["-root", "/r", "-log", "/l", "-log-format", "json", "state", "x"],
        ["-root=/r", "-log=/l", "-log-format=json", "state", "x"],
    ],
)
def test_global_value_forms(argv):
    g, rest = _args.parse_global(argv)
    assert (g["root"], g["log"], g["log_format"]) == ("/r", "/l", "json")
    assert rest == ["state", "x"]


def test_global_bools_and_criu():
    g, rest = _args.parse_global(["--debug", "--systemd-cgroup", "--criu", "/usr/sbin/criu", "list"])
    assert g["debug"] and g["systemd_cgroup"] and g["criu"] == "/usr/sbin/criu"
    assert rest == ["list"]
    g, _ = _args.parse_global(["--debug=false", "-systemd-cgroup=false", "list"])
    assert g["debug"] is False and g["systemd_cgroup"] is False


@pytest.mark.parametrize(
    ("argv", "value", "rest"),
    [
        (["--rootless=true", "list"], "true", ["list"]),
        (["--rootless=false", "list"], "false", ["list"]),
        (["--rootless=auto", "list"], "auto", ["list"]),
        (["--rootless", "list"], "true", ["list"]),
    ],
)
def test_global_rootless(argv, value, rest):
    g, got = _args.parse_global(argv)
    assert g["rootless"] == value and got == rest


@pytest.mark.parametrize("flag", ["--version", "-v", "-version"])
def test_version_flags(flag):
    g, _ = _args.parse_global([flag])
    assert g["version"] is True


def test_global_parsing_stops_at_the_subcommand():
    g, rest = _args.parse_global(["--root", "/r", "kill", "--all", "id", "KILL"])
    assert g["root"] == "/r"
    assert rest == ["kill", "--all", "id", "KILL"]


def test_global_unknown_flag():
    with pytest.raises(UsageError, match="flag provided but not defined: -bogus"):
        _args.parse_global(["--bogus", "list"])


def test_global_missing_value():
    with pytest.raises(UsageError, match="flag needs an argument: -root"):
        _args.parse_global(["--root"])


@pytest.mark.parametrize("value", ["true", "false", "auto"])
def test_global_rootless_separate_value(value):
    g, rest = _args.parse_global(["--rootless", value, "list"])
    assert g["rootless"] == value and rest == ["list"]

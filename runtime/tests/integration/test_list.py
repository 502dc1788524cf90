"""``bock list``: -q, --format table|json."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.root


def test_list_empty_root(runtime):
    assert runtime("list").ok().out.splitlines() == [
        "ID          PID         STATUS      BUNDLE      CREATED     OWNER"
    ]
    assert runtime("list", "-q").ok().out == ""
    assert json.loads(runtime("list", "--format", "json").ok().out) == []


def test_list_shows_each_container(runtime, bundle):
    a = runtime.create(bundle("sleep", "30"))
    b = runtime.create(bundle("sleep", "30"))
    runtime.start(b)
    quiet = runtime("list", "-q").ok().out
    assert sorted(quiet.splitlines()) == sorted([a, b])
    assert runtime("list", "--quiet").ok().out == quiet
    for argv in (["--format", "json"], ["--format=json"], ["-f", "json"]):
        rows = json.loads(runtime("list", *argv).ok().out)
        by_id = {r["id"]: r for r in rows}
        assert set(by_id) == {a, b}
        assert by_id[a]["status"] == "created" and by_id[b]["status"] == "running"
        assert by_id[a] == runtime.state(a)
    table = runtime("list", "--format", "table").ok().out.splitlines()
    assert table[0].split() == ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]
    rows = {line.split()[0]: line.split() for line in table[1:]}
    assert rows[a][1] == str(runtime.state(a)["pid"]) and rows[a][2] == "created"
    assert rows[b][2] == "running"
    # columns line up: every row starts its STATUS where the header does
    col = table[0].index("STATUS")
    assert all(line[col:].split()[0] in ("created", "running") for line in table[1:])


def test_list_shows_stopped_with_pid_zero(runtime, bundle):
    cid = runtime.create(bundle("true"))
    runtime.start(cid)
    import time

    deadline = time.monotonic() + 10
    while runtime.status(cid) != "stopped":
        assert time.monotonic() < deadline
        time.sleep(0.02)
    (row,) = json.loads(runtime("list", "--format", "json").ok().out)
    assert row["status"] == "stopped" and row["pid"] == 0


def test_list_bad_format(runtime):
    res = runtime("list", "--format", "yaml")
    assert res.rc == 1 and res.out == "" and "invalid format" in res.err


def test_list_missing_root_is_empty(runtime, tmp_path):
    res = runtime.raw(["--root", str(tmp_path / "never-made"), "list", "-q"]).ok()
    assert res.out == ""

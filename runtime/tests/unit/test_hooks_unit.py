"""Unit tests of bock._security.hooks: validation, error text, argv/env defaults (no root needed)."""

from __future__ import annotations

import os

import pytest
from bock._security import hooks as H
from bock._spec.config import Hook, Hooks
from bock.errors import BockError, ConfigError


def test_hook_error_is_a_bock_error():
    assert issubclass(H.HookError, BockError)


def test_validate_refuses_relative_path():
    hooks = Hooks.from_json({"prestart": [{"path": "/bin/true"}], "poststart": [{"path": "bin/true"}]})
    with pytest.raises(ConfigError, match=r"invalid poststart hook #0: path 'bin/true' is not absolute"):
        H.validate(hooks)


def test_validate_refuses_zero_timeout():
    hooks = Hooks.from_json({"createRuntime": [{"path": "/bin/true"}, {"path": "/bin/true", "timeout": 0}]})
    with pytest.raises(ConfigError, match=r"invalid createRuntime hook #1: timeout must be > 0, got 0"):
        H.validate(hooks)


def test_validate_accepts_good_hooks():
    hooks = Hooks.from_json({k: [{"path": "/bin/true", "timeout": 3}] for k in H.HOOK_KINDS})
    H.validate(hooks)
    assert [len(H.hooks_of(hooks, k)) for k in H.HOOK_KINDS] == [1] * 6


@pytest.mark.parametrize(
    ("status", "text"),
    [
        (0, "exit status 0"),
        (1 << 8, "exit status 1"),
        (42 << 8, "exit status 42"),
        (9, "signal: killed"),
        (15, "signal: terminated"),
        (11 | 0x80, "signal: segmentation fault (core dumped)"),
    ],
)
def test_exit_text_matches_go(status, text):
    assert H.exit_text(status) == text


def test_no_hooks_is_a_no_op():
    H.run_hooks([], {"id": "x"}, kind="prestart")
    assert H.run_poststop([], {"id": "x"}) == []


def test_missing_binary_text_matches_runc():
    hook = Hook(path="/nonexistent/bock-hook")
    with pytest.raises(H.HookError) as err:
        H.run_hooks([hook], b"{}", kind="createRuntime")
    assert str(err.value) == (
        "error running createRuntime hook #0: fork/exec /nonexistent/bock-hook: no such file or directory"
    )


def test_state_dict_is_serialized_compactly():
    assert H._state_bytes({"ociVersion": "1.3.0", "id": "a", "pid": 3}) == (
        b'{"ociVersion":"1.3.0","id":"a","pid":3}'
    )
    assert H._state_bytes("{}") == b"{}"


def test_no_fd_leaks_after_hooks():
    before = set(os.listdir("/proc/self/fd"))
    H.run_hooks([Hook(path="/bin/true")], {"id": "x"}, kind="prestart")
    with pytest.raises(H.HookError):
        H.run_hooks([Hook(path="/bin/false")], {"id": "x"}, kind="prestart")
    assert set(os.listdir("/proc/self/fd")) == before

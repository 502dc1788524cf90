"""The differential mode's comparison of observation lists."""

from __future__ import annotations

from bock_conformance._plugin import diff_observations


def test_equal_observations_have_no_divergence():
    obs = [("rc", ["state <ID0>", 0]), ("out", "hello\n")]
    assert diff_observations(obs, list(obs)) == []


def test_different_exit_code_is_reported():
    a = [("rc", ["kill <ID0> KILL", 1])]
    b = [("rc", ["kill <ID0> KILL", 0])]
    (line,) = diff_observations(a, b)
    assert line.startswith("#0: rc=") and "1]" in line and "0]" in line


def test_missing_observation_is_reported():
    a = [("out", "x"), ("out", "y")]
    assert diff_observations(a, a[:1]) == ["#1: out='y' != (nothing)"]

"""kill's signal argument: a number, or a name with or without SIG (runc's parseSignal)."""

from __future__ import annotations

import signal

import pytest
from bock._lifecycle.kill import SIGNALS, parse_signal
from bock.errors import UsageError


@pytest.mark.parametrize(
    ("raw", "num"),
    [
        ("9", 9),
        ("15", 15),
        ("0", 0),
        ("KILL", 9),
        ("SIGKILL", 9),
        ("kill", 9),
        ("sigterm", 15),
        ("TERM", 15),
        ("HUP", 1),
        ("SIGUSR1", 10),
        ("USR2", 12),
        ("WINCH", 28),
        ("SIGRTMIN", 34),
        ("RTMIN+3", 37),
        ("SIGRTMAX", 64),
        ("RTMAX-2", 62),
        ("64", 64),
    ],
)
def test_parse(raw, num):
    assert parse_signal(raw) == num


@pytest.mark.parametrize("raw", ["65", "-1", "NOPE", "SIG", "", "9x", "RTMIN+31", "1.5"])
def test_rejects(raw):
    with pytest.raises(UsageError):
        parse_signal(raw)


def test_names_match_the_host_numbers():
    for name, num in SIGNALS.items():
        host = getattr(signal, "SIG" + name, None)
        if host is not None and name not in ("RTMIN", "RTMAX"):
            assert int(host) == num, name

"""The cgroup-attach warmer: started once, joined before a fork; bin/bock's early guess."""

from __future__ import annotations

import subprocess

import pytest
from bock import _warm


def test_second_start_spawns_no_second_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    spawned = []
    real = _warm._thread.start_new_thread

    def counting(fn, args):
        spawned.append(fn)
        return real(fn, args)

    monkeypatch.setattr(_warm._thread, "start_new_thread", counting)
    monkeypatch.setattr(_warm, "_own_procs_file", lambda: "/nonexistent/cgroup.procs")
    w = _warm.Warmer()
    w.start()
    w.start()  # bin/bock started it, then bock._main asks again
    w.wait()
    assert len(spawned) == 1
    assert w._lock is None  # joined: the thread released it


def test_wait_without_start_returns() -> None:
    w = _warm.Warmer()
    w.wait()
    assert w._lock is None


@pytest.mark.root
def test_run_as_a_container_id_of_another_command(bock_bin: str, tmp_path) -> None:
    # bin/bock starts the warmer on "run" anywhere in argv; `state run` must still answer
    # as for any other missing container (bock._main joins the thread first)
    out = subprocess.run(
        [bock_bin, "--root", str(tmp_path), "state", "run"], capture_output=True, text=True, timeout=30
    )
    assert out.returncode == 1
    assert "container does not exist" in out.stderr

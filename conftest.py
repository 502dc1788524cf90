"""What every test directory shares: the run leaves no bock cache behind in the default state root.

Callers that never pass ``--root`` (podman, buildah, bockrose) make bock keep compiled seccomp
programs in ``/run/bock/@seccomp-cache``. A cache that this test run created is removed when the
whole run ends (by the xdist controller, after every worker)."""

from __future__ import annotations

import os
import shutil

SECCOMP_CACHE = "/run/bock/@seccomp-cache"


def pytest_sessionstart(session) -> None:
    session.config._bock_cache_existed = os.path.exists(SECCOMP_CACHE)


def pytest_sessionfinish(session, exitstatus) -> None:
    if hasattr(session.config, "workerinput"):
        return  # an xdist worker: the controller finishes last
    if not getattr(session.config, "_bock_cache_existed", True):
        shutil.rmtree(SECCOMP_CACHE, ignore_errors=True)

"""Fixtures for bock's tests.

- ``import bock`` resolves to this checkout's runtime/ and ``_support`` to runtime/tests/_support.
- ``bock_bin``: the binary under test (``$BOCK_BINARY``, else the ``bock`` of the venv that runs
  pytest, else ``bock`` on PATH, else skip).
- ``rootfs_template``: a busybox-static rootfs built once per session (per xdist worker).
- ``bundle``: a factory of bundles (config from ``bock spec``, terminal off) on a private
  copy of the template.
- ``runtime``: ``bock --root <per-test dir>``; deletes (``--force``) every container it
  created at teardown, even after a failure, and fails the test if a mount is left under
  the test's temporary directory (after unmounting it).

Root tests carry ``@pytest.mark.root`` and are skipped when not running as root.
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile

import pytest

_TESTS = pathlib.Path(__file__).resolve().parent
for _p in (str(_TESTS.parent), str(_TESTS)):
    if _p not in sys.path:
        sys.path.insert(0, _p)

from _support.bock import Runtime, find_binary  # noqa: E402
from _support.bundle import Bundle, make_config  # noqa: E402
from _support.mounts import mounts_under, unmount_all_under  # noqa: E402
from _support.rootfs import build_template, copy_rootfs  # noqa: E402


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("root") is not None and os.geteuid() != 0:
        pytest.skip("needs root (real namespaces and mounts)")


@pytest.fixture(scope="session")
def bock_bin() -> str:
    path = find_binary()
    if not path:
        pytest.skip("the bock binary was not found: set BOCK_BINARY or pip install ./runtime")
    return path


@pytest.fixture(scope="session")
def rootfs_template(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A busybox rootfs with /etc/passwd and /etc/group (user uid/gid 1000). Never mounted on."""
    return build_template(str(tmp_path_factory.mktemp("busybox-rootfs")))


@pytest.fixture(scope="session")
def spec_template(bock_bin: str, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The config.json that ``bock spec`` writes."""
    where = tmp_path_factory.mktemp("spec")
    subprocess.run([bock_bin, "spec", "--bundle", str(where)], check=True, capture_output=True)
    with open(where / "config.json") as f:
        return json.load(f)


@pytest.fixture
def bundle(tmp_path: pathlib.Path, rootfs_template: str, spec_template: dict):
    """``bundle(*argv, name=..., rootfs=True)`` -> :class:`Bundle` under tmp_path."""
    made: list[str] = []

    def make(
        *argv: str, name: str | None = None, rootfs: bool = True, base: pathlib.Path | None = None
    ) -> Bundle:
        path = (base or tmp_path) / (name or f"bundle{len(made)}")
        path.mkdir()
        made.append(str(path))
        root = str(path / "rootfs")
        if rootfs:
            copy_rootfs(rootfs_template, root)
        return Bundle(str(path), make_config(spec_template, list(argv) if argv else None), root)

    return make


@pytest.fixture
def runtime(bock_bin: str, tmp_path: pathlib.Path):
    """A :class:`Runtime` bound to ``tmp_path/state``; cleans up even when the test fails."""
    rt = Runtime(bock_bin, str(tmp_path / "state"), [str(tmp_path)])
    try:
        yield rt
    finally:
        problems = rt.cleanup()
        for path in rt.remove_after:  # after the containers are gone; never through a mount
            if not mounts_under([path]):
                shutil.rmtree(path, ignore_errors=True)
    assert not problems, problems


@pytest.fixture
def open_tmp(runtime):
    """A directory every uid can traverse (tmp_path's parents are 0700): for user namespaces
    whose root is an unprivileged host uid. Watched for leftover mounts; the ``runtime``
    teardown removes it after the containers."""
    path = tempfile.mkdtemp(prefix="bock-test-", dir="/tmp")
    os.chmod(path, 0o711)
    runtime.watch.append(path)
    runtime.remove_after.append(path)
    return pathlib.Path(path)


@pytest.fixture
def no_mounts_left(tmp_path: pathlib.Path):
    """For tests that mount things themselves: unmount whatever is left under tmp_path."""
    yield
    leftover = mounts_under([str(tmp_path)])
    if leftover:
        unmount_all_under([str(tmp_path)])

"""Fixtures: a bock-image store with busybox imported offline (through the bock-image command), a
context directory; every test checks that it left no mount behind."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from buildtest_helpers import bock_image, make_busybox_tarball, no_mounts_under


@pytest.fixture(scope="session")
def busybox_tarball(tmp_path_factory) -> Path:
    return make_busybox_tarball(tmp_path_factory.mktemp("busybox"))


@pytest.fixture
def store(tmp_path, busybox_tarball) -> Path:
    """A bock-image store with busybox:latest imported offline through the bock-image command."""
    root = tmp_path / "store"
    bock_image(root, "import", str(busybox_tarball), "busybox:latest")
    yield root
    clean = no_mounts_under(tmp_path)
    with open("/proc/self/mounts") as f:
        left = [line.split()[1] for line in f if line.split()[1].startswith(str(tmp_path))]
    for mp in reversed(left):
        subprocess.run(["umount", "-l", mp], check=False)
    assert clean, f"a test left mounts behind: {left}"


@pytest.fixture
def ctx(tmp_path) -> Path:
    d = tmp_path / "ctx"
    d.mkdir()
    return d

"""Fixtures for bockrose's tests: this checkout's packages first on sys.path, a busybox image store,
and `compose`, a factory of projects torn down even when the test fails (see bockrose_helpers)."""

from __future__ import annotations

import pathlib
import sys

import pytest

HERE = pathlib.Path(__file__).resolve().parent
REPO = HERE.parents[1]
for p in (HERE, REPO / "compose", REPO / "image", REPO / "runtime"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

from bockrose._testimages import import_busybox  # noqa: E402
from bockrose_helpers import Compose, is_root  # noqa: E402


@pytest.fixture(scope="session")
def image_root(tmp_path_factory) -> str:
    root = str(tmp_path_factory.mktemp("images"))
    import_busybox(root, "busybox:latest")
    return root


@pytest.fixture
def compose(tmp_path, image_root):
    if not is_root():
        pytest.skip("needs root")
    made: list[Compose] = []

    def make(runtime: str | None = None, images: str | None = None) -> Compose:
        c = Compose(tmp_path / f"p{len(made)}", images or image_root, runtime)
        made.append(c)
        return c

    yield make
    for c in made:
        c.cleanup()

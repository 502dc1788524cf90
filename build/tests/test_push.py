"""--push to a real docker-registry (distribution) on 127.0.0.1, checked with skopeo."""

from __future__ import annotations

import os as _os
import sys as _sys

import pytest

_sys.path.insert(0, _os.path.dirname(__file__))
from buildtest_helpers import (
    bock_build,
    image_test_helpers,
    manifest_of,
    skopeo_json,
    unique,
)

pytestmark = pytest.mark.root


@pytest.fixture
def registry(tmp_path):
    reg = image_test_helpers().Registry(tmp_path / "registry")
    yield reg
    reg.stop()


@pytest.mark.parametrize("runtime", ["bock", "runc"])
def test_push_to_registry(store, ctx, registry, runtime):
    (ctx / "f.txt").write_text("pushed\n")
    (ctx / "Dockerfile").write_text("FROM busybox\nCOPY f.txt /f.txt\nRUN cat /f.txt > /g.txt\n")
    ref = f"{registry.host}/bock-build/{unique('img')}:v1"
    extra = ["--runtime", "/usr/sbin/runc"] if runtime == "runc" else []
    res = bock_build("--root", str(store), "-t", ref, "--push", *extra, str(ctx))
    assert f"pushed {ref}" in res.stdout
    local = manifest_of(store, ref)["Digest"]
    remote = skopeo_json("inspect", "--tls-verify=false", f"docker://{ref}")
    assert remote["Digest"] == local
    assert len(remote["Layers"]) == 3

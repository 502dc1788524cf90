"""--push to a real docker-registry (distribution) on 127.0.0.1, checked with skopeo."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from helpers import bock_build, manifest_of, unique

pytestmark = pytest.mark.root


@pytest.fixture
def registry(tmp_path):
    """The registry process helper of bock-image's tests: docker-registry on a free 127.0.0.1 port."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "image_test_helpers", Path(__file__).resolve().parents[2] / "image" / "tests" / "helpers.py"
    )
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    reg = mod.Registry(tmp_path / "registry")
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
    remote = json.loads(
        subprocess.run(
            ["skopeo", "inspect", "--tls-verify=false", f"docker://{ref}"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    assert remote["Digest"] == local
    assert len(remote["Layers"]) == 3

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from bock_image import Store, import_rootfs
from bock_image_testlib import (
    BUSYBOX_CONFIG,
    FaultProxy,
    Registry,
    TokenIssuer,
    htpasswd_auth,
    make_busybox_rootfs,
    run_cli,
)


@pytest.fixture(scope="session")
def busybox_rootfs(tmp_path_factory) -> Path:
    return make_busybox_rootfs(tmp_path_factory.mktemp("bb") / "rootfs")


@pytest.fixture(scope="session")
def busybox_tarball(busybox_rootfs, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("bbtar") / "busybox.tar.gz"
    subprocess.run(["tar", "-C", str(busybox_rootfs), "--numeric-owner", "-czf", str(out), "."], check=True)
    return out


@pytest.fixture
def store(tmp_path) -> Store:
    return Store(tmp_path / "store")


@pytest.fixture
def busybox_store(store, busybox_tarball) -> Store:
    import_rootfs(store, busybox_tarball, "busybox:latest", config=BUSYBOX_CONFIG)
    return store


@pytest.fixture
def cli():
    return run_cli


def _serve(reg: Registry):
    yield reg
    reg.stop()


@pytest.fixture
def registry(tmp_path):
    yield from _serve(Registry(tmp_path / "registry"))


@pytest.fixture
def second_registry(tmp_path):
    yield from _serve(Registry(tmp_path / "registry-b"))


@pytest.fixture
def basic_registry(tmp_path):
    base = tmp_path / "registry-basic"
    yield from _serve(Registry(base, htpasswd_auth(base, {"alice": "s3cret"})))


@pytest.fixture
def token_registry(tmp_path):
    issuer = TokenIssuer(tmp_path / "token", "bob", "t0ken-pw")
    reg = Registry(tmp_path / "registry-token", issuer.registry_auth())
    reg.issuer = issuer
    yield reg
    reg.stop()
    issuer.stop()


@pytest.fixture
def proxy(registry):
    p = FaultProxy(registry.host)
    yield p
    p.stop()


@pytest.fixture
def authfile(tmp_path, monkeypatch) -> Path:
    """An isolated auth file; the user's real credentials are never read."""
    path = tmp_path / "auth.json"
    monkeypatch.setenv("REGISTRY_AUTH_FILE", str(path))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    monkeypatch.delenv("DOCKER_CONFIG", raising=False)
    return path

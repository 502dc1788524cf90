"""Reference parsing, auth-file lookup order and namespace keys, challenge parsing (unit level)."""

from __future__ import annotations

import base64
import json

import pytest
from bock_image import InvalidReference, Platform, parse_reference
from bock_image._auth import (
    Credentials,
    find_credentials,
    parse_challenge,
    remove_credentials,
    save_credentials,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("busybox", "docker.io/library/busybox:latest"),
        ("me/app:1.0", "docker.io/me/app:1.0"),
        ("localhost/app", "localhost/app:latest"),
        ("127.0.0.1:5000/a/b:t", "127.0.0.1:5000/a/b:t"),
        ("quay.io/x/y@sha256:" + "a" * 64, "quay.io/x/y@sha256:" + "a" * 64),
        ("docker://reg.example:443/x:v", "reg.example:443/x:v"),
    ],
)
def test_parse_reference(text, expected):
    assert str(parse_reference(text)) == expected


@pytest.mark.parametrize("text", ["", "UPPER/case", "x:bad tag", "x@sha256:short", "a//b", " x"])
def test_parse_reference_rejects(text):
    with pytest.raises(InvalidReference):
        parse_reference(text)


def test_platform():
    assert Platform.parse("linux/arm64/v8") == Platform("linux", "arm64", "v8")
    assert Platform.parse("linux/arm64").matches(Platform("linux", "arm64", "v8"))
    assert not Platform.parse("linux/arm/v7").matches(Platform("linux", "arm", "v6"))
    with pytest.raises(InvalidReference):
        Platform.parse("linux")


def _auth(user: str, pw: str) -> dict:
    return {"auth": base64.b64encode(f"{user}:{pw}".encode()).decode()}


def test_auth_file_order_and_namespaces(tmp_path, monkeypatch):
    monkeypatch.delenv("REGISTRY_AUTH_FILE", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "run"))
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    monkeypatch.delenv("DOCKER_CONFIG", raising=False)
    docker = tmp_path / ".docker" / "config.json"
    docker.parent.mkdir()
    docker.write_text(
        json.dumps({"auths": {"https://index.docker.io/v1/": _auth("hub", "h"), "reg.io": _auth("d", "d")}})
    )
    assert find_credentials("docker.io") == Credentials("hub", "h")
    assert find_credentials("reg.io", "team/app") == Credentials("d", "d")
    containers = tmp_path / "run" / "containers" / "auth.json"
    containers.parent.mkdir(parents=True)
    containers.write_text(
        json.dumps({"auths": {"reg.io": _auth("c", "c"), "reg.io/team": _auth("team", "t")}})
    )
    assert find_credentials("reg.io", "team/app") == Credentials("team", "t")  # most specific wins
    assert find_credentials("reg.io", "other/app") == Credentials("c", "c")
    assert find_credentials("nowhere.io") is None
    path = save_credentials("new.io", Credentials("n", "p"))
    assert path == containers and (path.stat().st_mode & 0o777) == 0o600
    assert find_credentials("new.io") == Credentials("n", "p")
    assert remove_credentials("new.io") and find_credentials("new.io") is None


def test_parse_challenge():
    scheme, params = parse_challenge(
        'Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push"'
    )
    assert scheme == "bearer"
    assert params == {
        "realm": "https://auth.example/token",
        "service": "registry.example",
        "scope": "repository:a/b:pull,push",
    }
    assert parse_challenge('Basic realm="x"') == ("basic", {"realm": "x"})

"""https registries: a real docker-registry serving TLS with a test CA (openssl), through the httpx
transport. Certificate checks, --cert-dir, the certs.d lookup, mutual TLS, --tls-verify=false, and the
localhost rule (https without checks), with skopeo as the oracle."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from bock_image import RegistryClient, RegistryError, Store
from bock_image_testlib import Registry, run_cli, skopeo

pytestmark = [pytest.mark.slow, pytest.mark.root]
REMOTE_IP = "127.0.0.2"  # loopback, but not "localhost" to bock-image: certificates are checked


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Path:
    """ca.crt; server.crt/server.key for IP 127.0.0.1 and 127.0.0.2; client.cert/client.key."""
    d = tmp_path_factory.mktemp("pki")
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=bock test CA",
             "-keyout", "ca.key", "-out", "ca.crt", cwd=d)  # fmt: skip
    (d / "san.ext").write_text("subjectAltName=IP:127.0.0.1,IP:127.0.0.2\n")
    for name, ext in (("server", ["-extfile", "san.ext"]), ("client", [])):
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}",
                 "-keyout", f"{name}.key", "-out", f"{name}.csr", cwd=d)  # fmt: skip
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                 "-CAcreateserial", "-days", "2", "-out", f"{name}.crt", *ext, cwd=d)  # fmt: skip
    shutil.copy(d / "client.crt", d / "client.cert")
    return d


def _tls_registry(base: Path, pki: Path, ip: str, mutual: bool = False) -> Registry:
    tls = {"certificate": str(pki / "server.crt"), "key": str(pki / "server.key")}
    if mutual:
        tls["clientcas"] = [str(pki / "ca.crt")]
    return Registry(base, tls=tls, ip=ip)


@pytest.fixture
def remote_tls(tmp_path, pki):
    reg = _tls_registry(tmp_path / "tls", pki, REMOTE_IP)
    yield reg
    reg.stop()


def _cert_dir(tmp_path: Path, pki: Path, *names: str) -> Path:
    d = tmp_path / "certs"
    d.mkdir(exist_ok=True)
    for n in names:
        shutil.copy(pki / n, d / n)
    return d


def test_unknown_ca_is_refused_then_trusted_through_cert_dir(busybox_store, remote_tls, pki, tmp_path):
    dest = f"{remote_tls.host}/lab/tls:1"
    res = run_cli("push", "busybox:latest", dest, root=busybox_store.root, check=False)
    assert res.returncode == 1 and "CERTIFICATE_VERIFY_FAILED" in res.stderr, res.stderr
    certs = _cert_dir(tmp_path, pki, "ca.crt")
    run_cli("--cert-dir", str(certs), "push", "busybox:latest", dest, root=busybox_store.root)
    info = json.loads(skopeo("inspect", "--cert-dir", str(certs), f"docker://{dest}"))
    assert info["Digest"] == busybox_store.resolve("busybox:latest").digest
    # --tls-verify=false: no checks at all
    other = tmp_path / "other"
    run_cli("--tls-verify=false", "pull", dest, "--name", "back:1", root=other)
    assert Store(other).resolve("back:1").digest == busybox_store.resolve("busybox:latest").digest


def test_certs_d_of_the_host_is_found(busybox_store, remote_tls, pki, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    host_dir = tmp_path / "home" / ".config" / "containers" / "certs.d" / remote_tls.host
    host_dir.mkdir(parents=True)
    shutil.copy(pki / "ca.crt", host_dir / "ca.crt")
    with RegistryClient() as client:
        desc = client.push(busybox_store, "busybox:latest", f"{remote_tls.host}/lab/certsd:1")
        assert client.inspect(f"{remote_tls.host}/lab/certsd:1")["Digest"] == desc.digest
    (host_dir / "stray.key").write_text("not a key\n")  # a key without its certificate: a clear error
    with RegistryClient() as client, pytest.raises(RegistryError, match="missing client certificate for key"):
        client.inspect(f"{remote_tls.host}/lab/certsd:1")


def test_mutual_tls_needs_the_client_pair(busybox_store, pki, tmp_path):
    reg = _tls_registry(tmp_path / "mtls", pki, REMOTE_IP, mutual=True)
    try:
        dest = f"{reg.host}/lab/mtls:1"
        only_ca = _cert_dir(tmp_path, pki, "ca.crt")
        res = run_cli(
            "--cert-dir", str(only_ca), "push", "busybox:latest", dest, root=busybox_store.root, check=False
        )
        assert res.returncode == 1, res.stderr
        both = _cert_dir(tmp_path, pki, "ca.crt", "client.cert", "client.key")
        run_cli("--cert-dir", str(both), "push", "busybox:latest", dest, root=busybox_store.root)
        with RegistryClient(cert_dir=both) as client:
            assert client.inspect(dest)["Digest"] == busybox_store.resolve("busybox:latest").digest
    finally:
        reg.stop()


def test_localhost_https_is_found_and_not_checked(busybox_store, pki, tmp_path):
    """On 127.0.0.1 the plain-HTTP probe gets Go's "400 client sent an HTTP request to an HTTPS
    server", so https is used, without certificate checks (as docker treats localhost)."""
    reg = _tls_registry(tmp_path / "local", pki, "127.0.0.1")
    try:
        src, dest = f"{reg.host}/lab/local:1", f"{reg.host}/lab/copied:1"
        run_cli("push", "busybox:latest", src, root=busybox_store.root)
        run_cli("copy", src, dest)  # one registry: the blobs are mounted
        with RegistryClient() as client:
            assert client._base(reg.host) == f"https://{reg.host}"
            assert client.inspect(dest)["Digest"] == busybox_store.resolve("busybox:latest").digest
    finally:
        reg.stop()

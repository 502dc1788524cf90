"""Registry-to-registry copy (``copy``) between real docker-registries, with skopeo as the oracle."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest
from bock_image import (
    AuthError,
    DigestMismatch,
    NotFound,
    Platform,
    RegistryClient,
    Store,
    new_config,
    write_image,
    write_layer,
)
from bock_image_testlib import BUSYBOX_CONFIG, TarBuilder, make_multiarch, run_cli, skopeo

pytestmark = [pytest.mark.slow, pytest.mark.root]


def skopeo_inspect(ref: str, *extra: str) -> dict:
    return json.loads(skopeo("inspect", "--no-tags", "--tls-verify=false", *extra, f"docker://{ref}"))


@pytest.fixture
def two_layer_image(busybox_store: Store) -> Store:
    base = busybox_store.layers("busybox:latest")[0]
    diff_base = busybox_store.config("busybox:latest")["rootfs"]["diff_ids"][0]
    top, diff_top = write_layer(busybox_store, TarBuilder().file("etc/motd", b"copied\n").bytes_io(), "gzip")
    write_image(busybox_store, "two:1", new_config([diff_base, diff_top], config=BUSYBOX_CONFIG), [base, top])
    return busybox_store


def _recorder() -> tuple[list[tuple[str, str]], object]:
    events: list[tuple[str, str]] = []

    def progress(event: str, **kw) -> None:
        if "digest" in kw and event != "bytes":
            events.append((event, kw["digest"]))

    return events, progress


def test_copy_between_registries_keeps_the_digest(two_layer_image, registry, second_registry, tmp_path):
    store = two_layer_image
    src, dest = f"{registry.host}/lab/two:1", f"{second_registry.host}/mirror/two:copied"
    with RegistryClient() as client:
        client.push(store, "two:1", src)
    unused = tmp_path / "no-store"
    res = run_cli("--root", str(unused), "-q", "copy", f"docker://{src}", dest)
    local = store.resolve("two:1")
    assert res.stdout.strip() == local.digest
    assert not unused.exists()  # nothing went through a local store
    info = skopeo_inspect(dest)
    assert info["Digest"] == local.digest
    assert info["Layers"] == [d.digest for d in store.layers("two:1")]
    # what arrived is usable: pull it back and read the top layer's file
    other = Store(tmp_path / "other")
    with RegistryClient() as client:
        client.pull(other, dest, name="back:1")
    rootfs = other.rootfs("back:1", tmp_path / "rootfs", mode="copy")
    assert (rootfs.path / "etc" / "motd").read_text() == "copied\n"
    # copying again finds every blob there already
    events, progress = _recorder()
    with RegistryClient(progress=progress) as client:
        assert client.copy(src, dest).digest == local.digest
    assert {e for e, _ in events} == {"exists", "done"}


def test_copy_within_a_registry_mounts_the_blobs(two_layer_image, registry):
    store = two_layer_image
    src = f"{registry.host}/lab/two:1"
    events, progress = _recorder()
    with RegistryClient(progress=progress) as client:
        client.push(store, "two:1", src)
        events.clear()
        desc = client.copy(src, f"{registry.host}/other/two@{store.resolve('two:1').digest}")
    blobs = [store.manifest("two:1")["config"]["digest"], *(d.digest for d in store.layers("two:1"))]
    assert sorted(events) == sorted([("mounted", b) for b in blobs] + [("done", desc.digest)])
    assert skopeo_inspect(f"{registry.host}/other/two@{desc.digest}")["Digest"] == desc.digest
    with RegistryClient() as client, pytest.raises(DigestMismatch, match="the source manifest is"):
        client.copy(src, f"{registry.host}/other/two@sha256:{'0' * 64}")


def test_copy_an_index_one_platform_or_all(store, busybox_tarball, registry, second_registry):
    descs, idesc = make_multiarch(store, busybox_tarball, "multi:1")
    src, b = f"{registry.host}/lab/multi:1", second_registry.host
    with RegistryClient() as client:
        client.push(store, "multi:1", src)
        one = client.copy(src, f"{b}/m/one:1", platform=Platform.parse("linux/arm64"))
        every = client.copy(src, f"{b}/m/all:1", all_platforms=True)
    assert one.digest == descs["arm64"].digest  # narrowed to the manifest, as skopeo does by default
    raw = json.loads(skopeo("inspect", "--raw", "--tls-verify=false", f"docker://{b}/m/one:1"))
    assert raw["config"]["digest"] == store.manifest("bb-arm64:latest")["config"]["digest"]
    assert every.digest == idesc.digest
    for arch in ("amd64", "arm64"):
        variant = ["--override-variant", "v8"] if arch == "arm64" else []
        info = skopeo_inspect(f"{b}/m/all:1", "--override-arch", arch, *variant)
        assert info["Architecture"] == arch
        assert info["Layers"] == [d.digest for d in store.layers(f"bb-{arch}:latest")]


def test_copy_refuses_a_corrupt_source_blob_and_leaves_no_manifest(
    two_layer_image, registry, second_registry, tmp_path
):
    store = two_layer_image
    src, dest = f"{registry.host}/lab/two:1", f"{second_registry.host}/mirror/two:bad"
    with RegistryClient() as client:
        client.push(store, "two:1", src)
    top = store.layers("two:1")[-1].digest.split(":")[1]
    data = registry.base / "data" / "docker" / "registry" / "v2" / "blobs" / "sha256" / top[:2] / top / "data"
    blob = bytearray(data.read_bytes())
    blob[len(blob) // 2] ^= 0xFF  # same size, other bytes: only the hash can tell
    data.write_bytes(bytes(blob))
    res = run_cli("copy", src, dest, check=False)
    assert res.returncode == 1 and "digest mismatch" in res.stderr.lower(), res.stderr
    with RegistryClient() as client, pytest.raises(NotFound, match="manifest unknown"):
        client.resolve(dest)
    req = urllib.request.Request(
        f"http://{second_registry.host}/v2/mirror/two/blobs/sha256:{top}", method="HEAD"
    )
    with pytest.raises(urllib.error.HTTPError) as exc:
        urllib.request.urlopen(req, timeout=10)
    assert exc.value.code == 404  # the corrupt blob was not committed at the destination


def test_copy_of_a_missing_image_is_a_clear_error(registry, second_registry):
    res = run_cli("copy", f"{registry.host}/lab/none:1", f"{second_registry.host}/x/y:1", check=False)
    assert res.returncode == 1
    assert "manifest unknown" in res.stderr and "Traceback" not in res.stderr


def test_copy_from_a_token_registry_to_a_basic_auth_one(
    two_layer_image, token_registry, basic_registry, authfile
):
    """Each side authenticates its own way: a bearer token for the source, Basic for the destination."""
    from bock_image._auth import Credentials

    src, dest = f"{token_registry.host}/lab/tok:1", f"{basic_registry.host}/mirror/tok:1"
    creds = {
        token_registry.host: Credentials("bob", "t0ken-pw"),
        basic_registry.host: Credentials("alice", "s3cret"),
    }
    with RegistryClient(credentials=creds) as client:
        client.push(two_layer_image, "two:1", src)
        desc = client.copy(src, dest)
    assert desc.digest == two_layer_image.resolve("two:1").digest
    info = skopeo_inspect(dest, "--creds", "alice:s3cret")
    assert info["Digest"] == desc.digest
    only_source = {token_registry.host: creds[token_registry.host]}
    with RegistryClient(credentials=only_source) as client, pytest.raises(AuthError):
        client.copy(src, f"{basic_registry.host}/mirror/anon:1")  # no credentials for the destination

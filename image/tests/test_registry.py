"""Registry client against a real docker-registry (distribution 2.8), with skopeo as the oracle."""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import attrs
import pytest
from bock_image import (
    AuthError,
    DigestMismatch,
    NotFound,
    Platform,
    RegistryClient,
    Store,
    UnsupportedMediaType,
    new_config,
    write_image,
    write_layer,
)
from bock_image._auth import Credentials
from bock_image._digest import digest_of
from bock_image_testlib import (
    BUSYBOX_CONFIG,
    Registry,
    TarBuilder,
    make_multiarch,
    run_cli,
    skopeo,
    spawn_cli,
)

pytestmark = [pytest.mark.slow, pytest.mark.root]


def test_push_then_skopeo_pulls_and_inspects(busybox_store, registry, tmp_path, cli):
    cli("push", "busybox:latest", f"{registry.host}/lab/busybox:v1", root=busybox_store.root)
    info = json.loads(skopeo("inspect", "--tls-verify=false", f"docker://{registry.host}/lab/busybox:v1"))
    local = busybox_store.resolve("busybox:latest")
    assert info["Digest"] == local.digest
    assert info["Layers"] == [d.digest for d in busybox_store.layers("busybox:latest")]
    skopeo(
        "copy",
        "--src-tls-verify=false",
        f"docker://{registry.host}/lab/busybox:v1",
        f"oci:{tmp_path / 'sk'}:v1",
    )
    index = json.loads((tmp_path / "sk" / "index.json").read_text())
    assert index["manifests"][0]["digest"] == local.digest


def test_pull_what_skopeo_pushed_docker_schema2(busybox_store, registry, tmp_path, cli):
    # skopeo converts to docker schema2 on the way: bock-image must pull and unpack that
    skopeo(
        "copy",
        "--dest-tls-verify=false",
        "--format",
        "v2s2",
        f"oci:{busybox_store.root}:busybox:latest",
        f"docker://{registry.host}/lab/bb2:latest",
    )
    root = tmp_path / "pulled"
    cli("pull", f"{registry.host}/lab/bb2", root=root)
    store = Store(root)
    remote = json.loads(skopeo("inspect", "--tls-verify=false", f"docker://{registry.host}/lab/bb2:latest"))
    raw = json.loads(
        skopeo("inspect", "--raw", "--tls-verify=false", f"docker://{registry.host}/lab/bb2:latest")
    )
    assert raw["layers"][0]["mediaType"] == "application/vnd.docker.image.rootfs.diff.tar.gzip"
    # stored as OCI (like skopeo copy to oci:), same blobs, the remote digest kept as an annotation
    manifest = store.manifest(f"{registry.host}/lab/bb2:latest")
    assert manifest["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    assert [d["digest"] for d in manifest["layers"]] == remote["Layers"]
    assert store.verify() == []
    out = json.loads(cli("inspect", f"{registry.host}/lab/bb2:latest", root=root).stdout)
    assert out["IndexDescriptor"]["annotations"]["io.bock.image.source-digest"] == remote["Digest"]
    # skopeo reads what we pulled from our store as an OCI layout
    skopeo("inspect", f"oci:{root}:{registry.host}/lab/bb2:latest")


def test_zstd_and_uncompressed_layers_round_trip(store, busybox_rootfs, registry, tmp_path):
    layer_z, diff_z = write_layer(store, busybox_rootfs, "zstd")
    layer_n, diff_n = write_layer(store, TarBuilder().file("extra/hello.txt", b"hi\n").bytes_io(), "none")
    write_image(
        store, "multi:latest", new_config([diff_z, diff_n], config=BUSYBOX_CONFIG), [layer_z, layer_n]
    )
    with RegistryClient() as client:
        client.push(store, "multi:latest", f"{registry.host}/lab/multi:latest")
        other = Store(tmp_path / "other")
        client.pull(other, f"{registry.host}/lab/multi:latest")
    assert [d.mediaType for d in other.layers(f"{registry.host}/lab/multi:latest")] == [
        "application/vnd.oci.image.layer.v1.tar+zstd",
        "application/vnd.oci.image.layer.v1.tar",
    ]
    rootfs = other.rootfs(f"{registry.host}/lab/multi:latest", tmp_path / "rootfs", mode="copy")
    assert (rootfs.path / "extra" / "hello.txt").read_bytes() == b"hi\n"
    assert (rootfs.path / "bin" / "busybox").stat().st_size == Path("/bin/busybox").stat().st_size


def test_chunked_push_and_cross_repo_mount(busybox_store, registry):
    events = []
    with RegistryClient(chunk_size=256 * 1024, progress=lambda e, **k: events.append((e, k))) as client:
        client.push(busybox_store, "busybox:latest", f"{registry.host}/a/one:latest")
        patches = [k for e, k in events if e == "bytes"]
        assert len(patches) >= 4  # the 1 MiB layer went in several PATCH requests
        events.clear()
        client.push(busybox_store, "busybox:latest", f"{registry.host}/b/two:latest", mount_from=["a/one"])
    assert {e for e, _ in events} >= {"mounted"}
    assert not [k for e, k in events if e == "uploaded"]
    skopeo("inspect", "--tls-verify=false", f"docker://{registry.host}/b/two:latest")


def test_push_skips_existing_blobs_after_head(busybox_store, registry):
    events = []
    with RegistryClient(progress=lambda e, **k: events.append(e)) as client:
        client.push(busybox_store, "busybox:latest", f"{registry.host}/lab/x:1")
        events.clear()
        client.push(busybox_store, "busybox:latest", f"{registry.host}/lab/x:2")
    assert events.count("exists") == 2 and "uploaded" not in events


def test_tag_list_pagination_and_remote_inspect(busybox_store, registry, proxy):
    with RegistryClient() as client:
        for tag in ("a", "b", "c", "d", "e"):
            client.push(busybox_store, "busybox:latest", f"{registry.host}/lab/tags:{tag}")
    proxy.paginate_tags = True
    with RegistryClient() as client:
        tags = client.tags(f"{proxy.host}/lab/tags", page_size=2)
        assert sorted(tags) == ["a", "b", "c", "d", "e"] and len(tags) == 5
        oracle = json.loads(skopeo("list-tags", "--tls-verify=false", f"docker://{registry.host}/lab/tags"))[
            "Tags"
        ]
        assert sorted(oracle) == sorted(tags)
        pages = [p for m, p, _, _ in proxy.log if "/tags/list" in p]
        assert len(pages) >= 3
        info = client.inspect(f"{registry.host}/lab/tags:c")
    assert info["Digest"] == busybox_store.resolve("busybox:latest").digest
    assert info["Config"]["config"]["Cmd"] == ["sh"]
    res = run_cli("inspect", f"docker://{registry.host}/lab/tags:c")
    assert json.loads(res.stdout)["Digest"] == info["Digest"]


def test_index_platform_selection(store, busybox_tarball, registry, tmp_path):
    make_multiarch(store, busybox_tarball, "multiarch:latest", unknown=True)
    with RegistryClient() as client:
        client.push(store, "multiarch:latest", f"{registry.host}/lab/multiarch:latest")
        for arch in ("arm64", "amd64"):
            other = Store(tmp_path / arch)
            client.pull(
                other, f"{registry.host}/lab/multiarch:latest", platform=Platform.parse(f"linux/{arch}")
            )
            assert other.config(f"{registry.host}/lab/multiarch:latest")["config"]["Cmd"] == [arch]
        with pytest.raises(NotFound, match="s390x"):
            client.pull(
                Store(tmp_path / "none"),
                f"{registry.host}/lab/multiarch:latest",
                platform=Platform.parse("linux/s390x"),
            )
    res = run_cli(
        "--platform", "linux/arm64", "pull", f"{registry.host}/lab/multiarch:latest", root=tmp_path / "cli"
    )
    assert res.returncode == 0


def test_basic_auth_login_logout(busybox_store, basic_registry, authfile, tmp_path):
    host = basic_registry.host
    with RegistryClient() as client, pytest.raises(AuthError):
        client.push(busybox_store, "busybox:latest", f"{host}/lab/auth:latest")
    bad = run_cli("login", "-u", "alice", "-p", "wrong", host, check=False)
    assert bad.returncode != 0 and "401" in bad.stderr
    run_cli("login", "-u", "alice", "--password-stdin", host, input="s3cret\n")
    assert json.loads(authfile.read_text())["auths"][host]["auth"]
    run_cli("push", "busybox:latest", f"{host}/lab/auth:latest", root=busybox_store.root)
    # skopeo reads the same auth file
    skopeo("inspect", "--tls-verify=false", "--authfile", str(authfile), f"docker://{host}/lab/auth:latest")
    run_cli("pull", f"{host}/lab/auth:latest", root=tmp_path / "p")
    run_cli("logout", host)
    assert host not in json.loads(authfile.read_text())["auths"]
    assert run_cli("pull", f"{host}/lab/auth:latest", root=tmp_path / "p2", check=False).returncode != 0


def test_docker_config_and_credential_helper(busybox_store, basic_registry, authfile, tmp_path, monkeypatch):
    helper_dir = tmp_path / "helpers"
    helper_dir.mkdir()
    helper = helper_dir / "docker-credential-boktest"
    helper.write_text('#!/bin/sh\nread url\necho "{\\"Username\\":\\"alice\\",\\"Secret\\":\\"s3cret\\"}"\n')
    helper.chmod(0o755)
    docker_cfg = tmp_path / "home" / ".docker" / "config.json"
    docker_cfg.parent.mkdir(parents=True)
    docker_cfg.write_text(json.dumps({"credHelpers": {basic_registry.host: "boktest"}}))
    monkeypatch.setenv("PATH", f"{helper_dir}:{os.environ['PATH']}")
    with RegistryClient() as client:
        client.push(busybox_store, "busybox:latest", f"{basic_registry.host}/lab/helper:latest")
    skopeo(
        "inspect",
        "--tls-verify=false",
        "--creds",
        "alice:s3cret",
        f"docker://{basic_registry.host}/lab/helper:latest",
    )


def test_bearer_token_flow_with_scope_cache(busybox_store, token_registry, authfile, tmp_path):
    host = token_registry.host
    issuer = token_registry.issuer
    with RegistryClient() as anon, pytest.raises(AuthError):
        anon.push(busybox_store, "busybox:latest", f"{host}/lab/tok:latest")
    creds = {host: Credentials("bob", "t0ken-pw")}
    issuer.requests.clear()
    with RegistryClient(credentials=creds) as client:
        client.push(busybox_store, "busybox:latest", f"{host}/lab/tok:latest")
        pushes = len(issuer.requests)
        client.push(busybox_store, "busybox:latest", f"{host}/lab/tok:again")
        assert len(issuer.requests) == pushes  # the token for this scope was cached
        client.pull(Store(tmp_path / "p"), f"{host}/lab/tok:latest")
    assert all(r["authed"] for r in issuer.requests)
    assert any("repository:lab/tok:pull,push" in r["scopes"] for r in issuer.requests)
    skopeo("inspect", "--tls-verify=false", "--creds", "bob:t0ken-pw", f"docker://{host}/lab/tok:latest")
    # login through the token flow, then the CLI uses the stored credentials
    run_cli("login", "-u", "bob", "-p", "t0ken-pw", host)
    run_cli("pull", f"{host}/lab/tok:again", root=tmp_path / "p2")
    assert run_cli("login", "-u", "bob", "-p", "nope", host, check=False).returncode != 0


def test_registry_500_twice_then_success(busybox_store, registry, proxy, tmp_path):
    with RegistryClient(backoff=0.01) as client:
        client.push(busybox_store, "busybox:latest", f"{registry.host}/lab/flaky:latest")
    layer = busybox_store.layers("busybox:latest")[0].digest
    proxy.fail = {f"/blobs/{layer}": 2, "/manifests/": 2}
    with RegistryClient(backoff=0.01) as client:
        client.pull(Store(tmp_path / "p"), f"{proxy.host}/lab/flaky:latest")
    statuses = [(p, s) for m, p, _, s in proxy.log if m == "GET" and layer in p]
    assert [s for _, s in statuses] == [500, 500, 200]
    assert Store(tmp_path / "p").verify() == []


def test_connection_cut_resumes_with_range(store, registry, proxy, tmp_path):
    big = os.urandom(3 << 20)
    layer, diff = write_layer(store, TarBuilder().file("big.bin", big).bytes_io(), "gzip")
    write_image(store, "big:latest", new_config([diff], config=BUSYBOX_CONFIG), [layer])
    with RegistryClient() as client:
        client.push(store, "big:latest", f"{registry.host}/lab/big:latest")
    proxy.cut = (f"/blobs/{layer.digest}", 1 << 20)
    with RegistryClient(backoff=0.01) as client:
        client.pull(Store(tmp_path / "p"), f"{proxy.host}/lab/big:latest")
    ranges = [r for m, p, r, _ in proxy.log if m == "GET" and layer.digest in p]
    assert ranges[0] is None and ranges[1] is not None and ranges[1].startswith("bytes=")
    assert int(ranges[1][6:].rstrip("-")) >= 1 << 19
    assert Store(tmp_path / "p").verify() == []


def test_corrupt_blob_rejected_nothing_partial_left(busybox_store, registry, proxy, tmp_path):
    with RegistryClient() as client:
        client.push(busybox_store, "busybox:latest", f"{registry.host}/lab/corrupt:latest")
    layer = busybox_store.layers("busybox:latest")[0].digest
    proxy.corrupt = f"/blobs/{layer}"
    root = tmp_path / "p"
    res = run_cli("pull", f"{proxy.host}/lab/corrupt:latest", root=root, check=False)
    assert res.returncode != 0 and "digest mismatch" in res.stderr.lower()
    store = Store(root)
    assert not store.has_blob(layer)
    assert list((root / ".bock" / "ingest").glob("*.partial")) == []
    assert store.images() == []
    # with DigestMismatch from the library too
    with RegistryClient(retries=0) as client, pytest.raises(DigestMismatch):
        client.pull(store, f"{proxy.host}/lab/corrupt:latest")


def test_unknown_media_type_clear_error(store, registry, tmp_path):
    layer, diff = write_layer(store, TarBuilder().file("a", b"a").bytes_io(), "gzip")
    desc = write_image(store, "weird:latest", new_config([diff]), [layer])
    manifest = store.read_json(desc)
    manifest["layers"][0]["mediaType"] = "application/vnd.example.layer.v9+lz4"
    weird = store.put_json(manifest)
    store.add_image("weird:latest", weird)
    with RegistryClient() as client:
        client.push(store, "weird:latest", f"{registry.host}/lab/weird:latest")
    res = run_cli("pull", f"{registry.host}/lab/weird:latest", root=tmp_path / "p", check=False)
    assert res.returncode == 1
    assert "unsupported layer media type 'application/vnd.example.layer.v9+lz4'" in res.stderr
    with RegistryClient() as client, pytest.raises(UnsupportedMediaType):
        client.pull(Store(tmp_path / "p"), f"{registry.host}/lab/weird:latest")


def test_pull_sigkilled_halfway_then_repeated_reuses_blobs(store, registry, proxy, tmp_path):
    small, diff_s = write_layer(store, TarBuilder().file("small", b"s" * 1000).bytes_io(), "gzip")
    big, diff_b = write_layer(store, TarBuilder().file("big.bin", os.urandom(4 << 20)).bytes_io(), "gzip")
    write_image(store, "two:latest", new_config([diff_s, diff_b], config=BUSYBOX_CONFIG), [small, big])
    with RegistryClient() as client:
        client.push(store, "two:latest", f"{registry.host}/lab/two:latest")
    proxy.throttle = (f"/blobs/{big.digest}", 1 << 20)  # 4 s for the big layer
    root = tmp_path / "p"
    proc = spawn_cli(root, "-q", "pull", f"{proxy.host}/lab/two:latest", stderr=subprocess.DEVNULL)
    partial = root / ".bock" / "ingest" / f"sha256-{big.digest.split(':')[1]}.partial"
    try:
        deadline = time.monotonic() + 20
        while not (partial.exists() and partial.stat().st_size > (1 << 20)):
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.05)
        assert Store(root).has_blob(small.digest)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert Store(root).images() == []
    proxy.throttle = None
    proxy.log.clear()
    run_cli("pull", f"{proxy.host}/lab/two:latest", root=root)
    gets = [(p, r) for m, p, r, _ in proxy.log if m == "GET" and "/blobs/" in p]
    assert not [p for p, _ in gets if small.digest in p]  # finished blob reused
    big_gets = [r for p, r in gets if big.digest in p]
    assert len(big_gets) == 1 and big_gets[0] and int(big_gets[0][6:].rstrip("-")) > (1 << 20)
    assert Store(root).verify() == []


def test_plain_http_refused_for_remote_hosts():
    with RegistryClient() as client, pytest.raises(Exception) as info:
        client.inspect("bock-test-no-such-host.invalid:5000/x/y:latest")
    assert "https://" in str(info.value)


def test_two_pulls_at_once_same_store(busybox_store, registry, tmp_path):
    with RegistryClient() as client:
        client.push(busybox_store, "busybox:latest", f"{registry.host}/lab/con:1")
        client.push(busybox_store, "busybox:latest", f"{registry.host}/lab/con:2")
    root = tmp_path / "shared"
    procs = [spawn_cli(root, "-q", "pull", f"{registry.host}/lab/con:{i}") for i in (1, 2, 1, 2)]
    assert [p.wait() for p in procs] == [0, 0, 0, 0]
    names = sorted(n for n, _ in Store(root).images())
    assert names == [f"{registry.host}/lab/con:1", f"{registry.host}/lab/con:2"]
    assert Store(root).verify() == []


def test_registry_fixture_is_real(registry):
    assert isinstance(registry, Registry) and registry.proc.poll() is None


def _tree(root: Path) -> dict:
    out = {}
    for p in sorted(root.rglob("*")):
        st = p.lstat()
        out[str(p.relative_to(root))] = (
            st.st_mode,
            st.st_uid,
            st.st_gid,
            p.read_bytes() if p.is_file() and not p.is_symlink() else None,
        )
    return out


@pytest.mark.root
def test_pull_unpack_streams_layers_even_across_a_cut(store, busybox_rootfs, registry, proxy, tmp_path):
    base, diff_b = write_layer(store, busybox_rootfs, "gzip")
    upper = (
        TarBuilder()
        .file("etc/.wh.group")
        .dir("data")
        .file("data/big", os.urandom(2 << 20))
        .file("data/.wh..wh..opq")
    )
    top, diff_t = write_layer(store, upper.bytes_io(), "zstd")
    write_image(store, "stack:latest", new_config([diff_b, diff_t], config=BUSYBOX_CONFIG), [base, top])
    with RegistryClient() as client:
        client.push(store, "stack:latest", f"{registry.host}/lab/stack:latest")
    proxy.cut = (f"/blobs/{top.digest}", 1 << 20)
    streamed = Store(tmp_path / "streamed")
    with RegistryClient(backoff=0.01) as client:
        client.pull(streamed, f"{proxy.host}/lab/stack:latest", unpack=True)
    assert [r for m, p, r, _ in proxy.log if m == "GET" and top.digest in p][1].startswith("bytes=")
    snaps = [streamed.root / ".bock" / "snapshots" / f"sha256-{d.digest[7:]}" for d in (base, top)]
    assert all(s.is_dir() for s in snaps)
    # the same snapshots as unpacking from the stored blobs afterwards
    for layer, snap in zip((base, top), snaps, strict=True):
        plain = store.snapshot(layer, parents=[base] if layer is top else [])
        assert _tree(snap) == _tree(plain)
    r = streamed.rootfs(f"{proxy.host}/lab/stack:latest", tmp_path / "rootfs", mode="overlay")
    try:
        assert not (r.path / "etc" / "group").exists() and (r.path / "etc" / "passwd").exists()
        assert (r.path / "data" / "big").stat().st_size == 2 << 20
    finally:
        from bock_image import release_rootfs

        release_rootfs(r.path)


@pytest.mark.root
@pytest.mark.parametrize("compression", ["gzip", "zstd", "none"])
def test_pull_unpack_builds_snapshots_from_the_stream(store, busybox_rootfs, registry, tmp_path, compression):
    """The snapshots of a fresh pull come from the download stream itself: with unpacking from the
    stored blob disabled (the fallback), pull --unpack still succeeds (it once silently fell back)."""
    from bock_image import _snapshots

    base, diff_b = write_layer(store, busybox_rootfs, compression)
    top_tar = (
        TarBuilder()
        .file("etc/.wh.group")
        .hardlink("bin/busybox-again", "bin/busybox")
        .file("bin/.wh..wh..opq")
    )
    top, diff_t = write_layer(store, top_tar.bytes_io(), "gzip")
    write_image(store, "s:latest", new_config([diff_b, diff_t], config=BUSYBOX_CONFIG), [base, top])
    with RegistryClient() as client:
        client.push(store, "s:latest", f"{registry.host}/lab/s:latest")

    def no_fallback(*args, **kw):
        raise AssertionError("unpacked from the stored blob, not from the stream")

    streamed = Store(tmp_path / "streamed")
    with pytest.MonkeyPatch.context() as mp, RegistryClient() as client:
        mp.setattr(_snapshots, "apply_layer", no_fallback)
        client.pull(streamed, f"{registry.host}/lab/s:latest", unpack=True)
    snaps = [streamed.root / ".bock" / "snapshots" / f"sha256-{d.digest[7:]}" for d in (base, top)]
    assert _snapshot_entries(streamed.root) == sorted(s.name for s in snaps)
    assert _tree(snaps[0]) == _tree(store.snapshot(base))
    assert _tree(snaps[1]) == _tree(store.snapshot(top, parents=[base]))
    assert (snaps[1] / "bin" / "busybox-again").is_file()  # copied up from the streamed lower layer


@pytest.mark.root
def test_pull_unpack_refuses_hostile_layer(store, registry, tmp_path):
    host = tmp_path / "host"
    host.mkdir()
    layer, diff = write_layer(
        store, TarBuilder().symlink("evil", str(host)).file("evil/pwned", b"x").bytes_io(), "gzip"
    )
    write_image(store, "evil:latest", new_config([diff], config=BUSYBOX_CONFIG), [layer])
    with RegistryClient() as client:
        client.push(store, "evil:latest", f"{registry.host}/lab/evil:latest")
    root = tmp_path / "p"
    res = run_cli("pull", "--unpack", f"{registry.host}/lab/evil:latest", root=root, check=False)
    assert res.returncode == 1 and "symlink evil" in res.stderr
    assert list(host.iterdir()) == []
    assert list((root / ".bock" / "snapshots").iterdir()) == []


def _snapshot_entries(root: Path) -> list[str]:
    return sorted(p.name for p in (root / ".bock" / "snapshots").iterdir())


@pytest.mark.root
@pytest.mark.parametrize("with_diff_ids", [True, False], ids=["diff-ids", "no-diff-ids"])
def test_pull_unpack_digest_mismatch_leaves_no_snapshot(store, registry, proxy, tmp_path, with_diff_ids):
    """A blob that unpacks cleanly but is not the one the manifest names is never committed as the
    snapshot, even when the config has no diff_ids to catch it (the blob digest alone must)."""
    # two valid layers of exactly the same size (stored deflate), so the impostor is read to the end
    good_tar = TarBuilder().file("good", b"g" * 5000).bytes()
    bad_tar = TarBuilder().file("good", b"e" * 5000).bytes()
    good, impostor = (gzip.compress(t, compresslevel=0, mtime=0) for t in (good_tar, bad_tar))
    assert len(good) == len(impostor) and good != impostor
    layer = attrs.evolve(store.put_blob(good), mediaType="application/vnd.oci.image.layer.v1.tar+gzip")
    config = new_config([digest_of(good_tar)] if with_diff_ids else [], config=BUSYBOX_CONFIG)
    write_image(store, "m:latest", config, [layer])
    with RegistryClient() as client:
        client.push(store, "m:latest", f"{registry.host}/lab/m:latest")
    proxy.replace = (f"/blobs/{layer.digest}", impostor)
    root = tmp_path / "p"
    with RegistryClient(retries=0) as client, pytest.raises(DigestMismatch):
        client.pull(Store(root), f"{proxy.host}/lab/m:latest", unpack=True)
    assert [p for m, p, _, _ in proxy.log if m == "GET" and layer.digest in p]
    assert _snapshot_entries(root) == []
    assert not Store(root).has_blob(layer.digest)
    res = run_cli("pull", "--unpack", f"{proxy.host}/lab/m:latest", root=root, check=False)
    assert res.returncode == 1 and "digest mismatch" in res.stderr.lower()
    assert _snapshot_entries(root) == []
    # straight from the registry it works, into the same store
    run_cli("pull", "--unpack", f"{registry.host}/lab/m:latest", root=root)
    snap = f"sha256-{layer.digest[7:]}"
    assert _snapshot_entries(root) == [snap]
    assert (root / ".bock" / "snapshots" / snap / "good").read_bytes() == b"g" * 5000


@pytest.mark.root
def test_concurrent_pull_unpack_same_image_one_snapshot(store, registry, tmp_path):
    """Two processes pulling and unpacking the same image into one store both succeed and share
    one complete snapshot; no temporary directory or lock file is left behind."""
    tb = TarBuilder()
    for d in range(20):
        tb.dir(f"d{d}")
        for i in range(100):
            tb.file(f"d{d}/f{i}", os.urandom(256))
    layer, diff = write_layer(store, tb.bytes_io(), "gzip")
    write_image(store, "many:latest", new_config([diff], config=BUSYBOX_CONFIG), [layer])
    with RegistryClient() as client:
        client.push(store, "many:latest", f"{registry.host}/lab/many:latest")
    root = tmp_path / "shared"
    ref = f"{registry.host}/lab/many:latest"
    procs = [spawn_cli(root, "-q", "pull", "--unpack", ref, stderr=subprocess.PIPE) for _ in range(2)]
    try:
        errors = [p.communicate(timeout=120)[1] for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    assert [p.returncode for p in procs] == [0, 0], errors
    snap = f"sha256-{layer.digest[7:]}"
    assert _snapshot_entries(root) == [snap]
    expected = store.snapshot(layer)  # unpacked from the blob in the other store
    assert _tree(root / ".bock" / "snapshots" / snap) == _tree(expected)


def test_progress_bar_on_a_terminal_plain_lines_otherwise(busybox_store, registry, tmp_path):
    import pty

    with RegistryClient() as client:
        client.push(busybox_store, "busybox:latest", f"{registry.host}/lab/progress:latest")
    ref = f"{registry.host}/lab/progress:latest"
    plain = run_cli("pull", ref, root=tmp_path / "plain")
    assert "Copying blob" in plain.stderr and "\r" not in plain.stderr
    assert run_cli("-q", "pull", ref, root=tmp_path / "quiet").stderr == ""
    main, sub = pty.openpty()
    try:
        proc = spawn_cli(tmp_path / "tty", "pull", ref, stderr=sub, stdout=subprocess.DEVNULL)
        os.close(sub)
        out = b""
        while True:
            try:
                data = os.read(main, 4096)
            except OSError:
                break
            if not data:
                break
            out += data
        assert proc.wait() == 0
    finally:
        os.close(main)
    assert b"\r[" in out and b"MiB" in out
    rows = json.loads(run_cli("--format", "json", "pull", ref, root=tmp_path / "json").stdout)
    assert rows["digest"] == busybox_store.resolve("busybox:latest").digest

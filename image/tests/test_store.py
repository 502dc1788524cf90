"""The store: an OCI layout that skopeo and umoci read as is; CLI store commands; atomicity and locking."""

from __future__ import annotations

import json
import os
import subprocess

import pytest
from bock_image import DigestMismatch, InvalidReference, NotFound, Store, import_rootfs
from bock_image_testlib import BUSYBOX_CONFIG, spawn_cli


def test_import_list_inspect_cli(tmp_path, busybox_tarball, cli):
    root = tmp_path / "s"
    digest = cli(
        "import", str(busybox_tarball), "busybox", "--cmd", '["sh", "-c", "id"]', "--env", "A=1", root=root
    ).stdout.strip()
    assert digest.startswith("sha256:")
    out = cli("inspect", "busybox:latest", root=root).stdout
    info = json.loads(out)
    assert info["Digest"] == digest and digest in out
    assert info["Config"]["config"]["Cmd"] == ["sh", "-c", "id"]
    missing = cli("inspect", "nope:latest", root=root, check=False)
    assert missing.returncode != 0 and "image not known: nope:latest" in missing.stderr
    rows = json.loads(cli("--format", "json", "list", root=root).stdout)
    assert [(r["name"], r["digest"]) for r in rows] == [("busybox:latest", digest)]
    # the layout is what skopeo and umoci expect
    layout = json.loads((root / "oci-layout").read_text())
    assert layout == {"imageLayoutVersion": "1.0.0"}
    sk = json.loads(
        subprocess.run(
            ["skopeo", "inspect", f"oci:{root}:busybox:latest"], capture_output=True, text=True, check=True
        ).stdout
    )
    assert sk["Digest"] == digest
    umoci = subprocess.run(
        ["umoci", "ls", "--layout", str(root)], capture_output=True, text=True, check=True
    ).stdout.split()
    assert umoci == ["busybox:latest"]


def test_import_directory_zstd_and_env_root(tmp_path, busybox_rootfs, cli, monkeypatch):
    root = tmp_path / "envroot"
    env = {**os.environ, "BOCK_IMAGE_ROOT": str(root)}
    cli("import", "--compression", "zstd", str(busybox_rootfs), "bbz:1", env=env)
    store = Store(root)
    assert store.layers("bbz:1")[0].mediaType == "application/vnd.oci.image.layer.v1.tar+zstd"
    subprocess.run(
        ["skopeo", "copy", f"oci:{root}:bbz:1", f"oci:{tmp_path / 'copy'}:bbz"],
        check=True,
        capture_output=True,
    )


def test_tag_rm_gc_verify(tmp_path, busybox_tarball, cli):
    root = tmp_path / "s"
    cli("import", str(busybox_tarball), "a:1", root=root)
    cli("tag", "a:1", "b:2", root=root)
    store = Store(root)
    assert store.resolve("a:1").digest == store.resolve("b:2").digest
    blobs = set((root / "blobs" / "sha256").iterdir())
    assert len(blobs) == 3
    cli("rm", "a:1", root=root)
    assert cli("gc", root=root).stdout == ""  # b:2 still holds everything
    assert cli("rm", "a:1", root=root, check=False).returncode != 0
    cli("rm", "b:2", root=root)
    removed = cli("gc", root=root).stdout.split()
    assert len(removed) == 6 and list((root / "blobs" / "sha256").iterdir()) == []
    # verify finds a corrupt blob
    cli("import", str(busybox_tarball), "c:1", root=root)
    assert cli("verify", root=root).stdout.strip() == "ok"
    layer = Store(root).layers("c:1")[0].digest
    path = Store(root).blob_path(layer)
    data = bytearray(path.read_bytes())
    data[100] ^= 0xFF
    path.write_bytes(bytes(data))
    res = cli("verify", root=root, check=False)
    assert res.returncode == 1 and f"blob {layer} is corrupt" in res.stdout


def test_put_blob_mismatch_leaves_nothing(store):
    good = b"hello"
    wrong = "sha256:" + "0" * 64
    with pytest.raises(DigestMismatch):
        store.put_blob(good, wrong)
    with pytest.raises(DigestMismatch):
        store.put_blob(
            good, "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824", size=4
        )
    assert list((store.root / "blobs" / "sha256").iterdir()) == []
    assert list((store.root / ".bock" / "ingest").iterdir()) == []
    d = store.put_blob(iter([b"hel", b"lo"]))
    assert (
        d.digest == "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824" and d.size == 5
    )


def test_resolve_errors(store):
    with pytest.raises(NotFound):
        store.resolve("busybox")
    with pytest.raises(InvalidReference):
        store.blob_path("md5:abc")


def test_docker_style_names_match(busybox_store):
    d = busybox_store.resolve("busybox:latest")
    assert busybox_store.resolve("docker.io/library/busybox:latest") == d
    assert busybox_store.resolve("busybox") == d
    assert busybox_store.resolve(d.digest).digest == d.digest


def test_concurrent_imports_keep_every_name(tmp_path, busybox_tarball):
    root = tmp_path / "s"
    procs = [
        spawn_cli(root, "import", str(busybox_tarball), f"img{i}:latest", stdout=subprocess.DEVNULL)
        for i in range(8)
    ]
    assert [p.wait() for p in procs] == [0] * 8
    names = sorted(n for n, _ in Store(root).images())
    assert names == [f"img{i}:latest" for i in range(8)]
    assert Store(root).verify() == []


def test_config_round_trips_unknown_keys(store, busybox_tarball):
    d = import_rootfs(
        store, busybox_tarball, "x:1", config={**BUSYBOX_CONFIG, "Healthcheck": {"Test": ["CMD", "true"]}}
    )
    assert store.config(d.digest)["config"]["Healthcheck"] == {"Test": ["CMD", "true"]}

"""save/load (oci-archive, docker-archive as docker save writes it) and export, skopeo as oracle."""

from __future__ import annotations

import json
import tarfile

import pytest
from bock_image import Store, UnsupportedMediaType, load_archive
from bock_image_testlib import skopeo

pytestmark = pytest.mark.root


@pytest.mark.parametrize("fmt", ["oci-archive", "docker-archive"])
def test_save_is_read_by_skopeo_and_loads_back(busybox_store, tmp_path, cli, fmt):
    out = tmp_path / f"bb-{fmt}.tar"
    cli("save", "--archive-format", fmt, "-o", str(out), "busybox:latest", root=busybox_store.root)
    info = json.loads(skopeo("inspect", f"{fmt}:{out}"))
    layers = busybox_store.layers("busybox:latest")
    if fmt == "oci-archive":
        assert info["Digest"] == busybox_store.resolve("busybox:latest").digest
        assert info["Layers"] == [d.digest for d in layers]
    else:
        assert info["Layers"] == busybox_store.config("busybox:latest")["rootfs"]["diff_ids"]
    root2 = tmp_path / "other"
    res = cli("load", str(out), root=root2)
    assert "Loaded image: " in res.stdout
    other = Store(root2)
    name = "busybox:latest"
    assert other.config(name)["rootfs"] == busybox_store.config("busybox:latest")["rootfs"]
    assert other.verify() == []
    rootfs = other.rootfs(name, tmp_path / "rootfs", mode="copy")
    assert (rootfs.path / "bin" / "busybox").is_file()


def test_load_docker_save_tarball_made_by_skopeo(busybox_store, tmp_path, cli):
    # skopeo's docker-archive writer produces the `docker save` layout (manifest.json, <id>.tar layers)
    arch = tmp_path / "docker-save.tar"
    skopeo(
        "copy",
        f"oci:{busybox_store.root}:busybox:latest",
        f"docker-archive:{arch}:docker.io/library/busybox:1.36",
    )
    with tarfile.open(arch) as t:
        assert "manifest.json" in t.getnames()
    root = tmp_path / "loaded"
    cli("load", str(arch), root=root)
    store = Store(root)
    assert store.resolve("busybox:1.36") == store.resolve("docker.io/library/busybox:1.36")
    r = store.rootfs("busybox:1.36", tmp_path / "r", mode="copy")
    assert (r.path / "etc" / "passwd").read_text().startswith("root:")


def test_load_oci_archive_made_by_skopeo_with_override_name(busybox_store, tmp_path):
    arch = tmp_path / "oci.tar"
    skopeo("copy", f"oci:{busybox_store.root}:busybox:latest", f"oci-archive:{arch}:whatever:1")
    store = Store(tmp_path / "s")
    added = load_archive(store, arch, "renamed:2")
    assert [n for n, _ in added] == ["renamed:2"]
    assert store.resolve("renamed:2").digest == busybox_store.resolve("busybox:latest").digest


def test_load_rejects_non_image_tarball(tmp_path, busybox_tarball):
    with pytest.raises(UnsupportedMediaType, match="neither an oci-archive"):
        load_archive(Store(tmp_path / "s"), busybox_tarball)


def test_export_flattened_filesystem(busybox_store, tmp_path, cli):
    out = tmp_path / "fs.tar"
    cli("export", "busybox:latest", str(out), root=busybox_store.root)
    with tarfile.open(out) as t:
        names = t.getnames()
    assert "bin/busybox" in names and "etc/passwd" in names

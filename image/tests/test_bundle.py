"""Bundles: config.json from the image config (image-spec conversion rules) on a runc-like default
spec; runs for real under the runtime in $BOCK_RUNTIME (default runc); umoci as conversion oracle."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from pathlib import Path

import pytest
from bock_image import BundleError, ImageError, Store, bundle, import_rootfs, remove_bundle, runtime_spec
from bock_image_testlib import BUSYBOX_CONFIG, runtime_binary

pytestmark = pytest.mark.root
REPO = Path(__file__).resolve().parents[2]


def _schema_dir() -> Path | None:
    for candidate in (
        REPO / "spec-schemas" / "runtime",
        REPO.parent / "shared" / "oci-spec" / "runtime-spec-schema",
        Path("/work/shared/oci-spec/runtime-spec-schema"),
    ):
        if (candidate / "config-schema.json").exists():
            return candidate
    return None


def validate_runtime_config(spec: dict) -> None:
    import jsonschema
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT4

    d = _schema_dir()
    if d is None:
        pytest.skip("no runtime-spec schema found (spec-schemas/ or shared/oci-spec/)")
    base = "https://oci.schemas.test/"
    resources = [
        (base + p.name, Resource.from_contents(json.loads(p.read_text()), DRAFT4)) for p in d.glob("*.json")
    ]
    registry = Registry().with_resources(resources)
    schema = {**json.loads((d / "config-schema.json").read_text()), "id": base + "config-schema.json"}
    jsonschema.Draft4Validator(schema, registry=registry).validate(spec)


def run_bundle(path: Path) -> subprocess.CompletedProcess:
    cid = f"t-{uuid.uuid4().hex[:12]}"
    try:
        return subprocess.run(
            [runtime_binary(), "run", "--bundle", str(path), cid], capture_output=True, text=True, timeout=60
        )
    finally:
        subprocess.run([runtime_binary(), "delete", "--force", cid], capture_output=True)


@pytest.fixture
def bundles(tmp_path):
    made: list[Path] = []

    def make(store, ref, name="bundle", **kw):
        b = bundle(store, ref, tmp_path / name, **kw)
        made.append(b.path)
        return b

    yield make
    for p in made:
        remove_bundle(p)


@pytest.mark.parametrize("mode", ["overlay", "copy"])
def test_bundle_runs_under_runtime(busybox_store, bundles, mode):
    b = bundles(
        busybox_store,
        "busybox:latest",
        rootfs_mode=mode,
        user="alice",
        args=["sh", "-c", "id; pwd; echo $PATH; echo $HOME; touch /tmp/w && echo wrote"],
    )
    assert b.rootfs.mode == mode
    res = run_bundle(b.path)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[0] == "uid=1000(alice) gid=1000(alice) groups=10(wheel)"
    assert lines[1:] == [
        "/",
        "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "/home/alice",
        "wrote",
    ]
    validate_runtime_config(json.loads((b.path / "config.json").read_text()))
    if mode == "overlay":  # the write went to the bundle's upper dir, not the shared snapshot
        snap = busybox_store.snapshot(busybox_store.layers("busybox:latest")[0])
        assert not (snap / "tmp" / "w").exists()


def _tall_image(store: Store, count: int = 60) -> list[str]:
    """busybox plus count-1 one-file layers, the top one whiting out the first one's file; returns the
    snapshot paths, lowest first."""
    from bock_image import new_config, write_image, write_layer
    from bock_image_testlib import TarBuilder

    layers = [store.layers("busybox:latest")[0]]
    diffs = [store.config("busybox:latest")["rootfs"]["diff_ids"][0]]
    for i in range(count - 1):
        tar = TarBuilder().file(f"layers/{i:02d}", f"{i}\n".encode())
        if i == count - 2:
            tar.file("layers/.wh.00")
        layer, diff = write_layer(store, tar.bytes_io(), "gzip")
        layers.append(layer)
        diffs.append(diff)
    write_image(store, "tall:1", new_config(diffs, config=BUSYBOX_CONFIG), layers)
    return [str(store.snapshot(d, parents=layers[:i])) for i, d in enumerate(layers)]


@pytest.mark.skipif(
    tuple(int(x) for x in os.uname().release.split(".")[:2]) < (6, 8), reason="lowerdir+ needs Linux 6.8"
)
def test_many_layers_overlay_and_gc_keeps_them_while_mounted(busybox_store, bundles):
    """60 layers: too many snapshot paths for one mount(2) page; lowerdir+ takes them one by one."""
    store = busybox_store
    snaps = _tall_image(store)
    assert len(f"lowerdir={':'.join(snaps)}") > 4096  # mount(2) alone could not take them
    b = bundles(
        store,
        "tall:1",
        rootfs_mode="overlay",
        args=["sh", "-c", "cat /layers/* | wc -l; ls /layers | head -1"],
    )
    assert b.rootfs.mode == "overlay"
    with open("/proc/self/mountinfo") as f:
        line = next(x for x in f if f" {b.rootfs.path} " in x)
    assert line.count("lowerdir+=") == 60 and f"lowerdir+={snaps[-1]}," in line  # topmost first
    res = run_bundle(b.path)
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ["58", "01"]  # 59 files, one whited out
    store.rm("tall:1")
    store.gc()  # the mounted rootfs still holds its snapshots
    assert all(os.path.isdir(p) for p in snaps)


def test_many_layers_without_lowerdir_plus_fall_back_to_a_copy(busybox_store, bundles, monkeypatch):
    """A kernel before 6.8 refuses the lowerdir+ key (EINVAL): auto copies, overlay says why."""
    import errno

    from bock_image import _mount

    real = _mount._syscall

    def old_kernel(what: str, nr: int, *args: object) -> int:
        if what.startswith("overlay lowerdir+ "):  # as fsconfig(2) answers for an unknown key
            raise OSError(errno.EINVAL, f"{what}: Invalid argument")
        return real(what, nr, *args)

    busybox_store.snapshot(busybox_store.layers("busybox:latest")[0])
    _tall_image(busybox_store)
    monkeypatch.setattr(_mount, "_syscall", old_kernel)
    with pytest.raises(
        ImageError, match=r"overlay mount of 60 layers failed: .*lowerdir\+ .*Invalid argument"
    ):
        bundles(busybox_store, "tall:1", name="b1", rootfs_mode="overlay")
    b = bundles(busybox_store, "tall:1", name="b2", rootfs_mode="auto", args=["ls", "/layers"])
    assert b.rootfs.mode == "copy"
    assert sorted(os.listdir(b.rootfs.path / "layers")) == [f"{i:02d}" for i in range(1, 59)]


def test_cli_bundle_and_unbundle(busybox_store, tmp_path, cli):
    d = tmp_path / "b"
    cli("bundle", "busybox:latest", str(d), "--", "sh", "-c", "echo from-cli", root=busybox_store.root)
    try:
        res = run_bundle(d)
        assert res.returncode == 0 and res.stdout == "from-cli\n", res.stderr
    finally:
        cli("unbundle", str(d))
    assert not d.exists()


def test_conversion_rules(busybox_rootfs, store):
    config = {
        "architecture": "amd64",
        "os": "linux",
        "author": "me",
        "created": "2026-01-01T00:00:00Z",
        "config": {
            "Entrypoint": ["/bin/sh", "-c"],
            "Cmd": ["echo hi"],
            "Env": ["FOO=bar"],
            "WorkingDir": "/tmp",
            "User": "alice:wheel",
            "ExposedPorts": {"80/tcp": {}, "53/udp": {}},
            "Volumes": {"/data": {}},
            "Labels": {"org.opencontainers.image.author": "label-wins", "x": "y"},
            "StopSignal": "SIGUSR1",
        },
    }
    spec = runtime_spec(config, busybox_rootfs)
    p = spec["process"]
    assert p["args"] == ["/bin/sh", "-c", "echo hi"]
    assert p["env"][:2] == ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "FOO=bar"]
    assert p["cwd"] == "/tmp"
    assert p["user"] == {"uid": 1000, "gid": 10}  # explicit group: no supplementary groups
    a = spec["annotations"]
    assert a["org.opencontainers.image.exposedPorts"] == "53/udp,80/tcp"
    assert a["org.opencontainers.image.volumes"] == "/data"
    assert a["org.opencontainers.image.stopSignal"] == "SIGUSR1"
    assert a["org.opencontainers.image.author"] == "label-wins" and a["x"] == "y"
    assert a["org.opencontainers.image.architecture"] == "amd64"
    # overrides: args replace Cmd, entrypoint override resets Cmd; Env PATH of the image wins
    assert runtime_spec(config, busybox_rootfs, args=["echo x"])["process"]["args"] == [
        "/bin/sh",
        "-c",
        "echo x",
    ]
    assert runtime_spec(config, busybox_rootfs, entrypoint=["id"])["process"]["args"] == ["id"]
    config["config"]["Env"] = ["PATH=/only"]
    assert runtime_spec(config, busybox_rootfs)["process"]["env"][0] == "PATH=/only"
    assert runtime_spec(config, busybox_rootfs, user="1234")["process"]["user"] == {"uid": 1234, "gid": 0}
    assert runtime_spec(config, busybox_rootfs, user="nobody")["process"]["user"] == {
        "uid": 65534,
        "gid": 65534,
    }
    with pytest.raises(BundleError, match="unable to find user ghost"):
        runtime_spec(config, busybox_rootfs, user="ghost")
    with pytest.raises(BundleError, match="unable to find group ghosts"):
        runtime_spec(config, busybox_rootfs, user="alice:ghosts")
    validate_runtime_config(spec)


def test_passwd_symlink_cannot_leak_host_files(tmp_path, busybox_rootfs):
    import shutil

    root = tmp_path / "rootfs"
    shutil.copytree(busybox_rootfs, root, symlinks=True)
    (root / "etc" / "passwd").unlink()
    host_passwd = tmp_path / "hostpasswd"
    host_passwd.write_text("ghost:x:4242:4242::/:/bin/sh\n")
    os.symlink(str(host_passwd), root / "etc" / "passwd")  # absolute: re-rooted inside the rootfs
    with pytest.raises(BundleError, match="ghost"):
        runtime_spec({"config": {"Cmd": ["sh"], "User": "ghost"}}, root)


def test_matches_umoci_conversion(store, busybox_tarball, tmp_path, bundles):
    cfg = {
        "Entrypoint": ["/bin/sh"],
        "Cmd": ["-c", "id"],
        "Env": ["A=1"],
        "WorkingDir": "/home/alice",
        "User": "alice",
    }
    import_rootfs(store, busybox_tarball, "conv:latest", config=cfg)
    ours = bundles(store, "conv:latest").spec
    subprocess.run(
        ["umoci", "unpack", "--image", f"{store.root}:conv:latest", str(tmp_path / "umoci")],
        check=True,
        capture_output=True,
    )
    theirs = json.loads((tmp_path / "umoci" / "config.json").read_text())
    for key in ("args", "cwd"):
        assert ours["process"][key] == theirs["process"][key]
    assert ours["process"]["user"]["uid"] == theirs["process"]["user"]["uid"]
    assert ours["process"]["user"]["gid"] == theirs["process"]["user"]["gid"]
    assert [e for e in theirs["process"]["env"] if not e.startswith(("TERM=", "HOME="))] == [
        e for e in ours["process"]["env"] if not e.startswith("HOME=")
    ]


def test_image_without_command_runs_sh_like_umoci(store, busybox_tarball, tmp_path, bundles):
    import_rootfs(store, busybox_tarball, "nocmd:latest")
    ours = bundles(store, "nocmd:latest").spec["process"]["args"]
    subprocess.run(
        ["umoci", "unpack", "--image", f"{store.root}:nocmd:latest", str(tmp_path / "umoci")],
        check=True,
        capture_output=True,
    )
    assert ours == json.loads((tmp_path / "umoci" / "config.json").read_text())["process"]["args"] == ["sh"]


def test_bundle_error_leaves_nothing_behind(busybox_store, tmp_path):
    for mode in ("copy", "overlay"):
        with pytest.raises(BundleError, match="unable to find user ghost"):
            bundle(busybox_store, "busybox:latest", tmp_path / "b", rootfs_mode=mode, user="ghost")
        assert not (tmp_path / "b").exists()
        assert not os.path.ismount(tmp_path / "b" / "rootfs")


def test_busybox_config_constant_is_used(busybox_store: Store):
    assert busybox_store.config("busybox:latest")["config"]["Cmd"] == BUSYBOX_CONFIG["Cmd"]

"""Layer unpacking: hostile layers are refused with the host untouched; whiteouts, opaque dirs,
links, devices, modes, owners, mtimes and xattrs are applied, in overlay and copy rootfs modes;
umoci is the oracle for the resulting tree."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest
from bock_image import Store, UnsafeLayer, new_config, release_rootfs, write_image, write_layer
from bock_image_testlib import TarBuilder, run_cli, spawn_cli

pytestmark = pytest.mark.root
MODES = ("overlay", "copy")


def image(store: Store, ref: str, *layers: bytes) -> None:
    descs, diffs = [], []
    for data in layers:
        import io

        d, diff = write_layer(store, io.BytesIO(data), "gzip")
        descs.append(d)
        diffs.append(diff)
    write_image(store, ref, new_config(diffs, config={"Cmd": ["sh"]}), descs)


@pytest.fixture
def host(tmp_path) -> Path:
    """A directory standing for the host: hostile layers aim at it; it must stay as it is."""
    h = tmp_path / "host"
    h.mkdir()
    (h / "secret").write_text("host secret\n")
    return h


def snapshot_of(host: Path) -> list[tuple[str, int, bytes]]:
    out = []
    for p in sorted(host.parent.rglob("*")):
        if "store" in p.parts or "rootfs" in p.parts or p.name.startswith(".rootfs"):
            continue
        st = p.lstat()
        out.append((str(p), st.st_mode, p.read_bytes() if p.is_file() and not p.is_symlink() else b""))
    return out


def hostile_layers(host: Path) -> dict[str, list[bytes]]:
    return {
        "dotdot": [TarBuilder().file("../escape", b"x").bytes()],
        "dotdot-deep": [TarBuilder().dir("a").file("a/../../escape", b"x").bytes()],
        "absolute": [TarBuilder().file(f"{host}/abs", b"x").bytes()],
        "abs-symlink-then-write": [TarBuilder().symlink("evil", str(host)).file("evil/pwned", b"x").bytes()],
        "rel-symlink-escape": [
            TarBuilder().symlink("evil", "../" * 8 + str(host)).file("evil/pwned", b"x").bytes()
        ],
        "symlink-chain": [
            TarBuilder().symlink("a", "b").symlink("b", str(host)).file("a/pwned", b"x").bytes()
        ],
        "hardlink-out-dotdot": [TarBuilder().hardlink("link", "../host/secret").bytes()],
        "hardlink-out-abs": [TarBuilder().hardlink("link", f"{host}/secret").bytes()],
        "hardlink-through-symlink": [
            TarBuilder().symlink("d", str(host)).hardlink("link", "d/secret").bytes()
        ],
        "symlink-planted-by-lower-layer": [
            TarBuilder().symlink("evil", str(host)).bytes(),
            TarBuilder().file("evil/pwned", b"x").bytes(),
        ],
        "whiteout-dotdot": [TarBuilder().file("../.wh.host", b"").bytes()],
    }


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    "case",
    [
        "dotdot",
        "dotdot-deep",
        "absolute",
        "abs-symlink-then-write",
        "rel-symlink-escape",
        "symlink-chain",
        "hardlink-out-dotdot",
        "hardlink-out-abs",
        "hardlink-through-symlink",
        "symlink-planted-by-lower-layer",
        "whiteout-dotdot",
    ],
)
def test_hostile_layer_refused_host_untouched(tmp_path, host, case, mode):
    store = Store(tmp_path / "store")
    image(store, "evil:latest", *hostile_layers(host)[case])
    before = snapshot_of(host)
    dest = tmp_path / "rootfs"
    with pytest.raises(UnsafeLayer):
        store.rootfs("evil:latest", dest, mode=mode)
    assert snapshot_of(host) == before
    assert not (tmp_path / "escape").exists() and not (host / "pwned").exists()
    assert not os.path.ismount(dest)
    leftovers = [p.name for p in (store.root / ".bock" / "snapshots").iterdir() if p.name.startswith(".tmp")]
    assert leftovers == []
    if dest.exists():
        release_rootfs(dest)


def test_hostile_layer_cli_bundle_fails_cleanly(tmp_path, host, cli):
    store = Store(tmp_path / "store")
    image(store, "evil:latest", *hostile_layers(host)["abs-symlink-then-write"])
    res = cli("bundle", "evil:latest", str(tmp_path / "bundle"), root=store.root, check=False)
    assert res.returncode == 1 and "symlink evil" in res.stderr
    assert not (host / "pwned").exists()
    assert not os.path.ismount(tmp_path / "bundle" / "rootfs")


@pytest.mark.parametrize("mode", MODES)
def test_file_replacing_symlink_does_not_write_through(tmp_path, host, mode):
    store = Store(tmp_path / "store")
    image(
        store,
        "x:latest",
        TarBuilder().symlink("f", f"{host}/secret").bytes(),
        TarBuilder().file("f", b"mine").bytes(),
    )
    rootfs = store.rootfs("x:latest", tmp_path / "rootfs", mode=mode)
    try:
        assert (rootfs.path / "f").read_bytes() == b"mine" and not (rootfs.path / "f").is_symlink()
        assert (host / "secret").read_text() == "host secret\n"
    finally:
        release_rootfs(rootfs.path)


def tree(root: Path) -> dict[str, tuple]:
    """A comparable description of a tree: type, mode, owner, size/content, link target, rdev."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            st = p.lstat()
            rel = str(p.relative_to(root))
            extra: object = None
            if stat.S_ISLNK(st.st_mode):
                extra = os.readlink(p)
            elif stat.S_ISREG(st.st_mode):
                extra = p.read_bytes()
            elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
                extra = st.st_rdev
            out[rel] = (stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, extra)
    return out


def rich_layers() -> list[bytes]:
    lower = (
        TarBuilder()
        .dir("etc", mode=0o755)
        .file("etc/keep", b"keep", uid=1234, gid=4321, mode=0o640)
        .file("etc/gone", b"gone")
        .dir("d")
        .file("d/old1", b"1")
        .dir("d/sub")
        .file("d/sub/old2", b"2")
        .dir("usr")
        .dir("usr/lib")
        .symlink("lib", "usr/lib")
        .file("usr/lib/base.so", b"base", mode=0o755)
        .file("setuid", b"#!", mode=0o4755)
        .dir("sgid", mode=0o2775, gid=50)
        .file("sgid/root-owned", b"f")  # 0:0 in the tar: must not inherit the directory's gid
        .file("group-writable", b"g", mode=0o664)
        .dir("ro-dir", mode=0o555)
        .file("ro-dir/inside", b"i", mode=0o400)
        .bytes()
    )
    upper = (
        TarBuilder()
        .file("etc/.wh.gone")
        .file("d/new", b"new")
        .file("d/.wh..wh..opq")  # after d/new in the stream: must not hide it
        .file("lib/added.so", b"through the in-root symlink")
        .hardlink("usr/lib/base-link.so", "usr/lib/base.so")  # to a lower layer's file
        .device("dev-null", 1, 3)
        .device("blk", 7, 0, char=False, mode=0o660)
        .fifo("pipe", mode=0o600)
        .file("x", b"x", pax_headers={"SCHILY.xattr.user.bock": "yes"}, mtime=1_234_567_890)
        .file("tmpdir-file", b"t", mode=0o1777)
        .bytes()
    )
    return [lower, upper]


@pytest.mark.parametrize("mode", MODES)
def test_layers_applied_correctly(tmp_path, mode):
    store = Store(tmp_path / "store")
    image(store, "rich:latest", *rich_layers())
    rootfs = store.rootfs("rich:latest", tmp_path / "rootfs", mode=mode)
    try:
        assert rootfs.mode == mode
        r = rootfs.path
        assert (r / "etc" / "keep").read_bytes() == b"keep"
        assert not (r / "etc" / "gone").exists() and not (r / "etc" / ".wh.gone").exists()
        assert sorted(os.listdir(r / "d")) == ["new"]
        assert (r / "usr" / "lib" / "added.so").read_bytes() == b"through the in-root symlink"
        assert (r / "lib").is_symlink()
        assert (r / "usr" / "lib" / "base-link.so").read_bytes() == b"base"
        st = (r / "etc" / "keep").stat()
        assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (1234, 4321, 0o640)
        assert stat.S_IMODE((r / "setuid").stat().st_mode) == 0o4755
        assert (r / "sgid" / "root-owned").stat().st_gid == 0
        assert stat.S_IMODE((r / "sgid").stat().st_mode) == 0o2775 and (r / "sgid").stat().st_gid == 50
        assert stat.S_IMODE((r / "group-writable").stat().st_mode) == 0o664
        assert stat.S_IMODE((r / "ro-dir").stat().st_mode) == 0o555
        dev = (r / "dev-null").lstat()
        assert stat.S_ISCHR(dev.st_mode) and os.major(dev.st_rdev) == 1 and os.minor(dev.st_rdev) == 3
        assert stat.S_ISBLK((r / "blk").lstat().st_mode)
        assert stat.S_ISFIFO((r / "pipe").lstat().st_mode)
        assert os.getxattr(r / "x", "user.bock") == b"yes"
        assert (r / "x").stat().st_mtime == 1_234_567_890
    finally:
        release_rootfs(rootfs.path)


def test_overlay_and_copy_agree_and_match_umoci(tmp_path):
    store = Store(tmp_path / "store")
    image(store, "rich:latest", *rich_layers())
    trees = {}
    for mode in MODES:
        rootfs = store.rootfs("rich:latest", tmp_path / f"rootfs-{mode}", mode=mode)
        try:
            trees[mode] = tree(rootfs.path)
        finally:
            release_rootfs(rootfs.path)
    assert trees["overlay"] == trees["copy"]
    subprocess.run(
        ["umoci", "unpack", "--image", f"{store.root}:rich:latest", str(tmp_path / "umoci")],
        check=True,
        capture_output=True,
    )
    oracle = tree(tmp_path / "umoci" / "rootfs")
    # hardlinked pairs: umoci keeps the link in the upper layer (same inode); so do we
    assert oracle == trees["copy"]


def test_snapshot_reused_and_gc_removes_it(tmp_path):
    store = Store(tmp_path / "store")
    image(store, "one:latest", TarBuilder().file("a", b"a").bytes())
    layer = store.layers("one:latest")[0]
    snap = store.snapshot(layer)
    inode = snap.stat().st_ino
    for i in range(2):
        r = store.rootfs("one:latest", tmp_path / f"r{i}", mode="overlay")
        (r.path / "written").write_text("upper only")
        release_rootfs(r.path)
    assert store.snapshot(layer).stat().st_ino == inode and not (snap / "written").exists()
    store.rm("one:latest")
    store.gc()
    assert not snap.exists()


def replacement_layers() -> list[bytes]:
    lower = (
        TarBuilder().file("f", b"old").symlink("s", "f").dir("d").file("d/x", b"x").file("keep", b"k").bytes()
    )
    upper = (
        TarBuilder()
        .dir("s")  # a directory replaces a symlink
        .file("s/inside", b"in")
        .file("d", b"now a file")  # a file replaces a directory
        .file("g", b"g")
        .hardlink("f", "g")  # a hard link replaces a file
        .symlink("keep", "g")  # a symlink replaces a file
        .file("twice", b"1")
        .file("twice", b"2")  # the same layer writes a path twice: the last one wins
        .bytes()
    )
    return [lower, upper]


@pytest.mark.parametrize("mode", MODES)
def test_entries_replace_what_is_there(tmp_path, mode):
    store = Store(tmp_path / "store")
    image(store, "rep:latest", *replacement_layers())
    rootfs = store.rootfs("rep:latest", tmp_path / "rootfs", mode=mode)
    try:
        r = rootfs.path
        assert (
            (r / "s").is_dir() and not (r / "s").is_symlink() and (r / "s" / "inside").read_bytes() == b"in"
        )
        assert (r / "d").is_file() and (r / "d").read_bytes() == b"now a file"
        assert (r / "f").read_bytes() == b"g" and (r / "f").stat().st_ino == (r / "g").stat().st_ino
        assert os.readlink(r / "keep") == "g"
        assert (r / "twice").read_bytes() == b"2"
    finally:
        release_rootfs(rootfs.path)
    subprocess.run(
        ["umoci", "unpack", "--image", f"{store.root}:rep:latest", str(tmp_path / "umoci")],
        check=True,
        capture_output=True,
    )
    copy = store.rootfs("rep:latest", tmp_path / "copy", mode="copy")
    try:
        assert tree(tmp_path / "umoci" / "rootfs") == tree(copy.path)
    finally:
        release_rootfs(copy.path)


def test_gc_keeps_snapshots_of_mounted_rootfs(tmp_path):
    store = Store(tmp_path / "store")
    image(store, "live:latest", TarBuilder().file("a", b"a").bytes())
    rootfs = store.rootfs("live:latest", tmp_path / "rootfs", mode="overlay")
    snap = store.snapshot(store.layers("live:latest")[0])
    try:
        store.rm("live:latest")
        store.gc()
        assert snap.is_dir() and (rootfs.path / "a").read_bytes() == b"a"
    finally:
        release_rootfs(rootfs.path)
    store.gc()
    assert not snap.exists()


def test_two_processes_unpack_the_same_layer_at_once(tmp_path):
    """Two bundles of one image made at the same time by two processes: both succeed, the layer is
    unpacked into one complete snapshot, and no temporary directory or lock is left."""
    store = Store(tmp_path / "store")
    tb = TarBuilder()
    for d in range(30):
        tb.dir(f"d{d}")
        for i in range(100):
            tb.file(f"d{d}/f{i}", f"{d}/{i}".encode() * 50)
    image(store, "many:latest", tb.bytes())
    bundles = [tmp_path / "b1", tmp_path / "b2"]
    procs = [
        spawn_cli(store.root, "-q", "bundle", "many:latest", str(b), stderr=subprocess.PIPE) for b in bundles
    ]
    try:
        errors = [p.communicate(timeout=120)[1] for p in procs]
        assert [p.returncode for p in procs] == [0, 0], errors
        snaps = sorted(os.listdir(store.root / ".bock" / "snapshots"))
        assert snaps == [f"sha256-{store.layers('many:latest')[0].digest[7:]}"]
        for b in bundles:
            files = sorted(str(p.relative_to(b / "rootfs")) for p in (b / "rootfs").rglob("f*"))
            assert len(files) == 3000
            assert (b / "rootfs" / "d29" / "f99").read_bytes() == b"29/99" * 50
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        for b in bundles:
            if b.exists():
                run_cli("unbundle", str(b), root=store.root, check=False)


def test_snapshots_directory_spreads_snapshots_over_block_groups(tmp_path):
    """.bock/snapshots carries the top-of-hierarchy flag (chattr +T) where the filesystem has it."""
    store = Store(tmp_path / "store")
    image(store, "one:latest", TarBuilder().file("a", b"a").bytes())
    snaps = store.root / ".bock" / "snapshots"
    probe = subprocess.run(["lsattr", "-d", str(snaps)], capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip(f"no inode flags on this filesystem: {probe.stderr.strip()}")
    assert "T" not in probe.stdout.split()[0]
    store.snapshot(store.layers("one:latest")[0])
    assert (
        "T" in subprocess.run(["lsattr", "-d", str(snaps)], capture_output=True, text=True).stdout.split()[0]
    )

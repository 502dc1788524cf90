"""Test helpers: a busybox-static rootfs tarball, running bock-build / bock-image as commands, and
running a built image with a real runtime (bock or runc) through `bock-image bundle`."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import uuid
from pathlib import Path

RUNC = "/usr/sbin/runc"


def unique(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def image_test_helpers():
    """bock-image's test helpers (busybox rootfs, docker-registry process), shared rather than copied."""
    import importlib.util

    path = Path(__file__).resolve().parents[2] / "image" / "tests" / "bock_image_testlib.py"
    spec = importlib.util.spec_from_file_location("bock_image_test_helpers", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def make_busybox_tarball(dest_dir: Path) -> Path:
    """busybox-static rootfs (users alice 1000 and nobody) as a tarball for `bock-image import`."""
    root = image_test_helpers().make_busybox_rootfs(dest_dir / "rootfs")
    with open(root / "etc" / "group", "a") as f:
        f.write("staff:x:50:\n")
    os.chown(root / "home" / "alice", 1000, 1000)
    out = dest_dir / "busybox.tar.gz"
    subprocess.run(["tar", "-C", str(root), "--numeric-owner", "-czf", str(out), "."], check=True)
    return out


def skopeo_json(*args: str) -> dict:
    res = subprocess.run(["skopeo", *args], capture_output=True, text=True)
    if res.returncode != 0:
        raise AssertionError(f"skopeo {' '.join(args)} failed: {res.stderr}")
    return json.loads(res.stdout)


def bock_image(store: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    res = subprocess.run(
        [sys.executable, "-m", "bock_image.cli", "--root", str(store), *args], capture_output=True, text=True
    )
    if check and res.returncode != 0:
        raise AssertionError(
            f"bock-image {' '.join(args)} failed ({res.returncode}):\n{res.stdout}\n{res.stderr}"
        )
    return res


def bock_build(*args: str, check: bool = True, env: dict | None = None) -> subprocess.CompletedProcess:
    full_env = {**os.environ, **(env or {})}
    res = subprocess.run(
        [sys.executable, "-m", "bock_build.cli", *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=300,
    )
    if check and res.returncode != 0:
        raise AssertionError(
            f"bock-build {' '.join(args)} failed ({res.returncode}):\n{res.stdout}\n{res.stderr}"
        )
    return res


def runtime_path(name: str) -> str:
    return RUNC if name == "runc" else (shutil.which("bock") or "bock")


def run_image(
    store: Path, ref: str, tmp: Path, *cmd: str, runtime: str = "bock"
) -> subprocess.CompletedProcess:
    """Bundle the image with `bock-image bundle` and run it to completion with a real runtime."""
    bundle = tmp / unique("bundle")
    args = ["bundle", ref, str(bundle)]
    if cmd:
        args += ["--", *cmd]
    bock_image(store, *args)
    spec = json.loads((bundle / "config.json").read_text())
    spec["linux"].pop("resources", None)
    (bundle / "config.json").write_text(json.dumps(spec))
    state = tmp / "runtime-state"
    cid = unique()
    try:
        return subprocess.run(
            [runtime_path(runtime), "--root", str(state), "run", "--bundle", str(bundle), cid],
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            timeout=60,
        )
    finally:
        subprocess.run(
            [runtime_path(runtime), "--root", str(state), "delete", "--force", cid], capture_output=True
        )
        bock_image(store, "unbundle", str(bundle), check=False)


def manifest_of(store: Path, ref: str) -> dict:
    return json.loads(bock_image(store, "--format", "json", "inspect", ref).stdout)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def layer_members(store: Path, digest: str) -> list[str]:
    import tarfile

    alg, _, hexpart = digest.partition(":")
    with tarfile.open(store / "blobs" / alg / hexpart) as tar:
        return tar.getnames()


def no_mounts_under(path: Path) -> bool:
    with open("/proc/self/mounts") as f:
        return not any(f" {path}" in line for line in f)


def config_of(store: Path, ref: str) -> dict:
    from bock_image import Store

    return Store(store).config(ref)

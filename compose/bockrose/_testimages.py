"""Busybox-based images for tests and benchmarks, made offline: Debian's static /bin/busybox with
its applets symlinked, imported into a bock-image store as a one-layer image."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile

BUSYBOX = "/bin/busybox"


def busybox_rootfs(dest: str) -> None:
    for d in (
        "bin",
        "sbin",
        "usr/bin",
        "usr/sbin",
        "etc",
        "tmp",
        "var/www",
        "data",
        "root",
        "proc",
        "sys",
        "dev",
    ):
        os.makedirs(os.path.join(dest, d), exist_ok=True)
    os.chmod(os.path.join(dest, "tmp"), 0o1777)
    shutil.copy2(BUSYBOX, os.path.join(dest, "bin/busybox"))
    applets = subprocess.run([BUSYBOX, "--list"], capture_output=True, text=True, check=True).stdout.split()
    for a in applets:
        p = os.path.join(dest, "bin", a)
        if not os.path.lexists(p):
            os.symlink("busybox", p)
    with open(os.path.join(dest, "etc/passwd"), "w") as f:
        f.write("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n")
    with open(os.path.join(dest, "etc/group"), "w") as f:
        f.write("root:x:0:\nnogroup:x:65534:\n")
    with open(os.path.join(dest, "var/www/index.html"), "w") as f:
        f.write("hello from busybox httpd\n")
    with open(os.path.join(dest, "data/seed.txt"), "w") as f:
        f.write("seeded by the image\n")


def import_busybox(image_root: str, ref: str = "busybox:latest", cmd: list[str] | None = None) -> str:
    """Import the busybox rootfs as `ref` into the store at image_root (idempotent)."""
    import bock_image

    store = bock_image.Store(image_root)
    try:
        store.resolve(ref)
        return ref
    except bock_image.ImageError:
        pass
    with tempfile.TemporaryDirectory(prefix="bockrose-bb-") as tmp:
        busybox_rootfs(tmp)
        bock_image.import_rootfs(
            store, tmp, ref, config={"Cmd": cmd or ["sh"], "Env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"]}
        )
    return ref

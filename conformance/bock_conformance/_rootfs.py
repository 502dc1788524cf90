"""Build busybox-static root filesystems for the bundles the cases use.

Only Debian's busybox-static is needed: /bin/busybox is copied into rootfs/bin and every applet from
``busybox --list`` becomes a relative symlink to it.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from pathlib import Path

from bock_conformance._errors import HostError

BUSYBOX = Path(os.environ.get("BOCK_CONFORMANCE_BUSYBOX", "/bin/busybox"))

PASSWD = """root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/:/bin/false
user:x:1000:1000:user:/home/user:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
"""
GROUP = """root:x:0:
daemon:x:1:
audio:x:29:user
user:x:1000:
nogroup:x:65534:
"""


@functools.cache
def applets() -> tuple[str, ...]:
    """The applet names of the host's busybox (cached per process)."""
    if not BUSYBOX.is_file():
        raise HostError(f"{BUSYBOX} not found: install Debian's busybox-static")
    out = subprocess.run([str(BUSYBOX), "--list"], capture_output=True, text=True, check=True).stdout
    names = tuple(n for n in out.split() if n and "/" not in n and n != "busybox")
    if "sh" not in names:
        raise HostError(f"{BUSYBOX} has no sh applet; is it busybox-static?")
    return names


def build_rootfs(dest: Path) -> Path:
    """Create a minimal busybox rootfs at *dest* (which must not exist yet) and return it."""
    dest.mkdir(parents=True)
    for d in ("bin", "dev", "etc", "proc", "sys", "tmp", "root", "mnt", "run", "home/user", "usr", "var/tmp"):
        (dest / d).mkdir(parents=True, exist_ok=True)
    os.chmod(dest / "tmp", 0o1777)
    shutil.copy2(BUSYBOX, dest / "bin" / "busybox")
    for name in applets():
        os.symlink("busybox", dest / "bin" / name)
    os.symlink("bin", dest / "sbin")
    os.symlink("../bin", dest / "usr" / "bin")
    os.symlink("../bin", dest / "usr" / "sbin")
    (dest / "etc" / "passwd").write_text(PASSWD)
    (dest / "etc" / "group").write_text(GROUP)
    (dest / "etc" / "hostname").write_text("rootfs\n")
    return dest

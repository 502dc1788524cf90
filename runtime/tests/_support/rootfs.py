"""A busybox-static root filesystem, built offline from Debian's /bin/busybox."""

from __future__ import annotations

import os
import shutil
import subprocess

BUSYBOX = "/bin/busybox"
USER_UID = 1000
USER_GID = 1000

PASSWD = (
    "root:x:0:0:root:/root:/bin/sh\n"
    f"user:x:{USER_UID}:{USER_GID}:user:/home/user:/bin/sh\n"
    "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
)
GROUP = f"root:x:0:\ntty:x:5:\nuser:x:{USER_GID}:\nextra:x:2000:user\nnogroup:x:65534:\n"


def busybox_applets() -> list[str]:
    out = subprocess.run([BUSYBOX, "--list"], capture_output=True, text=True, check=True).stdout
    return [a for a in out.split() if a and "/" not in a]


def build_template(dest: str) -> str:
    """Create a rootfs at ``dest``: /bin/busybox + applet symlinks, /etc/passwd and group."""
    if not os.path.exists(BUSYBOX):
        raise FileNotFoundError(f"{BUSYBOX} is missing: apt-get install busybox-static")
    for d in ("bin", "etc", "proc", "sys", "dev", "tmp", "root", "home/user", "var", "run"):
        os.makedirs(os.path.join(dest, d), exist_ok=True)
    os.chmod(dest, 0o755)  # mktemp made it 0700; a real / is 0755 (user namespaces need it)
    os.chmod(os.path.join(dest, "tmp"), 0o1777)
    shutil.copy2(BUSYBOX, os.path.join(dest, "bin", "busybox"))
    for applet in busybox_applets():
        link = os.path.join(dest, "bin", applet)
        if not os.path.lexists(link):
            os.symlink("busybox", link)
    # /usr/bin and /sbin point at /bin so that every PATH entry finds the applets
    for alias in ("sbin", "usr/bin", "usr/sbin"):
        path = os.path.join(dest, alias)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if not os.path.lexists(path):
            os.symlink("/bin", path)
    with open(os.path.join(dest, "etc", "passwd"), "w") as f:
        f.write(PASSWD)
    with open(os.path.join(dest, "etc", "group"), "w") as f:
        f.write(GROUP)
    os.chown(os.path.join(dest, "home", "user"), USER_UID, USER_GID)
    return dest


def copy_rootfs(template: str, dest: str) -> str:
    """A private copy of the template (symlinks kept; ~2 MB of data)."""
    shutil.copytree(template, dest, symlinks=True)
    return dest

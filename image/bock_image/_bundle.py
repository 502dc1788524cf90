"""Image -> runtime bundle: rootfs plus a config.json built by the image-spec conversion rules
on top of a runc-like default spec."""

from __future__ import annotations

import contextlib
import json
import os
import stat
from pathlib import Path
from typing import Any

import attrs

from ._fsutil import atomic_write
from ._models import Platform
from ._snapshots import Rootfs, make_rootfs, release_rootfs
from .errors import BundleError, StoreError

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# docker's and containerd's default capability set
DEFAULT_CAPS = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
]
MASKED_PATHS = [
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/sys/firmware",
    "/proc/scsi",
]
READONLY_PATHS = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
ANN = "org.opencontainers.image."
PTS_OPTS = ("nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5")


@attrs.frozen
class Bundle:
    path: Path
    rootfs: Rootfs
    spec: dict[str, Any]


def _mount(destination: str, fstype: str, source: str, *options: str) -> dict[str, Any]:
    out: dict[str, Any] = {"destination": destination, "type": fstype, "source": source}
    if options:
        out["options"] = list(options)
    return out


def default_spec() -> dict[str, Any]:
    """A runc-like default runtime spec (``runc spec`` with docker's default capabilities)."""
    return {
        "ociVersion": "1.0.2",
        "process": {
            "terminal": False,
            "user": {"uid": 0, "gid": 0},
            "args": ["sh"],
            "env": [f"PATH={DEFAULT_PATH}"],
            "cwd": "/",
            "capabilities": {k: list(DEFAULT_CAPS) for k in ("bounding", "effective", "permitted")},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": True,
        },
        "root": {"path": "rootfs", "readonly": False},
        "hostname": "bock",
        "mounts": [
            _mount("/proc", "proc", "proc"),
            _mount("/dev", "tmpfs", "tmpfs", "nosuid", "strictatime", "mode=755", "size=65536k"),
            _mount("/dev/pts", "devpts", "devpts", *PTS_OPTS),
            _mount("/dev/shm", "tmpfs", "shm", "nosuid", "noexec", "nodev", "mode=1777", "size=65536k"),
            _mount("/dev/mqueue", "mqueue", "mqueue", "nosuid", "noexec", "nodev"),
            _mount("/sys", "sysfs", "sysfs", "nosuid", "noexec", "nodev", "ro"),
            _mount("/sys/fs/cgroup", "cgroup", "cgroup", "nosuid", "noexec", "nodev", "relatime", "ro"),
        ],
        "linux": {
            "resources": {"devices": [{"allow": False, "access": "rwm"}]},
            "namespaces": [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount", "cgroup")],
            "maskedPaths": list(MASKED_PATHS),
            "readonlyPaths": list(READONLY_PATHS),
        },
    }


# -- reading files of the image safely --------------------------------------------------------
def read_in_root(root: str | os.PathLike, rel: str, limit: int = 1 << 22) -> bytes | None:
    """Read a file of a rootfs, resolving symlinks *inside* root (absolute targets are re-rooted,
    ``..`` stops at root), never following the final component out. None when missing."""
    root = os.path.abspath(root)
    todo = [p for p in rel.split("/") if p not in ("", ".")]
    done: list[str] = []
    hops = 0
    while todo:
        c = todo.pop(0)
        if c == "..":
            if done:
                done.pop()
            continue
        p = os.path.join(root, *done, c)
        try:
            st = os.lstat(p)
        except (FileNotFoundError, NotADirectoryError):
            return None
        if stat.S_ISLNK(st.st_mode):
            hops += 1
            if hops > 40:
                return None
            target = os.readlink(p)
            if target.startswith("/"):
                done = []
            todo = [t for t in target.split("/") if t not in ("", ".")] + todo
            continue
        done.append(c)
    path = os.path.join(root, *done)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return None
    with open(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        return f.read(limit)


def _parse_db(data: bytes | None, fields: int) -> list[list[str]]:
    out = []
    for line in (data or b"").decode("utf-8", "replace").splitlines():
        if not line or line.startswith("#"):
            continue
        parts = line.split(":")
        if len(parts) >= fields:
            out.append(parts)
    return out


def resolve_user(rootfs: str | os.PathLike, spec_user: str) -> tuple[int, int, list[int], str | None]:
    """Config.User -> (uid, gid, additional gids, home) through the image's /etc/passwd and /etc/group."""
    spec_user = (spec_user or "").strip()
    if not spec_user:
        spec_user = "0"
    user, _, group = spec_user.partition(":")
    passwd = _parse_db(read_in_root(rootfs, "/etc/passwd"), 7)
    groups = _parse_db(read_in_root(rootfs, "/etc/group"), 4)
    entry = None
    if user.isdigit():
        uid = int(user)
        entry = next((p for p in passwd if p[2] == user), None)
        gid = int(entry[3]) if entry and entry[3].isdigit() else 0
    else:
        entry = next((p for p in passwd if p[0] == user), None)
        if entry is None:
            raise BundleError(f"unable to find user {user}: no matching entries in passwd file")
        uid, gid = int(entry[2]), int(entry[3])
    additional: list[int] = []
    if group:
        if group.isdigit():
            gid = int(group)
        else:
            g = next((g for g in groups if g[0] == group), None)
            if g is None:
                raise BundleError(f"unable to find group {group}: no matching entries in group file")
            gid = int(g[2])
    elif entry is not None:
        name = entry[0]
        additional = sorted({int(g[2]) for g in groups if name in g[3].split(",") and g[2].isdigit()} - {gid})
    home = entry[5] if entry is not None else None
    return uid, gid, additional, home


# -- conversion --------------------------------------------------------------------------------
def runtime_spec(
    image_config: dict[str, Any],
    rootfs: str | os.PathLike,
    *,
    args: list[str] | None = None,
    entrypoint: list[str] | None = None,
    env: list[str] | None = None,
    user: str | None = None,
    cwd: str | None = None,
    terminal: bool = False,
    hostname: str | None = None,
) -> dict[str, Any]:
    """config.json for an image config (image-spec conversion.md), rootfs used to resolve the user."""
    cfg = image_config.get("config") or {}
    spec = default_spec()
    proc = spec["process"]
    ep = list(entrypoint) if entrypoint is not None else list(cfg.get("Entrypoint") or [])
    if args is not None:
        cmd = list(args)
    elif entrypoint is not None:
        cmd = []  # docker: overriding the entrypoint resets Cmd
    else:
        cmd = list(cfg.get("Cmd") or [])
    # An image with neither (e.g. from `import`) keeps the default spec's `sh`, as umoci does.
    proc["args"] = (ep + cmd) or proc["args"]
    proc["terminal"] = terminal
    uid, gid, extra, home = resolve_user(rootfs, user if user is not None else cfg.get("User", ""))
    proc["user"] = {"uid": uid, "gid": gid}
    if extra:
        proc["user"]["additionalGids"] = extra
    envs = list(cfg.get("Env") or [])
    for e in env or []:
        key = e.split("=", 1)[0]
        envs = [x for x in envs if x.split("=", 1)[0] != key] + [e]
    names = {e.split("=", 1)[0] for e in envs}
    if "PATH" not in names:
        envs.insert(0, f"PATH={DEFAULT_PATH}")
    if "HOME" not in names:
        envs.append(f"HOME={home or '/'}")
    if terminal and "TERM" not in names:
        envs.append("TERM=xterm")
    proc["env"] = envs
    proc["cwd"] = cwd or cfg.get("WorkingDir") or "/"
    if not proc["cwd"].startswith("/"):
        raise BundleError(f"working directory {proc['cwd']!r} is not absolute")
    if hostname:
        spec["hostname"] = hostname
    annotations: dict[str, str] = {}
    for key, field in (
        ("os", "os"),
        ("architecture", "architecture"),
        ("variant", "variant"),
        ("os.version", "os.version"),
        ("author", "author"),
        ("created", "created"),
    ):
        if image_config.get(field):
            annotations[ANN + key] = str(image_config[field])
    if image_config.get("os.features"):
        annotations[ANN + "os.features"] = ",".join(image_config["os.features"])
    if cfg.get("ExposedPorts"):
        annotations[ANN + "exposedPorts"] = ",".join(sorted(cfg["ExposedPorts"]))
    if cfg.get("Volumes"):
        annotations[ANN + "volumes"] = ",".join(sorted(cfg["Volumes"]))
    if cfg.get("StopSignal"):
        annotations[ANN + "stopSignal"] = str(cfg["StopSignal"])
    annotations.update({str(k): str(v) for k, v in (cfg.get("Labels") or {}).items()})
    if annotations:
        spec["annotations"] = annotations
    return spec


def bundle(
    store,
    ref: str,
    directory: str | os.PathLike,
    *,
    rootfs_mode: str = "auto",
    platform: Platform | None = None,
    **overrides: Any,
) -> Bundle:
    """Write a runtime bundle for ``ref`` at ``directory``: ``rootfs/`` and ``config.json``.
    Overrides (args, entrypoint, env, user, cwd, terminal, hostname) as in runtime_spec()."""
    directory = Path(directory).absolute()
    if directory.exists() and any(directory.iterdir()):
        raise StoreError(f"bundle directory {directory} is not empty")
    config = store.config(ref, platform)
    created = not directory.exists()
    directory.mkdir(parents=True, exist_ok=True)
    try:
        rootfs = make_rootfs(store, ref, directory / "rootfs", mode=rootfs_mode, platform=platform)
        try:
            spec = runtime_spec(config, rootfs.path, **overrides)
            atomic_write(directory / "config.json", json.dumps(spec, indent=2).encode() + b"\n")
        except BaseException:
            release_rootfs(rootfs.path)
            raise
    except BaseException:
        if created:
            with contextlib.suppress(OSError):
                directory.rmdir()
        raise
    return Bundle(directory, rootfs, spec)


def remove_bundle(directory: str | os.PathLike) -> None:
    """Unmount the bundle's rootfs (when an overlay) and delete the bundle directory."""
    from ._fsutil import remove_tree

    directory = Path(directory).absolute()
    release_rootfs(directory / "rootfs")
    remove_tree(directory)

"""A container's state on disk (``<root>/<id>/state.json``) and its live status.

The status is derived the way runc derives it: the init process alive (same pid and
the same start time as recorded) and ``exec.fifo`` still present → ``created``;
alive without the fifo → ``running`` (``paused`` when the cgroup is frozen);
otherwise ``stopped``.
"""

from __future__ import annotations

import os

from bock import _jsonlite
from bock.errors import ContainerNotExist, DamagedState, InvalidID

STATE_FILE = "state.json"
FIFO = "exec.fifo"
DEFAULT_ROOT = "/run/bock"

PAUSED_CREATED = "paused-while-created"
# Compiled seccomp programs shared by the root's create and exec calls (podman's default
# profile: about 15 ms of libseccomp otherwise). "@" cannot appear in a container id.
SECCOMP_CACHE = "@seccomp-cache"
_STATE_KEYS = frozenset(["pid", "start_time", "bundle", "rootfs", "created", "config", "ociVersion"])
_ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_+.-")


def validate_id(cid: str) -> None:
    """runc's rule: [A-Za-z0-9_+.-]+, and not "." or ".."."""
    if not cid or cid in (".", "..") or not _ID_CHARS.issuperset(cid) or len(cid) > 1024:
        raise InvalidID(cid)


def proc_start_time(pid: int) -> int | None:
    """Field 22 of /proc/<pid>/stat (start time in clock ticks), or None if gone or a zombie."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    rest = data[data.rfind(b")") + 2 :].split()
    if rest[0] in (b"Z", b"X"):
        return None
    return int(rest[19])


class Container:
    """What ``create`` recorded about one container, plus helpers to judge it now."""

    __slots__ = ("data", "dir", "id", "root")

    def __init__(self, root: str, cid: str, data: dict) -> None:
        self.root = root
        self.id = cid
        self.dir = os.path.join(root, cid)
        self.data = data

    @classmethod
    def load(cls, root: str, cid: str) -> Container:
        validate_id(cid)
        try:
            with open(os.path.join(root, cid, STATE_FILE), "rb") as f:
                data = _jsonlite.loads(f.read())
        except (FileNotFoundError, NotADirectoryError):
            raise ContainerNotExist(cid) from None
        except _jsonlite.JSONError as err:
            raise DamagedState(f"container {cid}: state.json is damaged: {err}") from None
        if not isinstance(data, dict) or not _STATE_KEYS.issubset(data):
            raise DamagedState(f"container {cid}: state.json is damaged: fields are missing")
        return cls(root, cid, data)

    def save(self) -> None:
        path = os.path.join(self.dir, STATE_FILE)
        tmp = path + ".tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, _jsonlite.dumps(self.data).encode())
        finally:
            os.close(fd)
        os.rename(tmp, path)

    @property
    def pid(self) -> int:
        return self.data["pid"]

    @property
    def config(self) -> dict:
        return self.data["config"]

    def init_alive(self) -> bool:
        return proc_start_time(self.pid) == self.data["start_time"]

    def status(self) -> str:
        if not self.init_alive():
            return "stopped"
        if os.path.exists(os.path.join(self.dir, FIFO)):
            # runc reports a frozen created container as paused; the marker that pause leaves
            # spares every other created-state call the cgroup look-up.
            if os.path.exists(os.path.join(self.dir, PAUSED_CREATED)) and self.cgroup_frozen():
                return "paused"
            return "created"
        if self.cgroup_frozen():
            return "paused"
        return "running"

    def cgroup_frozen(self) -> bool:
        cg = self.data.get("cgroup")
        if not cg:
            return False
        from bock._cgroups import CgroupManager  # only for a live container

        return CgroupManager.from_state(cg).is_frozen()

    def oci_state(self, status: str | None = None) -> dict:
        """The state document runc prints (``ociVersion`` from config.json)."""
        status = status or self.status()
        return {
            "ociVersion": self.data["ociVersion"],
            "id": self.id,
            "pid": 0 if status == "stopped" else self.pid,
            "status": status,
            "bundle": self.data["bundle"],
            "rootfs": self.data["rootfs"],
            "created": self.data["created"],
            "annotations": self.config.get("annotations") or {},
            "owner": self.data.get("owner", ""),
        }


def list_ids(root: str) -> list[str]:
    try:
        names = os.listdir(root)
    except FileNotFoundError:
        return []
    return sorted(n for n in names if os.path.exists(os.path.join(root, n, STATE_FILE)))


def rfc3339_now() -> str:
    """UTC time with nanoseconds, like Go's time.Time JSON encoding."""
    import time

    ns = time.time_ns()
    secs, frac = divmod(ns, 1_000_000_000)
    t = time.gmtime(secs)
    return "%04d-%02d-%02dT%02d:%02d:%02d.%09dZ" % (*t[:6], frac)

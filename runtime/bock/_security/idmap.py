"""User-namespace id maps, idmapped mounts and time-namespace offsets.

* :func:`validate` (parent, before fork) applies runc's rules and wording to
  ``linux.uidMappings``/``gidMappings``, ``linux.timeOffsets`` and the mounts'
  ``uidMappings``/``gidMappings``.
* :func:`write_id_maps` is what the parent does once the child has unshared its user
  namespace: write /proc/<pid>/uid_map, "deny" to setgroups when asked, gid_map.
* :func:`make_userns_fd` + :func:`idmap_mount_fd` + :func:`move_mount` make an
  idmapped bind mount (open_tree(OPEN_TREE_CLONE), mount_setattr(MOUNT_ATTR_IDMAP),
  move_mount) -- the kernel needs a user namespace fd carrying the mapping.
* :func:`write_time_offsets` writes /proc/<pid>/timens_offsets. It describes the
  time namespace of that process's *children* (``time_for_children``): write it after
  unshare(CLONE_NEWTIME) and before the first process is forked into the namespace;
  afterwards the kernel answers EACCES.
"""

from __future__ import annotations

import ctypes
import itertools
import os

from bock._libc import syscall
from bock.errors import ConfigError, SystemError_

CLONE_NEWUSER = 0x10000000
CLONE_NEWTIME = 0x00000080
MAX_MAP_LINES = 340  # the kernel's limit since 4.15

_AT_FDCWD = -100
_AT_EMPTY_PATH = 0x1000
_AT_RECURSIVE = 0x8000
_OPEN_TREE_CLONE = 1
_OPEN_TREE_CLOEXEC = os.O_CLOEXEC
_MOVE_MOUNT_F_EMPTY_PATH = 0x4
_MOVE_MOUNT_T_EMPTY_PATH = 0x40
MOUNT_ATTR_IDMAP = 0x00100000

_PR_GET_DUMPABLE = 3
_PR_SET_DUMPABLE = 4

TIME_CLOCKS = ("monotonic", "boottime")


class MountAttr(ctypes.Structure):
    _fields_ = [
        ("attr_set", ctypes.c_uint64),
        ("attr_clr", ctypes.c_uint64),
        ("propagation", ctypes.c_uint64),
        ("userns_fd", ctypes.c_uint64),
    ]


# --------------------------------------------------------------------------- validation


def validate(linux: object, mounts: list | None = None) -> list[str]:
    """Raise ConfigError as runc would; return warnings (joining a userns *and* giving maps)."""
    warnings: list[str] = []
    userns = linux.namespace("user")
    if userns is None:
        if linux.uid_mappings or linux.gid_mappings:
            # runc 1.1 silently drops these; its validator (and bock) refuses them.
            raise ConfigError(
                "user namespace mappings specified, but user namespace isn't enabled in the config"
            )
    elif not userns.path:
        if not os.path.exists("/proc/self/ns/user"):
            raise ConfigError("USER namespaces aren't enabled in the kernel")
        if not linux.uid_mappings:
            raise ConfigError("User namespaces enabled, but no uid mappings found.")
        if not linux.gid_mappings:
            raise ConfigError("User namespaces enabled, but no gid mappings found.")
        check_mappings(linux.uid_mappings, "uid")
        check_mappings(linux.gid_mappings, "gid")
        if host_id(linux.uid_mappings, 0) is None:
            raise ConfigError("User namespaces enabled, but no user mapping found.")
        if host_id(linux.gid_mappings, 0) is None:
            raise ConfigError("User namespaces enabled, but no group mapping found.")
    elif linux.uid_mappings or linux.gid_mappings:
        warnings.append(
            "config.json has both a userns path to join and a userns mapping specified"
            " -- you may only provide one"
        )

    timens = linux.namespace("time")
    if timens is None:
        if linux.time_offsets:
            raise ConfigError(
                "time namespace offsets specified, but time namespace isn't enabled in the config"
            )
    else:
        if not os.path.exists("/proc/self/timens_offsets"):
            raise ConfigError("time namespaces aren't enabled in the kernel")
        if timens.path and linux.time_offsets:
            raise ConfigError(
                "time namespace enabled, but both namespace path and time offsets specified -- "
                "you may only provide one"
            )
        for clock, off in linux.time_offsets.items():
            if clock not in TIME_CLOCKS:
                raise ConfigError(
                    f"invalid time offset clock {clock!r}: must be one of {', '.join(TIME_CLOCKS)}"
                )
            if not 0 <= off.nanosecs < 1_000_000_000:
                raise ConfigError(f"invalid time offset for {clock}: nanosecs must be in [0, 999999999]")

    for m in mounts or ():
        maps = mount_mappings(m, linux)
        if maps is None:
            continue
        where = f"invalid mount {m.destination}"
        if not _is_bind(m):
            raise ConfigError(f"{where}: id-mapped mounts are only supported for bind-mounts")
        uids, gids, _, _ = maps
        if not uids or not gids:
            raise ConfigError(f"{where}: id-mapped mounts must have both uid and gid mappings specified")
        check_mappings(uids, "uid", where=where)
        check_mappings(gids, "gid", where=where)
    return warnings


validate_mappings = validate  # the name the brief uses


def check_mappings(maps: list, kind: str, *, where: str = "") -> None:
    """What the kernel would refuse with a bare EINVAL: empty ranges, overlaps, too many lines."""
    prefix = f"{where}: " if where else ""
    if len(maps) > MAX_MAP_LINES:
        raise ConfigError(
            f"{prefix}too many {kind} mappings: {len(maps)} (the kernel allows {MAX_MAP_LINES})"
        )
    for m in maps:
        if m.size <= 0:
            raise ConfigError(f"{prefix}invalid {kind} mapping {_fmt(m)}: size must be > 0")
        if (
            m.container_id < 0
            or m.host_id < 0
            or m.container_id + m.size > 1 << 32
            or m.host_id + m.size > 1 << 32
        ):
            raise ConfigError(f"{prefix}invalid {kind} mapping {_fmt(m)}: out of the 32-bit id range")
    for side in ("container_id", "host_id"):
        ranges = sorted((getattr(m, side), getattr(m, side) + m.size, m) for m in maps)
        for (_, end, a), (start, _, b) in itertools.pairwise(ranges):
            if start < end:
                raise ConfigError(f"{prefix}overlapping {kind} mappings {_fmt(a)} and {_fmt(b)}")


def _fmt(m: object) -> str:
    return f"{m.container_id}:{m.host_id}:{m.size}"


def host_id(maps: list, container_id: int) -> int | None:
    """The host id that ``container_id`` maps to, or None if unmapped."""
    for m in maps:
        if m.container_id <= container_id < m.container_id + m.size:
            return m.host_id + container_id - m.container_id
    return None


def map_text(maps: list) -> bytes:
    """The /proc/<pid>/{uid,gid}_map text for ``maps`` (one write, as the kernel requires)."""
    return "".join(f"{m.container_id} {m.host_id} {m.size}\n" for m in maps).encode()


# --------------------------------------------------------------------------- id maps


def _write_proc(path: str, data: bytes, what: str) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
        try:
            if os.write(fd, data) != len(data):
                raise OSError(22, "short write")
        finally:
            os.close(fd)
    except OSError as exc:
        raise SystemError_(
            f"failed to write {what}: write {path}: {os.strerror(exc.errno).lower()}"
        ) from None


def write_id_maps(
    pid: int | str, uid_mappings: list, gid_mappings: list, *, deny_setgroups: bool = False
) -> None:
    """Write the uid map, ``deny`` to setgroups if asked (needed when the writer lacks
    CAP_SETGID over the parent namespace), then the gid map of process ``pid``."""
    if uid_mappings:
        _write_proc(f"/proc/{pid}/uid_map", map_text(uid_mappings), "uid_map")
    if deny_setgroups:
        _write_proc(f"/proc/{pid}/setgroups", b"deny", "setgroups")
    if gid_mappings:
        _write_proc(f"/proc/{pid}/gid_map", map_text(gid_mappings), "gid_map")


def make_userns_fd(uid_mappings: list, gid_mappings: list) -> int:
    """A user namespace fd carrying these maps (for MOUNT_ATTR_IDMAP).

    A forked child unshares CLONE_NEWUSER and waits; the parent writes its maps, opens
    /proc/<child>/ns/user and lets it exit. The namespace lives on through the fd.
    """
    from bock._libc import libc

    ready_r, ready_w = os.pipe2(os.O_CLOEXEC)
    go_r, go_w = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid == 0:  # child: no Python-level cleanup, no exceptions escaping
        code = 0
        try:
            os.close(ready_r)
            os.close(go_w)
            code = 0 if libc.unshare(CLONE_NEWUSER) == 0 else 1
            os.write(ready_w, b"0" if code == 0 else b"1")
            os.read(go_r, 1)
        finally:
            os._exit(code)
    os.close(ready_w)
    os.close(go_r)
    try:
        if os.read(ready_r, 1) != b"0":
            raise SystemError_("unable to create a user namespace for an idmapped mount: unshare failed")
        write_id_maps(pid, uid_mappings, gid_mappings)
        try:
            return os.open(f"/proc/{pid}/ns/user", os.O_RDONLY | os.O_CLOEXEC)
        except OSError as exc:
            raise SystemError_(f"unable to open the user namespace of pid {pid}: {exc.strerror}") from None
    finally:
        os.close(ready_r)
        os.close(go_w)
        os.waitpid(pid, 0)


# --------------------------------------------------------------------------- idmapped mounts


def idmap_mount_fd(source: str, userns_fd: int, recursive: bool = False, *, rbind: bool | None = None) -> int:
    """A detached clone of the mount at ``source`` (with its submounts if ``rbind``, which
    defaults to ``recursive``), idmapped through ``userns_fd`` (submounts too if ``recursive``).

    Attach it with :func:`move_mount`; closing the fd unmounts a clone never attached.
    """
    rbind = recursive if rbind is None else rbind
    flags = _OPEN_TREE_CLONE | _OPEN_TREE_CLOEXEC | (_AT_RECURSIVE if rbind else 0)
    try:
        fd = syscall("open_tree", _AT_FDCWD, os.fsencode(source), flags)
    except OSError as exc:
        raise SystemError_(f"failed to clone mount tree {source}: open_tree: {_err(exc)}") from None
    attr = MountAttr(MOUNT_ATTR_IDMAP, 0, 0, userns_fd)
    try:
        syscall(
            "mount_setattr",
            fd,
            b"",
            _AT_EMPTY_PATH | (_AT_RECURSIVE if recursive else 0),
            ctypes.byref(attr),
            ctypes.sizeof(attr),
        )
    except OSError as exc:
        os.close(fd)
        raise SystemError_(
            f"failed to set MOUNT_ATTR_IDMAP on {source}: mount_setattr: {_err(exc)}"
        ) from None
    return fd


def move_mount(fd: int, target: str = "", *, target_fd: int | None = None) -> None:
    """Attach the detached mount ``fd`` at ``target``, or onto the O_PATH fd ``target_fd``."""
    flags = _MOVE_MOUNT_F_EMPTY_PATH
    dirfd = _AT_FDCWD
    if target_fd is not None:
        flags |= _MOVE_MOUNT_T_EMPTY_PATH
        dirfd = target_fd
    try:
        syscall("move_mount", fd, b"", dirfd, os.fsencode(target), flags)
    except OSError as exc:
        raise SystemError_(f"failed to move mount to {target or 'fd'}: move_mount: {_err(exc)}") from None


def idmapped_bind(
    source: str, target: str, uid_mappings: list, gid_mappings: list, recursive: bool = False
) -> None:
    """Bind ``source`` at ``target`` with these id mappings (a whole idmapped mount in one call)."""
    userns_fd = make_userns_fd(uid_mappings, gid_mappings)
    try:
        fd = idmap_mount_fd(source, userns_fd, recursive)
    finally:
        os.close(userns_fd)
    try:
        move_mount(fd, target)
    finally:
        os.close(fd)


def mount_mappings(m: object, linux: object) -> tuple[list, list, bool, bool] | None:
    """(uid maps, gid maps, rbind, recursive idmap) of an idmapped mount; None if it is not one.

    Explicit ``uidMappings``/``gidMappings`` win; the ``idmap``/``ridmap`` options alone
    take the container's user-namespace mappings (runc's specconv). ``ridmap`` idmaps
    the submounts too.
    """
    idmap_opt = "idmap" in m.options
    ridmap_opt = "ridmap" in m.options
    if not (m.uid_mappings or m.gid_mappings or idmap_opt or ridmap_opt):
        return None
    uids = m.uid_mappings or (linux.uid_mappings if not m.gid_mappings else [])
    gids = m.gid_mappings or (linux.gid_mappings if not m.uid_mappings else [])
    return uids, gids, "rbind" in m.options or ridmap_opt, ridmap_opt


def _is_bind(m: object) -> bool:
    return m.type == "bind" or "bind" in m.options or "rbind" in m.options


def prepare_mounts(mounts: list, linux: object, bundle: str) -> dict[int, int]:
    """Make the detached idmapped mounts, in the runtime's (host) namespaces, before fork.

    Returns {index in ``mounts``: mount fd}; the init attaches each with :func:`move_mount`
    (the kernel lets a process attach a detached mount in a mount namespace it owns).
    Done here because inside a new user namespace the init has no privilege over the
    host filesystem that mount_setattr(MOUNT_ATTR_IDMAP) needs.
    """
    out: dict[int, int] = {}
    userns_fds: dict[bytes, int] = {}
    try:
        for i, m in enumerate(mounts):
            spec = mount_mappings(m, linux)
            if spec is None:
                continue
            uids, gids, rbind, recursive = spec
            key = map_text(uids) + b"|" + map_text(gids)
            if key not in userns_fds:
                userns_fds[key] = make_userns_fd(uids, gids)
            source = m.source or ""
            if not source.startswith("/"):
                source = os.path.join(bundle, source)
            out[i] = idmap_mount_fd(source, userns_fds[key], recursive, rbind=rbind)
    except BaseException:
        for fd in out.values():
            os.close(fd)
        raise
    finally:
        for fd in userns_fds.values():
            os.close(fd)
    return out


def _err(exc: OSError) -> str:
    return os.strerror(exc.errno).lower() if exc.errno else str(exc)


# --------------------------------------------------------------------------- time namespaces


def time_offsets_text(offsets: dict) -> bytes:
    return "".join(f"{clock} {off.secs} {off.nanosecs}\n" for clock, off in offsets.items()).encode()


def write_time_offsets(pid: int | str, offsets: dict) -> None:
    """Write ``offsets`` ({clock: TimeOffset}) to /proc/<pid>/timens_offsets.

    Must follow unshare(CLONE_NEWTIME) by ``pid`` and precede the first fork into it.
    Writing our own file after a uid change (a process that became root of a new user
    namespace) needs the process dumpable: otherwise /proc/self/* belongs to the host's
    root and the kernel answers EACCES. Dumpability is restored afterwards.
    """
    if not offsets:
        return
    text = time_offsets_text(offsets)
    if pid != "self":
        _write_proc(f"/proc/{pid}/timens_offsets", text, "timens_offsets")
        return
    from bock._libc import libc

    dumpable = libc.prctl(_PR_GET_DUMPABLE, 0, 0, 0, 0)
    if dumpable != 1:
        libc.prctl(_PR_SET_DUMPABLE, 1, 0, 0, 0)
    try:
        _write_proc("/proc/self/timens_offsets", text, "timens_offsets")
    finally:
        if dumpable != 1:
            libc.prctl(_PR_SET_DUMPABLE, max(dumpable, 0), 0, 0, 0)

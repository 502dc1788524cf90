"""The container's filesystem: rootfs bind, mounts in order, /dev, pivot_root, masks.

Follows runc's ``prepareRootfs`` / ``finalizeRootfs``. Every destination is resolved
inside the rootfs (:mod:`bock._pathsafe`) and mounted through an O_PATH descriptor
(``/proc/self/fd/N``), so neither a symlink nor ``..`` nor a swapped path can lead out.
All calls with host-wide effects go through the ``sys`` seam.
"""

from __future__ import annotations

import os
import stat

from bock import _syscalls as s
from bock._init import mountopts
from bock._pathsafe import mkdir_all_in_root, open_in_root, resolve_in_root
from bock._spec.config import Device, Mount, Spec
from bock.errors import ConfigError

DEFAULT_DEVICES = (
    # path, major, minor
    ("/dev/null", 1, 3),
    ("/dev/zero", 1, 5),
    ("/dev/full", 1, 7),
    ("/dev/random", 1, 8),
    ("/dev/urandom", 1, 9),
    ("/dev/tty", 5, 0),
)
DEV_SYMLINKS = (
    ("/proc/self/fd", "/dev/fd"),
    ("/proc/self/fd/0", "/dev/stdin"),
    ("/proc/self/fd/1", "/dev/stdout"),
    ("/proc/self/fd/2", "/dev/stderr"),
)


class RootfsError(ConfigError):
    pass


def _mount_at(sys: s.LinuxSyscalls, rootfs: str, dest: str, source, fstype, flags: int, data) -> None:
    """Mount onto ``dest`` (already resolved inside rootfs) through an O_PATH fd."""
    fd = open_in_root(rootfs, dest)
    try:
        sys.mount(source, f"/proc/self/fd/{fd}", fstype, flags, data)
    except OSError as err:  # name the container's destination, not /proc/self/fd/N (as runc)
        where = dest[len(rootfs.rstrip("/")) :] or "/"
        raise OSError(
            err.errno, f'error mounting "{source or "none"}" to rootfs at "{where}": {os.strerror(err.errno)}'
        )
    finally:
        os.close(fd)


def _attach_at(rootfs: str, dest: str, mount_fd: int) -> None:
    """move_mount a detached (idmapped) mount onto ``dest`` through an O_PATH fd."""
    from bock._security.idmap import move_mount

    fd = open_in_root(rootfs, dest)
    try:
        move_mount(mount_fd, target_fd=fd)
    finally:
        os.close(fd)
        os.close(mount_fd)


def _create_mountpoint(rootfs: str, dest: str, source_is_dir: bool) -> str:
    """Create the mount point for ``dest`` inside rootfs: a directory, or an empty file."""
    if source_is_dir:
        return mkdir_all_in_root(rootfs, dest)
    path = resolve_in_root(rootfs, dest)
    mkdir_all_in_root(rootfs, os.path.dirname(path)[len(rootfs) :] or "/")
    if not os.path.lexists(path):
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC | os.O_NOFOLLOW, 0o755))
    return path


def prepare_root(sys: s.LinuxSyscalls, spec: Spec, rootfs: str) -> None:
    """Make / slave (or the configured propagation) and bind the rootfs onto itself.

    An unbindable / could not be bound: it starts private and becomes unbindable after
    pivot_root (runc 1.1-1.5 fail here with EINVAL; the spec asks for the propagation)."""
    flags = mountopts.parse_propagation(spec.linux.rootfs_propagation)
    if flags & s.MS_UNBINDABLE:
        flags = s.MS_PRIVATE | (flags & s.MS_REC)
    sys.mount(None, "/", None, flags, None)
    _make_parent_private(sys, rootfs)
    sys.mount(rootfs, rootfs, "bind", s.MS_BIND | s.MS_REC, None)


def _make_parent_private(sys: s.LinuxSyscalls, rootfs: str) -> None:
    """pivot_root refuses a new root whose parent mount is shared (rootfsPropagation: shared)."""
    best = ""
    shared = False
    try:
        with open("/proc/self/mountinfo") as f:
            for line in f:
                fields = line.split()
                point = fields[4].replace("\\040", " ")
                if (rootfs == point or rootfs.startswith(point.rstrip("/") + "/")) and len(point) >= len(
                    best
                ):
                    best = point
                    shared = any(x.startswith("shared:") for x in fields[6 : fields.index("-")])
    except OSError:
        return
    if best and shared:
        sys.mount(None, best, None, s.MS_PRIVATE, None)


def mount_all(
    sys: s.LinuxSyscalls, spec: Spec, rootfs: str, bundle: str, cgroup_mount, mount_fds: dict | None = None
) -> None:
    """``mount_fds``: {index in spec.mounts: detached idmapped mount} made by the parent."""
    for i, m in enumerate(spec.mounts):
        mount_one(sys, m, rootfs, bundle, cgroup_mount, (mount_fds or {}).get(i))


def mount_one(
    sys: s.LinuxSyscalls, m: Mount, rootfs: str, bundle: str, cgroup_mount=None, mount_fd: int | None = None
) -> None:
    opts = mountopts.parse(m.options)
    if mount_fd is None and (opts.extensions & {"idmap", "ridmap"} or m.uid_mappings or m.gid_mappings):
        raise RootfsError(f"mount {m.destination}: idmapped mount was not prepared")
    dest_in = m.destination
    if not dest_in.startswith("/"):
        dest_in = "/" + dest_in  # runc: relative destinations are relative to the rootfs
    fstype = m.type or ""
    is_bind = bool(opts.flags & s.MS_BIND) or fstype == "bind"
    if is_bind:
        source = m.source or ""
        if not source.startswith("/"):
            source = os.path.join(bundle, source)
        try:
            st = os.stat(source)
        except FileNotFoundError:
            raise RootfsError(
                f"error mounting {source!r} to rootfs at {m.destination!r}: stat {source}: "
                "no such file or directory"
            ) from None
        _check_proc_mount(rootfs, resolve_in_root(rootfs, dest_in))
        dest = _create_mountpoint(rootfs, dest_in, stat.S_ISDIR(st.st_mode))
        flags = opts.flags | s.MS_BIND
        if mount_fd is not None:
            _attach_at(rootfs, dest, mount_fd)
        else:
            _mount_at(sys, rootfs, dest, source, "bind", flags & (s.MS_BIND | s.MS_REC), None)
        extra = flags & ~(s.MS_BIND | s.MS_REC | s.MS_REMOUNT)
        if extra:
            remount_bind(sys, rootfs, dest, extra)
    elif fstype == "cgroup" or fstype == "cgroup2":
        dest = mkdir_all_in_root(rootfs, dest_in)
        cgroup_mount(sys, rootfs, dest, opts)
    else:
        if fstype in ("proc", "sysfs"):
            path = resolve_in_root(rootfs, dest_in)
            if os.path.lexists(path) and not os.path.isdir(path):
                raise RootfsError(f"{m.destination} cannot be mounted because it is not a directory")
        dest = mkdir_all_in_root(rootfs, dest_in)
        flags = opts.flags
        data = opts.data or None
        if fstype == "tmpfs" and "tmpcopyup" in opts.extensions:
            _tmpcopyup(sys, rootfs, dest, m.source or "tmpfs", flags, data)
        else:
            _mount_at(sys, rootfs, dest, m.source or fstype, fstype, flags, data)
    for flag in opts.propagation:
        _mount_at(sys, rootfs, dest, None, None, flag, None)
    if opts.attr_set or opts.attr_clr:
        fd = open_in_root(rootfs, dest)
        try:
            sys.mount_setattr(fd, opts.attr_set, opts.attr_clr, recursive=True)
        finally:
            os.close(fd)


# runc's checkProcMount: a bind mount may cover only these /proc files (lxcfs emulates them);
# anything else could hide what the kernel or an LSM relies on (CVE-2019-19921 class).
_PROC_BINDABLE = frozenset(
    ["cpuinfo", "diskstats", "meminfo", "stat", "swaps", "uptime", "loadavg", "slabinfo", "net/dev"]
    + ["sys/kernel/ns_last_pid"]
)


def _check_proc_mount(rootfs: str, dest: str) -> None:
    proc = os.path.join(rootfs, "proc")
    if dest == proc:
        raise RootfsError(f'"{dest}" cannot be mounted because it is not of type proc')
    if dest.startswith(proc + "/") and dest[len(proc) + 1 :] not in _PROC_BINDABLE:
        raise RootfsError(f'"{dest}" cannot be mounted because it is inside /proc')


def _tmpcopyup(sys: s.LinuxSyscalls, rootfs: str, dest: str, source: str, flags: int, data) -> None:
    """tmpfs over ``dest`` that starts with a copy of what ``dest`` held (runc's tmpcopyup)."""
    import shutil
    import tempfile

    stash = tempfile.mkdtemp(prefix=".bock-tmpcopyup-", dir=rootfs)
    try:
        _mount_at(sys, rootfs, stash, source, "tmpfs", flags & ~s.MS_RDONLY, data)
        shutil.copytree(dest, stash, symlinks=True, dirs_exist_ok=True)
        _mount_at(sys, rootfs, dest, stash, None, s.MS_MOVE, None)
    finally:
        os.rmdir(stash)


def remount_bind(sys: s.LinuxSyscalls, rootfs: str, dest: str, flags: int) -> None:
    """Apply ro/nosuid/... to a bind mount, keeping the flags the kernel locked on it."""
    base = s.MS_BIND | s.MS_REMOUNT
    try:
        _mount_at(sys, rootfs, dest, None, None, base | flags, None)
    except PermissionError:
        _mount_at(sys, rootfs, dest, None, None, base | flags | mountopts.locked_flags(dest), None)


def setup_dev(sys: s.LinuxSyscalls, spec: Spec, rootfs: str, userns: bool) -> None:
    """Default devices (created, or bind-mounted from the host in a user namespace),
    the spec's devices, the /dev symlinks and /dev/ptmx."""
    old_umask = os.umask(0)  # as runc's createDevices: fileMode exactly, not masked
    try:
        _setup_dev(sys, spec, rootfs, userns)
    finally:
        os.umask(old_umask)


def _setup_dev(sys: s.LinuxSyscalls, spec: Spec, rootfs: str, userns: bool) -> None:
    configured = {d.path for d in spec.linux.devices}
    for path, major, minor in DEFAULT_DEVICES:
        if path in configured:
            continue
        _make_device(
            sys, rootfs, Device(type="c", path=path, major=major, minor=minor, file_mode=0o666), userns
        )
    for dev in spec.linux.devices:
        _make_device(sys, rootfs, dev, userns)
    for target, link in DEV_SYMLINKS:
        path = resolve_in_root(rootfs, link)
        if not os.path.lexists(path):
            sys.symlink(target, path)
    if os.path.exists("/proc/kcore"):
        path = resolve_in_root(rootfs, "/dev/core")
        if not os.path.lexists(path):
            sys.symlink("/proc/kcore", path)
    ptmx = resolve_in_root(rootfs, "/dev/ptmx")
    if os.path.lexists(ptmx) and not os.path.islink(ptmx):
        os.unlink(ptmx)
    if not os.path.lexists(ptmx):
        sys.symlink("pts/ptmx", ptmx)


_DEV_TYPES = {"c": stat.S_IFCHR, "u": stat.S_IFCHR, "b": stat.S_IFBLK, "p": stat.S_IFIFO}


def _make_device(sys: s.LinuxSyscalls, rootfs: str, dev: Device, userns: bool) -> None:
    if not dev.path.startswith("/dev/"):
        raise RootfsError(f"device {dev.path}: devices must live under /dev")
    parent = mkdir_all_in_root(rootfs, os.path.dirname(dev.path))
    path = os.path.join(parent, os.path.basename(dev.path))
    if os.path.islink(path):
        raise RootfsError(f"device {dev.path}: refusing to replace a symlink")
    if userns and dev.type != "p":
        # mknod is not allowed in a user namespace: bind the host's node instead
        if not os.path.exists(path):
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC | os.O_NOFOLLOW, 0o666))
        _mount_at(sys, rootfs, path, dev.path, "bind", s.MS_BIND, None)
        return
    if os.path.lexists(path):
        os.unlink(path)
    mode = (dev.file_mode if dev.file_mode is not None else 0o666) | _DEV_TYPES[dev.type]
    sys.mknod(path, mode, os.makedev(dev.major or 0, dev.minor or 0))
    sys.chown(path, dev.uid or 0, dev.gid or 0)


def pivot_root(sys: s.LinuxSyscalls, rootfs: str) -> None:
    """runc's pivot_root(".", ".") dance: no temporary directory inside the rootfs."""
    old = os.open("/", os.O_DIRECTORY | os.O_RDONLY | os.O_CLOEXEC)
    new = os.open(rootfs, os.O_DIRECTORY | os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fchdir(new)
        sys.pivot_root(".", ".")
        os.fchdir(old)
        sys.mount(None, ".", None, s.MS_SLAVE | s.MS_REC, None)
        sys.umount(".", s.MNT_DETACH)
    finally:
        os.close(old)
        os.close(new)
    os.chdir("/")


def move_root(sys: s.LinuxSyscalls, rootfs: str) -> None:
    """--no-pivot: move the rootfs mount over / and chroot into it."""
    os.chdir(rootfs)
    sys.mount(rootfs, "/", None, s.MS_MOVE, None)
    sys.chroot(".")
    os.chdir("/")


def mask_paths(sys: s.LinuxSyscalls, paths: list[str]) -> None:
    for path in paths:
        if not os.path.lexists(path) or os.path.islink(path):
            continue
        if os.path.isdir(path):
            sys.mount("tmpfs", path, "tmpfs", s.MS_RDONLY, None)
        else:
            sys.mount("/dev/null", path, None, s.MS_BIND, None)


def readonly_paths(sys: s.LinuxSyscalls, paths: list[str]) -> None:
    for path in paths:
        if not os.path.lexists(path) or os.path.islink(path):
            continue
        sys.mount(path, path, None, s.MS_BIND | s.MS_REC, None)
        flags = s.MS_BIND | s.MS_REMOUNT | s.MS_RDONLY | s.MS_REC
        try:
            sys.mount(None, path, None, flags, None)
        except PermissionError:
            sys.mount(None, path, None, flags | mountopts.locked_flags(path), None)


def readonly_root(sys: s.LinuxSyscalls) -> None:
    flags = s.MS_BIND | s.MS_REMOUNT | s.MS_RDONLY
    try:
        sys.mount(None, "/", None, flags, None)
    except PermissionError:
        sys.mount(None, "/", None, flags | mountopts.locked_flags("/"), None)

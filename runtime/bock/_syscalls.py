"""The syscall seam of the container init (youki's ``Syscall`` trait).

:class:`LinuxSyscalls` does the real work through ctypes; :class:`RecordingSyscalls`
records the calls instead, so the init sequence (mounts, pivot_root, devices, hostname)
can be unit-tested without root. Only the operations with host-wide effects live here;
reading files and resolving paths stay real in both.
"""

from __future__ import annotations

import ctypes
import os

from bock._libc import check, fsencode, libc, syscall

# mount(2) flags
MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_SYNCHRONOUS = 0x10
MS_REMOUNT = 0x20
MS_MANDLOCK = 0x40
MS_DIRSYNC = 0x80
MS_NOSYMFOLLOW = 0x100
MS_NOATIME = 0x400
MS_NODIRATIME = 0x800
MS_BIND = 0x1000
MS_MOVE = 0x2000
MS_REC = 0x4000
MS_SILENT = 0x8000
MS_UNBINDABLE = 0x20000
MS_PRIVATE = 0x40000
MS_SLAVE = 0x80000
MS_SHARED = 0x100000
MS_RELATIME = 0x200000
MS_STRICTATIME = 0x1000000
MS_LAZYTIME = 0x2000000
MNT_DETACH = 0x2

CLONE_NEWTIME = 0x80
CLONE_NEWNS = 0x20000
CLONE_NEWCGROUP = 0x2000000
CLONE_NEWUTS = 0x4000000
CLONE_NEWIPC = 0x8000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

NAMESPACE_FLAGS = {
    "pid": CLONE_NEWPID,
    "network": CLONE_NEWNET,
    "mount": CLONE_NEWNS,
    "ipc": CLONE_NEWIPC,
    "uts": CLONE_NEWUTS,
    "user": CLONE_NEWUSER,
    "cgroup": CLONE_NEWCGROUP,
    "time": CLONE_NEWTIME,
}
# /proc/<pid>/ns/<name> for each spec namespace type
NAMESPACE_FILES = {
    "pid": "pid",
    "network": "net",
    "mount": "mnt",
    "ipc": "ipc",
    "uts": "uts",
    "user": "user",
    "cgroup": "cgroup",
    "time": "time",
}

libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
libc.unshare.argtypes = [ctypes.c_int]
libc.sethostname.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
libc.setdomainname.argtypes = [ctypes.c_char_p, ctypes.c_size_t]


class LinuxSyscalls:
    """The real thing."""

    def mount(
        self, source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None
    ) -> None:
        ret = libc.mount(fsencode(source), fsencode(target), fsencode(fstype), flags, fsencode(data))
        if ret < 0:
            err = ctypes.get_errno()
            raise OSError(err, f"mount {source or 'none'} to {target} (type {fstype}): {os.strerror(err)}")

    def umount(self, target: str, flags: int = 0) -> None:
        check(libc.umount2(fsencode(target), flags), f"umount {target}")

    def unshare(self, flags: int) -> None:
        check(libc.unshare(flags), "unshare")

    def setns(self, fd: int, nstype: int) -> None:
        syscall("setns", fd, nstype)

    def pivot_root(self, new_root: str, put_old: str) -> None:
        syscall("pivot_root", fsencode(new_root), fsencode(put_old))

    def chroot(self, path: str) -> None:
        os.chroot(path)

    def sethostname(self, name: str) -> None:
        raw = name.encode()
        check(libc.sethostname(raw, len(raw)), "sethostname")

    def setdomainname(self, name: str) -> None:
        raw = name.encode()
        check(libc.setdomainname(raw, len(raw)), "setdomainname")

    def mknod(self, path: str, mode: int, device: int) -> None:
        os.mknod(path, mode, device)

    def chown(self, path: str, uid: int, gid: int) -> None:
        os.chown(path, uid, gid, follow_symlinks=False)

    def symlink(self, target: str, path: str) -> None:
        os.symlink(target, path)

    def mount_setattr(self, fd: int, attr_set: int, attr_clr: int, *, recursive: bool) -> None:
        """mount_setattr(2) on the mount ``fd`` is (AT_EMPTY_PATH; AT_RECURSIVE if asked)."""
        attr = (ctypes.c_uint64 * 4)(attr_set, attr_clr, 0, 0)
        flags = 0x1000 | (0x8000 if recursive else 0)  # AT_EMPTY_PATH, AT_RECURSIVE
        try:
            syscall("mount_setattr", fd, b"", flags, ctypes.byref(attr), ctypes.sizeof(attr))
        except OSError as err:
            raise OSError(err.errno, f"mount_setattr {fd_target(fd)}: {os.strerror(err.errno)}") from None

    # -- a sealed, read-only copy of the interpreter (bock._init.exeseal) ----------------
    def fsopen(self, fstype: str) -> int:
        return syscall("fsopen", fstype.encode(), 1)  # FSOPEN_CLOEXEC

    def fsconfig(self, fd: int, key: str, value: str | None) -> None:
        """FSCONFIG_SET_STRING ``key=value``, or FSCONFIG_CMD_CREATE when ``value`` is None."""
        if value is None:
            syscall("fsconfig", fd, 6, None, None, 0)
        else:
            syscall("fsconfig", fd, 1, key.encode(), os.fsencode(value), 0)

    def fsmount(self, fd: int, attrs: int) -> int:
        return syscall("fsmount", fd, 1, attrs)  # FSMOUNT_CLOEXEC

    def openat(self, dirfd: int, name: str, flags: int) -> int:
        return os.open(name, flags, dir_fd=dirfd)

    def memfd_create(self, name: str, flags: int) -> int:
        return os.memfd_create(name, flags)

    def add_seals(self, fd: int, seals: int) -> None:
        import fcntl

        fcntl.fcntl(fd, fcntl.F_ADD_SEALS, seals)

    def execveat(self, fd: int, argv: list[str], env: dict[str, str]) -> None:
        """execveat(fd, "", argv, env, AT_EMPTY_PATH); returns only by raising OSError."""
        args = [os.fsencode(a) for a in argv]
        envs = [os.fsencode(k) + b"=" + os.fsencode(v) for k, v in env.items()]
        c_argv = (ctypes.c_char_p * (len(args) + 1))(*args, None)
        c_env = (ctypes.c_char_p * (len(envs) + 1))(*envs, None)
        syscall("execveat", fd, b"", c_argv, c_env, 0x1000)  # AT_EMPTY_PATH


def fd_target(fd: int) -> str:
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return f"fd {fd}"


class RecordingSyscalls(LinuxSyscalls):
    """Records every call as a tuple ``(name, *args)`` and does nothing else.

    ``fail`` maps a call name to an OSError to raise, to test the error paths.
    """

    def __init__(self, fail: dict[str, OSError] | None = None) -> None:
        self.calls: list[tuple] = []
        self.fail = fail or {}

    def _record(self, name: str, *args: object) -> None:
        self.calls.append((name, *args))
        if name in self.fail:
            raise self.fail[name]

    def mount(self, source, target, fstype, flags, data=None):
        self._record("mount", source, target, fstype, flags, data)

    def umount(self, target, flags=0):
        self._record("umount", target, flags)

    def unshare(self, flags):
        self._record("unshare", flags)

    def setns(self, fd, nstype):
        self._record("setns", fd, nstype)

    def pivot_root(self, new_root, put_old):
        self._record("pivot_root", new_root, put_old)

    def chroot(self, path):
        self._record("chroot", path)

    def sethostname(self, name):
        self._record("sethostname", name)

    def setdomainname(self, name):
        self._record("setdomainname", name)

    def mknod(self, path, mode, device):
        self._record("mknod", path, mode, device)

    def chown(self, path, uid, gid):
        self._record("chown", path, uid, gid)

    def symlink(self, target, path):
        self._record("symlink", target, path)

    def mount_setattr(self, fd, attr_set, attr_clr, *, recursive):
        self._record("mount_setattr", fd_target(fd), attr_set, attr_clr, recursive)

    _next_fd = (
        1 << 30
    )  # fake fds (above any fd limit: closing one is EBADF) for the mount API calls (never real, never closed)

    def _fake_fd(self) -> int:
        RecordingSyscalls._next_fd += 1
        return RecordingSyscalls._next_fd

    def fsopen(self, fstype):
        self._record("fsopen", fstype)
        return self._fake_fd()

    def fsconfig(self, fd, key, value):
        self._record("fsconfig", key, value)

    def fsmount(self, fd, attrs):
        self._record("fsmount", attrs)
        return self._fake_fd()

    def openat(self, dirfd, name, flags):
        self._record("openat", name, flags)
        return self._fake_fd()

    def memfd_create(self, name, flags):
        """A real memfd (harmless, private to the process) so that the copy can be checked."""
        self._record("memfd_create", name, flags)
        return os.memfd_create(name, flags)

    def add_seals(self, fd, seals):
        self._record("add_seals", seals)

    def execveat(self, fd, argv, env):
        self._record("execveat", fd, list(argv))

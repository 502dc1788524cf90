"""The last steps of the init: find the executable, switch credentials, exec.

Error text follows runc (callers match on it): ``exec: "X": executable file not
found in $PATH`` and ``exec: "X": stat X: no such file or directory``.
"""

from __future__ import annotations

import os
import stat

from bock.errors import ExecError


def home_of(uid: int, passwd: str = "/etc/passwd") -> str:
    """The user's home from the container's /etc/passwd, else "/" (runc sets HOME so)."""
    try:
        with open(passwd, encoding="utf-8", errors="replace") as f:
            for line in f:
                fields = line.rstrip("\n").split(":")
                if len(fields) >= 6 and fields[2] == str(uid):
                    return fields[5] or "/"
    except OSError:
        pass
    return "/"


def env_dict(env: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in env:
        key, sep, value = item.partition("=")
        if sep:
            out[key] = value
    return out


def _executable(path: str) -> str | None:
    """None when ``path`` is an executable regular file, else the Go-style error text."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return "no such file or directory"
    except NotADirectoryError:
        return "not a directory"
    except PermissionError:
        return "permission denied"
    if stat.S_ISDIR(st.st_mode) or not st.st_mode & 0o111:
        return "permission denied"
    return None


def look_path(name: str, env: dict[str, str]) -> str:
    """Go's exec.LookPath, with the container's PATH."""
    if "/" in name:
        err = _executable(name)
        if err:
            raise ExecError(f'exec: "{name}": stat {name}: {err}')
        return name
    for directory in env.get("PATH", "").split(":"):
        candidate = os.path.join(directory or ".", name)
        if _executable(candidate) is None:
            return candidate
    raise ExecError(f'exec: "{name}": executable file not found in $PATH')


def close_fds_from(first: int) -> None:
    """Mark every fd >= first close-on-exec (close_range(2) with CLOSE_RANGE_CLOEXEC)."""
    from bock._libc import syscall

    try:
        syscall("close_range", first, 0xFFFFFFFF, 4)  # CLOSE_RANGE_CLOEXEC
    except OSError:
        for name in os.listdir("/proc/self/fd"):
            fd = int(name)
            if fd >= first:
                try:
                    os.set_inheritable(fd, False)
                except OSError:
                    pass


class RuntimeExeRefused(ExecError):
    pass


# (st_dev, st_ino) of the host's interpreter when this process runs a sealed copy of it
# (bock._init.exeseal): /proc/self/exe is then the copy, but the host file is what matters.
host_interpreter: tuple[int, int] | None = None


def _same_file(a: os.stat_result, b: os.stat_result) -> bool:
    return a.st_dev == b.st_dev and a.st_ino == b.st_ino


def _elf_interp(head: bytes, fd: int) -> str | None:
    """PT_INTERP of a 64- or 32-bit little-endian ELF file, if any."""
    if head[:4] != b"\x7fELF" or head[5] != 1:
        return None
    is64 = head[4] == 2
    if is64:
        phoff = int.from_bytes(head[32:40], "little")
        phentsize = int.from_bytes(head[54:56], "little")
        phnum = int.from_bytes(head[56:58], "little")
    else:
        phoff = int.from_bytes(head[28:32], "little")
        phentsize = int.from_bytes(head[42:44], "little")
        phnum = int.from_bytes(head[44:46], "little")
    table = os.pread(fd, phentsize * min(phnum, 64), phoff)
    for i in range(min(phnum, 64)):
        ph = table[i * phentsize : (i + 1) * phentsize]
        if int.from_bytes(ph[0:4], "little") == 3:  # PT_INTERP
            if is64:
                off, size = int.from_bytes(ph[8:16], "little"), int.from_bytes(ph[32:40], "little")
            else:
                off, size = int.from_bytes(ph[4:8], "little"), int.from_bytes(ph[16:20], "little")
            return os.pread(fd, min(size, 4096), off).rstrip(b"\0").decode(errors="replace")
    return None


def refuse_runtime_exe(path: str, depth: int = 0) -> None:
    """Refuse to execute the runtime's own interpreter from inside the container.

    A container binary that is (a symlink to) ``/proc/self/exe``, a script whose
    interpreter is, or an ELF whose PT_INTERP is, would make the kernel run the host's
    Python inside the container, where ``/proc/<pid>/exe`` then hands it to the
    container (CVE-2019-5736). Every path is resolved here, in the init's own context
    (where /proc/self/exe *is* the host interpreter), and compared by inode.
    """
    ours = os.stat("/proc/self/exe")
    try:
        st = os.stat(path)
    except OSError:
        return  # execve reports it
    if _same_file(st, ours) or (st.st_dev, st.st_ino) == host_interpreter:
        raise RuntimeExeRefused(
            f'exec: "{path}": refusing to execute the runtime\'s own interpreter (CVE-2019-5736)'
        )
    if depth >= 4:
        return
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError:
        return
    try:
        head = os.pread(fd, 256, 0)
        interp = None
        if head[:2] == b"#!":
            line = head[2:].split(b"\n", 1)[0].strip()
            interp = line.split()[0].decode(errors="replace") if line else None
        else:
            interp = _elf_interp(head, fd) if len(head) >= 64 else None
    finally:
        os.close(fd)
    if interp:
        refuse_runtime_exe(interp, depth + 1)

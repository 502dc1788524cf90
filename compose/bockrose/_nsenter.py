"""Run a command inside a running container's namespaces (ipc, uts, net, pid, mnt) by its init pid:
the fallback for health probes and `exec` when the runtime has no `exec` command. The command
gets the init's environment (plus -e), the given cwd and user; it does not join the container's
cgroup, seccomp filter or capability set (documented limitation).

Usage: python -m bockrose._nsenter PID [-e K=V]... [-w DIR] [-u UID[:GID]] [--net-only] -- CMD..."""

from __future__ import annotations

import ctypes
import os
import sys

_libc = ctypes.CDLL(None, use_errno=True)


def setns(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        if _libc.setns(fd, 0) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns {path}: {os.strerror(err)}")
    finally:
        os.close(fd)


def enter_netns(path: str) -> None:
    """Move the calling thread into a network namespace (by file, e.g. /run/netns/NAME)."""
    setns(path)


def main(argv: list[str]) -> int:
    pid = argv[0]
    env_extra: list[str] = []
    cwd = None
    user = None
    net_only = False
    i = 1
    while i < len(argv) and argv[i] != "--":
        a = argv[i]
        if a == "-e":
            env_extra.append(argv[i + 1])
            i += 2
        elif a == "-w":
            cwd = argv[i + 1]
            i += 2
        elif a == "-u":
            user = argv[i + 1]
            i += 2
        elif a == "--net-only":
            net_only = True
            i += 1
        else:
            print(f"bockrose-nsenter: unknown option {a}", file=sys.stderr)
            return 125
    cmd = argv[i + 1 :]
    if not cmd:
        print("bockrose-nsenter: no command", file=sys.stderr)
        return 125
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            env = dict(e.split("=", 1) for e in f.read().decode(errors="replace").split("\0") if "=" in e)
        with open(f"/proc/{pid}/status") as f:
            status = f.read()
        uid_line = next(x for x in status.splitlines() if x.startswith("Uid:")).split()[1]
        gid_line = next(x for x in status.splitlines() if x.startswith("Gid:")).split()[1]
        if not cwd:
            try:
                cwd = os.readlink(f"/proc/{pid}/cwd")
            except OSError:
                cwd = "/"
        kinds = ("net",) if net_only else ("ipc", "uts", "net", "pid", "mnt")
        for kind in kinds:
            setns(f"/proc/{pid}/ns/{kind}")
    except (OSError, StopIteration) as exc:
        print(f"bockrose-nsenter: cannot enter container (pid {pid}): {exc}", file=sys.stderr)
        return 126
    for e in env_extra:
        k, _, v = e.partition("=")
        env[k] = v
    uid, gid = int(uid_line), int(gid_line)
    if user:
        u, _, g = user.partition(":")
        if u.isdigit():
            uid = int(u)
        if g.isdigit():
            gid = int(g)
    child = os.fork()
    if child == 0:
        try:
            if not net_only:
                os.chdir(cwd or "/")
                os.setgroups([])
                os.setgid(gid)
                os.setuid(uid)
            os.execvpe(cmd[0], cmd, env)
        except FileNotFoundError:
            os.write(2, f'exec: "{cmd[0]}": executable file not found in $PATH\n'.encode())
            os._exit(127)
        except OSError as exc:
            os.write(2, f"exec {cmd[0]}: {exc}\n".encode())
            os._exit(126)
    while True:
        try:
            _, status = os.waitpid(child, 0)
            break
        except InterruptedError:
            continue
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.waitstatus_to_exitcode(status)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

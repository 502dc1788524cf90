"""``linux.sysctl``: only namespaced sysctls, checked with runc's rules and wording.

/proc/sys is not completely namespaced; which keys a container may set depends on
the namespaces it has (runc ``libcontainer/configs/validate``):

* IPC namespace: ``kernel.msgmax``, ``kernel.msgmnb``, ``kernel.msgmni``, ``kernel.sem``,
  ``kernel.shmall``, ``kernel.shmmax``, ``kernel.shmmni``, ``kernel.shm_rmid_forced`` and
  ``fs.mqueue.*`` -- otherwise "sysctl %q is not allowed in the hosts ipc namespace";
* a network namespace that is not the runtime's own: ``net.*`` -- otherwise
  "sysctl %q not allowed in host network namespace";
* UTS namespace: ``kernel.domainname`` (``kernel.hostname`` conflicts with the
  ``hostname`` field and is refused);
* user namespace: ``user.*`` (the ucounts) -- otherwise
  "setting ucounts without a user namespace not allowed: %s";
* anything else: "sysctl %q is not in a separate kernel namespace".

A key may use ``/`` instead of ``.`` as separator (sysctl.d(5)): ``net/ipv4/conf/eth0.100/rp_filter``.

:func:`apply` writes the values as runc does: in the container's init, after the
rootfs is set up and pivot_root is done (so through the container's own procfs,
in its namespaces), before readonlyPaths/maskedPaths make /proc/sys read-only.
"""

from __future__ import annotations

import os

from bock.errors import ConfigError, SystemError_

IPC_SYSCTLS = frozenset(
    {
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
    }
)


def to_dots(key: str) -> str:
    """runc's convertSysctlVariableToDotsSeparator.

    "net/ipv4/conf/eno2.100/x" -> "net.ipv4.conf.eno2/100.x"; a dotted key is returned as is.
    """
    for ch in key:
        if ch == ".":
            return key
        if ch == "/":
            return key.translate(_SWAP)
    return key


_SWAP = str.maketrans("./", "/.")


def key_path(key: str) -> str:
    """The path under /proc/sys of ``key`` (either separator); refuses ``..`` and empty parts."""
    # In dotted form a "/" inside a component stands for a literal "." (a VLAN interface name).
    parts = [p.replace("/", ".") for p in to_dots(key).split(".")]
    if any(p in ("", ".", "..") for p in parts):
        raise ConfigError(f"invalid sysctl key {key!r}")
    return "/".join(parts)


def validate(sysctl: dict[str, str], linux: object) -> None:
    """Raise ConfigError for a key the container's namespaces do not make its own."""
    hostnet: bool | None = None
    for raw in sysctl:
        key = to_dots(raw)
        key_path(raw)
        if key in IPC_SYSCTLS or key.startswith("fs.mqueue."):
            if linux.namespace("ipc") is None:
                raise ConfigError(f'sysctl "{key}" is not allowed in the hosts ipc namespace')
            continue
        if key.startswith("net."):
            if hostnet is None:
                hostnet = _uses_host_netns(linux)
            if hostnet:
                raise ConfigError(f'sysctl "{key}" not allowed in host network namespace')
            continue
        if linux.namespace("uts") is not None:
            if key == "kernel.domainname":
                continue
            if key == "kernel.hostname":
                raise ConfigError(
                    f'sysctl "{key}" is not allowed as it conflicts with the OCI "hostname" field'
                )
        if key.startswith("user."):
            if linux.namespace("user") is None:
                raise ConfigError(f"setting ucounts without a user namespace not allowed: {key}")
            continue
        raise ConfigError(f'sysctl "{key}" is not in a separate kernel namespace')


def _uses_host_netns(linux: object) -> bool:
    """True if the container shares the runtime's network namespace ("host" means "current")."""
    ns = linux.namespace("network")
    if ns is None:
        return True
    if not ns.path:
        return False
    try:
        mine = os.stat("/proc/self/ns/net")
        theirs = os.stat(ns.path)
    except OSError as exc:
        raise ConfigError(
            f"invalid netns path: stat {exc.filename}: {os.strerror(exc.errno).lower()}"
        ) from None
    return (mine.st_dev, mine.st_ino) == (theirs.st_dev, theirs.st_ino)


def apply(sysctl: dict[str, str], proc: str = "/proc") -> None:
    """Write each value to ``<proc>/sys/<key path>``; errors name the key as runc does."""
    for key, value in sysctl.items():
        path = f"{proc}/sys/{key_path(key)}"
        try:
            fd = os.open(path, os.O_WRONLY | os.O_TRUNC | os.O_CLOEXEC | os.O_NOFOLLOW)
        except OSError as exc:
            raise SystemError_(f"open sysctl {key} file: {_strerr(exc, path)}") from None
        try:
            os.write(fd, value.encode())
        except OSError as exc:
            raise SystemError_(f'failed to write sysctl {key} = "{value}": {_strerr(exc, path)}') from None
        finally:
            os.close(fd)


def _strerr(exc: OSError, path: str) -> str:
    return f"{path}: {os.strerror(exc.errno).lower()}" if exc.errno else str(exc)

"""AppArmor profiles and SELinux labels, with runc's behaviour on hosts that lack the LSM.

What runc 1.1 does, measured on this kernel (no AppArmor, no SELinux) and read in its
source (libcontainer/apparmor, go-selinux, configs/validate):

* ``process.apparmorProfile`` on a host without AppArmor: runc does NOT check whether
  AppArmor is enabled; the init writes ``exec <profile>`` to
  /proc/self/attr/apparmor/exec (falling back to /proc/self/attr/exec), the kernel
  refuses it, and create fails with ``unable to apply apparmor profile: apparmor failed
  to apply profile: write /proc/self/attr/exec: invalid argument``.
  :func:`apply_apparmor` does exactly that, so the error is the same.
* ``process.selinuxLabel`` without SELinux: refused before anything is created, with
  ``selinux label is specified in config, but selinux is disabled or not supported``
  (:func:`validate`).
* ``linux.mountLabel`` is added to mount data as ``context="<label>"`` whether or not
  SELinux is enabled (go-selinux ``FormatMountLabel``); without SELinux the kernel then
  refuses the mount with EINVAL. :func:`format_mount_label` formats it the same way.
"""

from __future__ import annotations

import os

from bock.errors import ConfigError, SystemError_

_enabled: dict[str, bool] = {}


def apparmor_enabled() -> bool:
    """runc's check: securityfs shows apparmor and the module parameter says ``Y``."""
    if "apparmor" not in _enabled:
        ok = False
        if os.path.exists("/sys/kernel/security/apparmor"):
            try:
                with open("/sys/module/apparmor/parameters/enabled", "rb") as f:
                    ok = f.read(1) == b"Y"
            except OSError:
                ok = False
        _enabled["apparmor"] = ok
    return _enabled["apparmor"]


def selinux_enabled() -> bool:
    """go-selinux's GetEnabled: a selinuxfs mount exists and our context is not ``kernel``."""
    if "selinux" not in _enabled:
        ok = False
        if _selinuxfs_mounted():
            try:
                with open("/proc/thread-self/attr/current", "rb") as f:
                    ok = f.read().rstrip(b"\0\n") not in (b"", b"kernel")
            except OSError:
                ok = False
        _enabled["selinux"] = ok
    return _enabled["selinux"]


def _selinuxfs_mounted() -> bool:
    if os.path.exists("/sys/fs/selinux/enforce"):
        return True
    try:
        with open("/proc/self/mountinfo", "rb") as f:
            return any(b" - selinuxfs " in line for line in f)
    except OSError:
        return False


def validate(process: object | None) -> None:
    """The parent-side check runc makes (configs/validate ``security``)."""
    if process is not None and process.selinux_label and not selinux_enabled():
        raise ConfigError("selinux label is specified in config, but selinux is disabled or not supported")


def _write_attr(attr: str, value: str, *, apparmor: bool) -> None:
    path = f"/proc/self/attr/apparmor/{attr}" if apparmor else f"/proc/thread-self/attr/{attr}"
    if apparmor and not os.path.exists(path):
        path = f"/proc/self/attr/{attr}"  # the pre-stacking interface
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.write(fd, value.encode())
    except OSError as exc:
        raise OSError(exc.errno, f"write {path}: {os.strerror(exc.errno).lower()}") from None
    finally:
        os.close(fd)


def apply_apparmor(profile: str | None) -> None:
    """Make the next execve switch to ``profile`` (aa_change_onexec). Empty: nothing to do."""
    if not profile:
        return
    try:
        _write_attr("exec", "exec " + profile, apparmor=True)
    except OSError as exc:
        text = exc.strerror if exc.strerror and exc.strerror.startswith("write ") else _oserr(exc)
        raise SystemError_(
            f"unable to apply apparmor profile: apparmor failed to apply profile: {text}"
        ) from None


def apply_selinux_label(label: str | None) -> None:
    """Label the next execve (setexeccon). Empty: nothing to do."""
    if not label:
        return
    try:
        _write_attr("exec", label, apparmor=False)
    except OSError as exc:
        text = exc.strerror if exc.strerror and exc.strerror.startswith("write ") else _oserr(exc)
        raise SystemError_(f"can't set process label: {text}") from None


def _oserr(exc: OSError) -> str:
    where = f"open {exc.filename}: " if exc.filename else ""
    return where + (os.strerror(exc.errno).lower() if exc.errno else str(exc))


def format_mount_label(data: str, mount_label: str | None, context_type: str = "context") -> str:
    """go-selinux FormatMountLabelByType: append ``context="<label>"`` to mount ``data``."""
    if not mount_label:
        return data
    quoted = '"' + mount_label.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return f"{context_type}={quoted}" if not data else f"{data},{context_type}={quoted}"

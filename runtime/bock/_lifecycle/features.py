"""``bock features``: what this build of bock really implements (runtime-spec features.md).

Honest lists only: a feature is listed when the code that implements it is present in
this installation (capabilities, seccomp, cgroups and LSM support live in optional
modules that may be missing from a partial build). Nothing is printed on stderr.
"""

from __future__ import annotations

HOOKS = ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"]
NAMESPACES = ["cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"]


def _hooks() -> list[str]:
    try:
        from bock._security import hooks  # noqa: F401
    except ImportError:
        return []
    return HOOKS


def _mount_options() -> list[str]:
    from bock._init import mountopts

    recursive = getattr(mountopts, "RECURSIVE", {})  # rro, rnosuid, ... (mount_setattr)
    extensions = set(mountopts.EXTENSIONS)  # tmpcopyup, idmap, ridmap (bock._security.idmap)
    return sorted(set(mountopts.FLAGS) | set(mountopts.PROPAGATION) | set(recursive) | extensions)


def _capabilities() -> list[str] | None:
    try:
        from bock._security import caps
    except ImportError:
        return None
    return list(caps.features())


def _seccomp() -> dict:
    try:
        from bock._security import seccomp
    except ImportError:
        return {"enabled": False}
    out: dict = {"enabled": True}
    for key, attr in (("actions", "ACTIONS"), ("operators", "OPERATORS"), ("archs", "ARCHES")):
        value = getattr(seccomp, attr, None)
        if value is not None:
            out[key] = sorted(value)
    flags = getattr(seccomp, "FLAGS", None)
    if flags is not None:
        out["knownFlags"] = sorted(flags)
    supported = getattr(seccomp, "supported_flags", None)
    if supported is not None:
        try:
            out["supportedFlags"] = sorted(supported())
        except Exception:  # no libseccomp, old kernel: say nothing rather than print on stderr
            out["supportedFlags"] = []
    return out


def _cgroup() -> dict:
    try:
        import bock._cgroups  # noqa: F401
    except ImportError:
        return {"v1": False, "v2": False, "systemd": False, "systemdUser": False, "rdma": False}
    # the systemd driver: yes; its rootless form (systemd --user) is not supported
    return {"v1": True, "v2": True, "systemd": True, "systemdUser": False, "rdma": True}


def _lsm() -> tuple[bool, bool]:
    try:
        from bock._security import lsm  # noqa: F401
    except ImportError:
        return False, False
    return True, True


def features() -> dict:
    from bock import SPEC_VERSION, __version__

    apparmor, selinux = _lsm()
    linux: dict = {
        "namespaces": NAMESPACES,
        "cgroup": _cgroup(),
        "seccomp": _seccomp(),
        "apparmor": {"enabled": apparmor},
        "selinux": {"enabled": selinux},
        "intelRdt": {"enabled": False},
        # idmapped bind mounts (mount uid/gidMappings, idmap/ridmap) through mount_setattr
        "mountExtensions": {"idmap": {"enabled": True}},
        "netDevices": {"enabled": False},
    }
    caps = _capabilities()
    if caps is not None:
        linux["capabilities"] = caps
    return {
        "ociVersionMin": "1.0.0",
        "ociVersionMax": SPEC_VERSION,
        "hooks": _hooks(),
        "mountOptions": _mount_options(),
        "linux": linux,
        "annotations": {
            "io.github.bock.version": __version__,
            "io.github.bock.checkpoint.enabled": "false",
        },
    }

"""Errors of the cgroup drivers (part of the :mod:`bock.errors` hierarchy).

SystemError_
└── CgroupError             a cgroup could not be created, joined, set, frozen or removed
    ├── SystemdNotRunning   ``--systemd-cgroup`` on a host without systemd
    └── LimitError          a resource limit the kernel refused (e.g. memory below usage)
ConfigError
└── CgroupConfigError       a ``cgroupsPath`` or ``linux.resources`` value that is wrong in itself
"""

from __future__ import annotations

from bock.errors import ConfigError, SystemError_


class CgroupError(SystemError_):
    pass


class SystemdNotRunning(CgroupError):
    def __init__(self) -> None:
        # runc's wording (libcontainer/cgroups/manager/new.go).
        super().__init__("systemd not running on this host, cannot use systemd cgroups manager")


class LimitError(CgroupError):
    pass


class CgroupConfigError(ConfigError):
    pass

"""Control groups: layout detection, runc's cgroupsPath rules, limits, freezer, stats, OOM.

The one entry point is :class:`CgroupManager`; errors are :class:`CgroupError`
(a :class:`bock.errors.SystemError_`) and :class:`CgroupConfigError` (a
:class:`bock.errors.ConfigError`). Importing this package loads no ctypes: the
eBPF loader (:mod:`bock._cgroups.bpf`) is imported only on cgroup v2 hosts.
"""

from __future__ import annotations

from bock._cgroups.errors import CgroupConfigError, CgroupError, LimitError, SystemdNotRunning
from bock._cgroups.manager import CgroupManager

__all__ = ["CgroupConfigError", "CgroupError", "CgroupManager", "LimitError", "SystemdNotRunning"]

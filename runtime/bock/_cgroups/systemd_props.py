"""The systemd cgroup driver's pure part: names, slice paths and unit properties (runc 1.1's rules).

Nothing here talks to systemd; :mod:`bock._cgroups.systemd_bus` sends what this computes.

- ``cgroupsPath`` is ``slice:prefix:name`` (empty: ``:runc:<id>``); the unit is
  ``<prefix>-<name>.scope``, or ``<name>`` itself when that ends in ``.slice``;
- a slice name expands to its cgroup path: ``a-b.slice`` -> ``/a.slice/a-b.slice``
  (runc's ``ExpandSlice``; ``-.slice`` is the root);
- properties are ``(name, (dbus_signature, value))``, the shape of the ``a(sv)`` argument of
  ``StartTransientUnit`` and ``SetUnitProperties``.
"""

from __future__ import annotations

import os

from bock._cgroups.errors import CgroupConfigError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from bock._spec.resources import LinuxResources

Property = tuple  # (name: str, (signature: str, value))

DEFAULT_SLICE = "system.slice"
DEFAULT_PREFIX = "runc"
INFINITY = (1 << 64) - 1  # systemd's USEC_INFINITY / CGROUP_LIMIT_MAX
DEFAULT_CPU_PERIOD = 100000  # runc's defCPUQuotaPeriod, in µs


def parse_cgroups_path(cid: str, cgroups_path: str | None) -> tuple[str, str, str]:
    """``(slice, prefix, name)`` from ``linux.cgroupsPath`` (runc's specconv for systemd)."""
    if not cgroups_path:
        return "", DEFAULT_PREFIX, cid
    parts = cgroups_path.split(":")
    if len(parts) != 3:
        raise CgroupConfigError(
            'expected cgroupsPath to be of format "slice:prefix:name" for systemd cgroups,'
            f' got "{cgroups_path}" instead'
        )
    return parts[0], parts[1], parts[2]


def unit_name(prefix: str, name: str) -> str:
    """runc's ``getUnitName``: a name ending in ``.slice`` is the unit itself."""
    if name.endswith(".slice"):
        return name
    return f"{prefix}-{name}.scope"


def expand_slice(slice_: str) -> str:
    """runc's ``ExpandSlice``: ``a-b-c.slice`` -> ``/a.slice/a-b.slice/a-b-c.slice``."""
    suffix = ".slice"
    if len(slice_) < len(suffix) or not slice_.endswith(suffix) or "/" in slice_:
        raise CgroupConfigError(f"invalid slice name: {slice_}")
    stem = slice_[: -len(suffix)]
    if stem == "-":
        return "/"
    path, prefix = "", ""
    for component in stem.split("-"):
        if not component:  # "a--b.slice", "-a.slice", "a-.slice"
            raise CgroupConfigError(f"invalid slice name: {slice_}")
        path += "/" + prefix + component + suffix
        prefix += component + "-"
    return path


def unit_cgroup(slice_: str, unit: str) -> str:
    """The unit's cgroup, relative to systemd's root: ``/system.slice/runc-c1.scope``."""
    base = expand_slice(slice_ or DEFAULT_SLICE)
    return base.rstrip("/") + "/" + unit


def base_properties(cid_name: str, slice_: str, unit: str, pid: int) -> list[Property]:
    """What runc's ``Apply`` always asks for: placement, delegation, accounting."""
    props: list[Property] = [("Description", ("s", "libcontainer container " + cid_name))]
    if unit.endswith(".slice"):
        # A slice's parent is given by Wants= (systemd derives it from the name).
        props.append(("Wants", ("as", [slice_ or DEFAULT_SLICE])))
    else:
        props.append(("Slice", ("s", slice_ or DEFAULT_SLICE)))
        props.append(("Delegate", ("b", True)))
    if pid != -1:
        props.append(("PIDs", ("au", [pid])))
    props += [
        ("MemoryAccounting", ("b", True)),
        ("CPUAccounting", ("b", True)),
        ("BlockIOAccounting", ("b", True)),
        ("TasksAccounting", ("b", True)),
        ("DefaultDependencies", ("b", False)),
    ]
    return props


# --- resources ----------------------------------------------------------------------


def _u64(value: int) -> int:
    """Go's ``uint64(int64)``: -1 (unlimited) is systemd's infinity."""
    return value & INFINITY


def cpu_quota_properties(quota: int | None, period: int | None, version: int) -> list[Property]:
    """runc's ``addCpuQuota``: CPUQuotaPeriodUSec (systemd >= 242) and CPUQuotaPerSecUSec.

    systemd keeps the quota as a whole percentage of a CPU, so a per-second value that is
    not a multiple of 10 ms is rounded up (the exact value then goes to the files).
    """
    quota = quota or 0
    period = period or 0
    props: list[Property] = []
    if period and version >= 242:
        props.append(("CPUQuotaPeriodUSec", ("t", period)))
    if quota or period:
        per_sec = INFINITY
        if quota > 0:
            per_sec = quota * 1000000 // (period or DEFAULT_CPU_PERIOD)
            if per_sec % 10000:
                per_sec = (per_sec // 10000 + 1) * 10000
        props.append(("CPUQuotaPerSecUSec", ("t", per_sec)))
    return props


def range_to_bits(text: str) -> bytes:
    """runc's ``RangeToBits``: ``"0-2,7"`` -> the little-endian byte mask systemd's AllowedCPUs wants."""
    mask = 0
    for part in text.strip().split(","):
        part = part.strip()
        if not part:
            continue
        lo, sep, hi = part.partition("-")
        try:
            start = int(lo)
            end = int(hi) if sep else start
        except ValueError:
            raise CgroupConfigError(f"invalid cpuset range {text!r}") from None
        if start < 0 or end < start:
            raise CgroupConfigError(f"invalid cpuset range {text!r}")
        for bit in range(start, end + 1):
            mask |= 1 << bit
    if not mask:
        raise CgroupConfigError(f"invalid cpuset range {text!r}")
    return mask.to_bytes((mask.bit_length() + 7) // 8, "little")


def cpuset_properties(cpus: str | None, mems: str | None, version: int) -> list[Property]:
    """AllowedCPUs / AllowedMemoryNodes (systemd >= 244; older ones only get the files)."""
    if version < 244:
        return []
    props: list[Property] = []
    if cpus:
        props.append(("AllowedCPUs", ("ay", range_to_bits(cpus))))
    if mems:
        props.append(("AllowedMemoryNodes", ("ay", range_to_bits(mems))))
    return props


def v1_properties(
    r: LinuxResources, device_paths=(), *, version: int, proc_devices: str = "", devices: bool = True
) -> list[Property]:
    """runc's ``genV1ResourcesProperties`` (legacy and hybrid hosts)."""
    props: list[Property] = device_properties(r, device_paths, proc_devices) if devices else []
    m, c = r.memory, r.cpu
    if m is not None and m.limit:
        props.append(("MemoryLimit", ("t", _u64(m.limit))))
    if c is not None and c.shares:
        props.append(("CPUShares", ("t", c.shares)))
    if c is not None:
        props += cpu_quota_properties(c.quota, c.period, version)
    if r.block_io is not None and r.block_io.weight:
        props.append(("BlockIOWeight", ("t", r.block_io.weight)))
    if r.pids is not None and (r.pids.limit > 0 or r.pids.limit == -1):
        props.append(("TasksMax", ("t", _u64(r.pids.limit))))
    if c is not None:
        props += cpuset_properties(c.cpus, c.mems, version)
    return props


def v2_properties(
    r: LinuxResources, device_paths=(), *, version: int, proc_devices: str = "", devices: bool = True
) -> list[Property]:
    """runc's ``genV2ResourcesProperties`` (unified hosts), ``unified`` keys included."""
    from bock._cgroups.v2 import shares_to_weight, swap_to_v2

    props: list[Property] = device_properties(r, device_paths, proc_devices) if devices else []
    m, c = r.memory, r.cpu
    if m is not None:
        if m.limit:
            props.append(("MemoryMax", ("t", _u64(m.limit))))
        if m.reservation:
            props.append(("MemoryLow", ("t", _u64(m.reservation))))
        if m.swap:
            swap = swap_to_v2(m.swap, m.limit or 0)
            props.append(("MemorySwapMax", ("t", _u64(swap))))
    if c is not None:
        if c.shares:
            props.append(("CPUWeight", ("t", shares_to_weight(c.shares))))
        props += cpu_quota_properties(c.quota, c.period, version)
        props += cpuset_properties(c.cpus, c.mems, version)
    if r.pids is not None and (r.pids.limit > 0 or r.pids.limit == -1):
        props.append(("TasksMax", ("t", _u64(r.pids.limit))))
    props += unified_properties(r.unified, version)
    return props


def _limit(value: str, key: str) -> int:
    value = value.strip()
    if value == "max":
        return INFINITY
    try:
        n = int(value)
    except ValueError:
        raise CgroupConfigError(f"unified resource {key!r} value conversion error: {value!r}") from None
    if n < 0:
        raise CgroupConfigError(f"unified resource {key!r} value conversion error: {value!r}")
    return n


def unified_properties(unified: dict[str, str], version: int) -> list[Property]:
    """runc's ``unifiedResToSystemdProps``: the keys systemd also manages become properties.

    Every key is still written to its file afterwards, so unknown ones lose nothing.
    """
    props: list[Property] = []
    for key, value in unified.items():
        if key == "cpu.weight":
            props.append(("CPUWeight", ("t", _limit(value, key))))
        elif key == "cpu.max":
            fields = value.split()
            if not 1 <= len(fields) <= 2:
                raise CgroupConfigError(f"unified resource {key!r} value invalid: {value!r}")
            quota = -1 if fields[0] == "max" else _limit(fields[0], key)
            period = _limit(fields[1], key) if len(fields) == 2 else 0
            props += cpu_quota_properties(quota, period, version)
        elif key in ("cpuset.cpus", "cpuset.mems"):
            if version >= 244:
                name = "AllowedCPUs" if key == "cpuset.cpus" else "AllowedMemoryNodes"
                props.append((name, ("ay", range_to_bits(value))))
        elif key in ("memory.min", "memory.low", "memory.high", "memory.max", "memory.swap.max"):
            name = {
                "memory.min": "MemoryMin",
                "memory.low": "MemoryLow",
                "memory.high": "MemoryHigh",
                "memory.max": "MemoryMax",
                "memory.swap.max": "MemorySwapMax",
            }[key]
            props.append((name, ("t", _limit(value, key))))
        elif key == "pids.max":
            props.append(("TasksMax", ("t", _limit(value, key))))
    return props


# --- devices ------------------------------------------------------------------------


def device_group(kind: str, major: int, proc_devices: str) -> str:
    """``char-pts`` for ``c 136``: the group name systemd wants for a ``major:*`` rule."""
    section = "Character devices:" if kind == "c" else "Block devices:"
    prefix = "char-" if kind == "c" else "block-"
    inside = False
    for line in proc_devices.splitlines():
        line = line.strip()
        if line.endswith(":"):
            inside = line == section
            continue
        if inside and line:
            num, _, name = line.partition(" ")
            if num.isdigit() and int(num) == major:
                return prefix + name.strip()
    return ""


def device_properties(
    r: LinuxResources, device_paths=(), proc_devices: str = "", exists=os.path.exists
) -> list[Property]:
    """runc's ``generateDeviceProperties``: DevicePolicy=strict and the DeviceAllow= list.

    systemd has no deny lists: a deny-list config becomes allow-all if it denies nothing,
    else a temporary deny-all (the exact rules are written to the cgroup files after).
    ``*:n`` rules, majors without a /proc/devices group and ``n:m`` devices that this host
    does not have are left to the files too.
    """
    from bock._cgroups.devices import Emulator, perms_str, rules_from_spec

    emu = Emulator.from_rules(rules_from_spec(r.devices, device_paths))
    props: list[Property] = [("DevicePolicy", ("s", "strict")), ("DeviceAllow", ("a(ss)", []))]
    if emu.default_allow:
        if not emu.rules:
            return [("DevicePolicy", ("s", "auto")), ("DeviceAllow", ("a(ss)", []))]
        return props
    allow = []
    for (kind, major, minor), perms in emu.ordered():
        if major < 0:
            if minor >= 0:
                continue  # "c *:5": systemd cannot say it
            path = ("char" if kind == "c" else "block") + "-*"
        elif minor < 0:
            path = device_group(kind, major, proc_devices)
            if not path:
                continue
        else:
            path = f"/dev/{'char' if kind == 'c' else 'block'}/{major}:{minor}"
            # runc skips a node neither /dev nor /sys/dev knows (systemd would warn about it)
            if not (exists(path) or exists("/sys" + path)):
                continue
        allow.append((path, perms_str(perms)))
    props.append(("DeviceAllow", ("a(ss)", allow)))
    return props

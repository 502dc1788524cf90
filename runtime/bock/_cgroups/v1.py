"""Resources through the cgroup v1 files (runc 1.1's libcontainer/cgroups/fs).

Each subsystem has a predicate (does the config use it?) and a setter. A subsystem
the config uses but the host has not mounted is an error (runc: "cannot set X limit:
container could not join or create cgroup"); one it does not use is ignored.
"""

from __future__ import annotations

import errno
import os
import time

from bock._cgroups import fsio
from bock._cgroups.errors import CgroupError, LimitError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from bock._spec.resources import LinuxResources

# --- predicates ------------------------------------------------------------------


def uses_cpuset(r: LinuxResources) -> bool:
    return bool(r.cpu and (r.cpu.cpus or r.cpu.mems))


def uses_memory(r: LinuxResources) -> bool:
    m = r.memory
    return bool(
        m
        and (
            m.limit
            or m.reservation
            or m.swap
            or (m.swappiness is not None and m.swappiness != -1)
            or m.disable_oom_killer
        )
    )


def uses_cpu(r: LinuxResources) -> bool:
    c = r.cpu
    return bool(
        c
        and (
            c.shares
            or c.quota
            or c.period
            or c.burst is not None
            or c.realtime_runtime
            or c.realtime_period
            or c.idle is not None
        )
    )


def uses_pids(r: LinuxResources) -> bool:
    return bool(r.pids and r.pids.limit)


def uses_blkio(r: LinuxResources) -> bool:
    return bool(r.block_io and r.block_io.is_set())


def uses_hugetlb(r: LinuxResources) -> bool:
    return bool(r.hugepage_limits)


def uses_net_cls(r: LinuxResources) -> bool:
    return bool(r.network and r.network.class_id)


def uses_net_prio(r: LinuxResources) -> bool:
    return bool(r.network and r.network.priorities)


def uses_rdma(r: LinuxResources) -> bool:
    return bool(r.rdma)


# --- setters ---------------------------------------------------------------------


def set_cpuset(path: str, r: LinuxResources) -> None:
    if r.cpu.cpus:
        fsio.write(path, "cpuset.cpus", r.cpu.cpus)
    if r.cpu.mems:
        fsio.write(path, "cpuset.mems", r.cpu.mems)


def cpuset_inherit(path: str) -> None:
    """A new cpuset cgroup has empty cpus/mems (no task could join): copy the parent's."""
    parent = os.path.dirname(path)
    for name in ("cpuset.cpus", "cpuset.mems"):
        if not fsio.read(path, name).strip():
            value = fsio.read(parent, name).strip()
            if not value and os.path.exists(os.path.join(os.path.dirname(parent), name)):
                cpuset_inherit(parent)
                value = fsio.read(parent, name).strip()
            fsio.write(path, name, value)


def set_devices(path: str, r: LinuxResources, device_paths=()) -> None:
    from bock._cgroups.devices import Emulator, cgroup_string, rules_from_spec

    current = Emulator.from_list(fsio.read(path, "devices.list"))
    target = Emulator.from_rules(rules_from_spec(r.devices, device_paths))
    for rule in current.transition(target):
        fsio.write(path, "devices.allow" if rule[4] else "devices.deny", cgroup_string(rule))
    after = Emulator.from_list(fsio.read(path, "devices.list"))
    if not target.default_allow and after != target:
        raise CgroupError("resulting devices cgroup doesn't precisely match target")
    if target.default_allow != after.default_allow:
        raise CgroupError("resulting devices cgroup doesn't match target mode")


def _set_memory_limit(path: str, value: int) -> None:
    if not value:
        return
    try:
        fsio.write(path, "memory.limit_in_bytes", str(value))
    except OSError as e:
        if e.errno != errno.EBUSY:
            raise
        usage = fsio.read_uint(path, "memory.usage_in_bytes")
        peak = fsio.read_uint(path, "memory.max_usage_in_bytes")
        raise LimitError(
            f"unable to set memory limit to {value} (current usage: {usage}, peak usage: {peak})"
        ) from None


def set_memory(path: str, r: LinuxResources) -> None:
    m = r.memory
    limit, swap = m.limit or 0, m.swap or 0
    if m.check_before_update and (limit > 0 or swap > 0):
        # The spec's checkBeforeUpdate: refuse a limit at or below usage before writing it.
        usage = fsio.read_uint(path, "memory.usage_in_bytes")
        if swap > 0 and swap <= usage:
            raise LimitError(f"rejecting memory+swap limit {swap} <= usage {usage}")
        if limit > 0 and limit <= usage:
            raise LimitError(f"rejecting memory limit {limit} <= usage {usage}")
    has_memsw = fsio.exists(path, "memory.memsw.limit_in_bytes")
    if limit == -1 and swap == 0 and has_memsw:
        swap = -1
    if swap and not has_memsw:
        raise LimitError(
            "cannot set memory+swap limit: memory.memsw.limit_in_bytes is missing"
            " (swap accounting is disabled)"
        )
    done = False
    if limit and swap:
        # memsw must stay >= limit at every step: raise swap first when it grows.
        current = fsio.read_uint(path, "memory.limit_in_bytes")
        if swap == -1 or current < swap:
            fsio.write(path, "memory.memsw.limit_in_bytes", str(swap))
            _set_memory_limit(path, limit)
            done = True
    if not done:
        _set_memory_limit(path, limit)
        if swap:
            fsio.write(path, "memory.memsw.limit_in_bytes", str(swap))
    if m.reservation:
        fsio.write(path, "memory.soft_limit_in_bytes", str(m.reservation))
    if m.disable_oom_killer:
        fsio.write(path, "memory.oom_control", "1")
    if m.swappiness is not None and m.swappiness != -1:
        if not 0 <= m.swappiness <= 100:
            raise LimitError(f"invalid memory swappiness value: {m.swappiness} (valid range is 0-100)")
        fsio.write(path, "memory.swappiness", str(m.swappiness))


def _set_rt(path: str, c) -> None:
    period = ""
    if c.realtime_period:
        period = fsio.write_or_defer(
            path, "cpu.rt_period_us", str(c.realtime_period), bool(c.realtime_runtime)
        )
    if c.realtime_runtime:
        fsio.write(path, "cpu.rt_runtime_us", str(c.realtime_runtime))
        if period:
            fsio.write(path, "cpu.rt_period_us", period)


def set_cpu(path: str, r: LinuxResources) -> None:
    c = r.cpu
    if c.shares:
        fsio.write(path, "cpu.shares", str(c.shares))
        got = fsio.read_uint(path, "cpu.shares")
        if c.shares > got:
            raise LimitError(f"the maximum allowed cpu-shares is {got}")
        if c.shares < got:
            raise LimitError(f"the minimum allowed cpu-shares is {got}")
    period = burst = ""
    if c.period:
        period = fsio.write_or_defer(path, "cpu.cfs_period_us", str(c.period), bool(c.quota))
    if c.burst is not None:
        burst = fsio.write_or_defer(path, "cpu.cfs_burst_us", str(c.burst), bool(c.quota))
    if c.quota:
        fsio.write(path, "cpu.cfs_quota_us", str(c.quota))
        if period:
            fsio.write(path, "cpu.cfs_period_us", period)
        if burst:
            fsio.write(path, "cpu.cfs_burst_us", burst)
    if c.idle is not None:
        fsio.write(path, "cpu.idle", str(c.idle))
    _set_rt(path, c)


def set_pids(path: str, r: LinuxResources) -> None:
    limit = r.pids.limit
    fsio.write(path, "pids.max", str(limit) if limit > 0 else "max")


def set_blkio(path: str, r: LinuxResources) -> None:
    b = r.block_io
    if fsio.exists(path, "blkio.weight"):
        weight_file, weight_device_file = "blkio.weight", "blkio.weight_device"
    else:
        weight_file, weight_device_file = "blkio.bfq.weight", "blkio.bfq.weight_device"
    if b.weight:
        fsio.write(path, weight_file, str(b.weight))
    if b.leaf_weight:
        fsio.write(path, "blkio.leaf_weight", str(b.leaf_weight))
    for wd in b.weight_device:
        if wd.weight:
            fsio.write(path, weight_device_file, f"{wd.major}:{wd.minor} {wd.weight}")
        if wd.leaf_weight:
            fsio.write(path, "blkio.leaf_weight_device", f"{wd.major}:{wd.minor} {wd.leaf_weight}")
    for name, devices in (
        ("read_bps_device", b.throttle_read_bps_device),
        ("write_bps_device", b.throttle_write_bps_device),
        ("read_iops_device", b.throttle_read_iops_device),
        ("write_iops_device", b.throttle_write_iops_device),
    ):
        for td in devices:
            fsio.write(path, f"blkio.throttle.{name}", f"{td.major}:{td.minor} {td.rate}")


def set_hugetlb(path: str, r: LinuxResources, suffix: str = ".limit_in_bytes") -> None:
    rsvd = True
    for h in r.hugepage_limits:
        prefix = f"hugetlb.{h.page_size}"
        fsio.write(path, prefix + suffix, str(h.limit))
        if rsvd:
            try:
                fsio.write(path, prefix + ".rsvd" + suffix, str(h.limit))
            except OSError as e:
                if e.errno != errno.ENOENT:
                    raise
                rsvd = False


def set_net_cls(path: str, r: LinuxResources) -> None:
    fsio.write(path, "net_cls.classid", str(r.network.class_id))


def set_net_prio(path: str, r: LinuxResources) -> None:
    for p in r.network.priorities:
        fsio.write(path, "net_prio.ifpriomap", f"{p.name} {p.priority}")


def set_rdma(path: str, r: LinuxResources) -> None:
    for device, limits in r.rdma.items():
        line = device
        if limits.hca_handles is not None:
            line += f" hca_handle={limits.hca_handles}"
        if limits.hca_objects is not None:
            line += f" hca_object={limits.hca_objects}"
        fsio.write(path, "rdma.max", line)


# In runc's order (cpuset first: its cpus/mems must be valid before anything joins).
SETTERS = (
    ("cpuset", uses_cpuset, set_cpuset),
    ("devices", None, set_devices),
    ("memory", uses_memory, set_memory),
    ("cpu", uses_cpu, set_cpu),
    ("pids", uses_pids, set_pids),
    ("blkio", uses_blkio, set_blkio),
    ("hugetlb", uses_hugetlb, set_hugetlb),
    ("net_cls", uses_net_cls, set_net_cls),
    ("net_prio", uses_net_prio, set_net_prio),
    ("rdma", uses_rdma, set_rdma),
)


def freeze(path: str) -> None:
    """runc's v1 freeze loop: FREEZING can stall on a racing fork; re-kick it now and then."""
    try:
        for i in range(1000):
            if i % 50 == 49:
                fsio.write(path, "freezer.state", "THAWED")
                time.sleep(0.01)
            fsio.write(path, "freezer.state", "FROZEN")
            if i % 25 == 24:
                time.sleep(0.00001)
            state = fsio.read(path, "freezer.state").strip()
            if state == "FROZEN":
                return
            if state != "FREEZING":
                raise CgroupError(f"unexpected state {state} while freezing")
        raise CgroupError("unable to freeze")
    except BaseException:
        try:
            fsio.write(path, "freezer.state", "THAWED")
        except OSError:
            pass
        raise


def freezer_state(path: str) -> str:
    while True:
        try:
            state = fsio.read(path, "freezer.state").strip()
        except OSError as e:
            if e.errno in (errno.ENOENT, errno.ENODEV):
                return ""
            raise
        if state == "FREEZING":
            time.sleep(0.001)
            continue
        if state == "FROZEN":
            try:
                return "FROZEN" if fsio.read(path, "freezer.self_freezing").strip() == "1" else "THAWED"
            except OSError:
                return "FROZEN"
        return state

"""Resources through the cgroup v2 files (runc's libcontainer/cgroups/fs2).

The OCI resources were designed for v1; they are converted as runc 1.1 does
(cpu.weight from shares, io.weight from blkio weight, swap as memory+swap minus
memory). What v2 cannot express (net_cls/net_prio, realtime, swappiness, disabling
the OOM killer) is an error when the config asks for it, never silently dropped.
"""

from __future__ import annotations

import errno
import os
import time

from bock._cgroups import fsio, v1
from bock._cgroups.errors import CgroupConfigError, CgroupError, LimitError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from bock._spec.resources import LinuxResources


def shares_to_weight(shares: int) -> int:
    """runc 1.1's cpu.shares [2, 262144] -> cpu.weight [1, 10000]."""
    if not shares:
        return 0
    return 1 + ((shares - 2) * 9999) // 262142


def blkio_to_io_weight(weight: int) -> int:
    """blkio.weight [10, 1000] -> io.weight [1, 10000]."""
    if not weight:
        return 0
    return 1 + (weight - 10) * 9999 // 990


def swap_to_v2(swap: int, memory: int) -> int:
    """OCI ``swap`` is memory+swap; v2's memory.swap.max is swap alone (runc's conversion)."""
    if memory == -1 and swap == 0:
        return -1
    if swap in (-1, 0):
        return swap
    if memory in (0, -1):
        raise LimitError("unable to set swap limit without memory limit")
    if memory < 0:
        raise LimitError(f"invalid memory value: {memory}")
    if swap < memory:
        raise LimitError("memory+swap limit should be >= memory limit")
    return swap - memory


def _num(value: int) -> str:
    return "max" if value == -1 else str(value)


def controllers(path: str) -> set[str]:
    try:
        return set(fsio.read(path, "cgroup.controllers").split())
    except OSError:
        return set()


def _need(avail: set[str], ctrl: str, path: str) -> None:
    if ctrl not in avail:
        raise LimitError(
            f"cannot set {ctrl} limit: the {ctrl} controller is not available in {path}"
            f" (cgroup.controllers: {' '.join(sorted(avail)) or 'none'})"
        )


def set_memory(path: str, r: LinuxResources, avail: set[str]) -> None:
    m = r.memory
    if m is None:
        return
    if m.swappiness is not None and m.swappiness != -1:
        raise LimitError("memory.swappiness cannot be set on cgroup v2 (the kernel has no such file)")
    if m.disable_oom_killer:
        raise LimitError("disableOOMKiller cannot be applied on cgroup v2 (no memory.oom_control)")
    limit, swap, low = m.limit or 0, m.swap or 0, m.reservation or 0
    if not (limit or swap or low):
        return
    _need(avail, "memory", path)
    if limit > 0 or swap > 0:
        # The kernel would reclaim and then OOM-kill the container: refuse, like runc's
        # checkBeforeUpdate, with the numbers.
        usage = fsio.read_uint(path, "memory.current")
        if swap > 0 and swap <= usage:
            raise LimitError(f"rejecting memory+swap limit {swap} <= usage {usage}")
        if limit > 0 and limit <= usage:
            raise LimitError(f"unable to set memory limit to {limit} (current usage: {usage})")
    v2swap = swap_to_v2(swap, limit)
    if v2swap or swap > 0:
        try:
            fsio.write(path, "memory.swap.max", _num(v2swap))
        except OSError as e:
            if not (e.errno == errno.ENOENT and v2swap in (-1, 0)):
                raise
    if limit:
        fsio.write(path, "memory.max", _num(limit))
    if low:
        fsio.write(path, "memory.low", _num(low))


def set_cpu(path: str, r: LinuxResources, avail: set[str]) -> None:
    c = r.cpu
    if c is None:
        return
    if c.realtime_runtime or c.realtime_period:
        raise LimitError(
            "realtime CPU limits (realtimeRuntime/realtimePeriod) are not supported on cgroup v2"
        )
    if c.idle is not None:
        fsio.write(path, "cpu.idle", str(c.idle))
    if c.shares or c.quota or c.period or c.burst is not None:
        _need(avail, "cpu", path)
    if c.shares:
        fsio.write(path, "cpu.weight", str(shares_to_weight(c.shares)))
    burst = ""
    if c.burst is not None:
        burst = fsio.write_or_defer(path, "cpu.max.burst", str(c.burst), bool(c.quota))
    if c.quota or c.period:
        value = (str(c.quota) if c.quota and c.quota > 0 else "max") + f" {c.period or 100000}"
        fsio.write(path, "cpu.max", value)
        if burst:
            fsio.write(path, "cpu.max.burst", burst)
    if c.cpus or c.mems:
        _need(avail, "cpuset", path)
        v1.set_cpuset(path, r)


def set_io(path: str, r: LinuxResources, avail: set[str]) -> None:
    b = r.block_io
    if b is None or not b.is_set():
        return
    _need(avail, "io", path)
    bfq = fsio.exists(path, "io.bfq.weight")
    if b.weight:
        if bfq:
            fsio.write(path, "io.bfq.weight", str(b.weight))
        else:
            fsio.write(path, "io.weight", str(blkio_to_io_weight(b.weight)))
    for wd in b.weight_device:
        if wd.weight:
            if bfq:
                fsio.write(path, "io.bfq.weight", f"{wd.major}:{wd.minor} {wd.weight}")
            else:
                fsio.write(path, "io.weight", f"{wd.major}:{wd.minor} {blkio_to_io_weight(wd.weight)}")
    for key, devices in (
        ("rbps", b.throttle_read_bps_device),
        ("wbps", b.throttle_write_bps_device),
        ("riops", b.throttle_read_iops_device),
        ("wiops", b.throttle_write_iops_device),
    ):
        for td in devices:
            fsio.write(path, "io.max", f"{td.major}:{td.minor} {key}={td.rate}")


def set_devices(path: str, r: LinuxResources, device_paths=()) -> None:
    from bock._cgroups import bpf  # ctypes: only when a v2 device program is really loaded
    from bock._cgroups.devices import device_filter, rules_from_spec

    insns = device_filter(rules_from_spec(r.devices, device_paths))
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        bpf.attach_device_filter(fd, insns)
    finally:
        os.close(fd)


def set_unified(path: str, unified: dict[str, str], avail: set[str]) -> None:
    for key, value in unified.items():
        if "/" in key:
            raise CgroupConfigError(f'unified resource "{key}" must be a file name (no slashes)')
        try:
            # Multi-line values (io.max ...) take one write per line.
            for line in value.split("\n") if "\n" in value else (value,):
                if line:
                    fsio.write(path, key, line)
        except OSError as e:
            if e.errno in (errno.EPERM, errno.EACCES, errno.ENOENT):
                ctrl, dot, _ = key.partition(".")
                if not dot:
                    raise CgroupConfigError(
                        f'unified resource "{key}" must be in the form CONTROLLER.PARAMETER'
                    ) from None
                if ctrl not in avail and ctrl != "cgroup":
                    raise LimitError(
                        f'unified resource "{key}" can\'t be set: controller "{ctrl}" not available'
                    ) from None
            raise LimitError(f'unable to set unified resource "{key}": {e.strerror}') from None


def set_all(path: str, r: LinuxResources, *, devices: bool = True, device_paths=()) -> None:
    """runc fs2's ``Set`` order: pids, memory, io, cpu(+cpuset), devices, hugetlb, rdma, unified."""
    avail = controllers(path)
    if r.network and (r.network.class_id or r.network.priorities):
        raise LimitError("network classID/priorities (net_cls/net_prio) are not supported on cgroup v2")
    if r.pids and r.pids.limit:
        _need(avail, "pids", path)
        v1.set_pids(path, r)
    set_memory(path, r, avail)
    set_io(path, r, avail)
    set_cpu(path, r, avail)
    if devices:
        set_devices(path, r, device_paths)
    if r.hugepage_limits:
        _need(avail, "hugetlb", path)
        v1.set_hugetlb(path, r, ".max")
    if r.rdma:
        _need(avail, "rdma", path)
        v1.set_rdma(path, r)
    if r.unified:
        set_unified(path, r.unified, avail)


def enable_controllers(root: str, path: str, wanted: set[str] | None = None) -> None:
    """Enable controllers in every ancestor's ``cgroup.subtree_control`` from ``root`` down.

    ``wanted`` None = every controller the root offers (runc's CreateCgroupPath). Errors
    are ignored one controller at a time, as runc does; a limit on a controller that
    did not make it in fails later with a clear message.
    """
    try:
        offered = fsio.read(root, "cgroup.controllers").split()
    except OSError:
        return
    ctrls = [c for c in offered if wanted is None or c in wanted]
    if not ctrls:
        return
    rel = os.path.relpath(os.path.dirname(path), root)
    current = root
    parts = [] if rel == "." else rel.split("/")
    for part in [None, *parts]:
        if part is not None:
            current = f"{current}/{part}"
        have = set(fsio.read(current, "cgroup.subtree_control").split())
        missing = [c for c in ctrls if c not in have]
        if not missing:
            continue
        try:
            fsio.write(current, "cgroup.subtree_control", " ".join("+" + c for c in missing))
        except OSError:
            for c in missing:
                try:
                    fsio.write(current, "cgroup.subtree_control", "+" + c)
                except OSError:
                    pass


def freeze(path: str, frozen: bool) -> None:
    try:
        fsio.write(path, "cgroup.freeze", "1" if frozen else "0")
    except OSError as e:
        if not frozen:
            return
        raise CgroupError(f"freezer not supported: {e.strerror}") from None
    if not frozen:
        return
    for _ in range(1000):
        if is_frozen(path):
            return
        time.sleep(0.01)
    raise CgroupError("timeout of 10s reached waiting for the cgroup to freeze")


def is_frozen(path: str) -> bool:
    try:
        if fsio.read(path, "cgroup.freeze").strip() != "1":
            return False
        return fsio.read_kv(path, "cgroup.events").get("frozen") == 1
    except OSError:
        return False

"""Cgroup statistics in the shape of runc's ``events --stats`` "data" (runc types/events.go).

Keys with Go's ``omitempty`` are left out when zero, as runc's JSON does.
"""

from __future__ import annotations

import os

from bock._cgroups import fsio

_NS_PER_SEC = 1_000_000_000


def _clk_tck() -> int:
    try:
        return os.sysconf("SC_CLK_TCK")
    except (ValueError, OSError):
        return 100


def _omit(d: dict, *keys: str) -> dict:
    for k in keys:
        if not d.get(k):
            d.pop(k, None)
    return d


def _uint(path: str | None, name: str) -> int:
    if not path:
        return 0
    try:
        return fsio.read_uint(path, name)
    except (OSError, ValueError):
        return 0


def _kv(path: str | None, name: str) -> dict[str, int]:
    if not path:
        return {}
    try:
        return fsio.read_kv(path, name)
    except OSError:
        return {}


def _mem_entry(limit: int, usage: int, peak: int, failcnt: int) -> dict:
    return _omit({"limit": limit, "usage": usage, "max": peak, "failcnt": failcnt}, "usage", "max")


def _throttling(cpu_stat: dict[str, int], scale: int, time_key: str) -> dict:
    return _omit(
        {
            "periods": cpu_stat.get("nr_periods", 0),
            "throttledPeriods": cpu_stat.get("nr_throttled", 0),
            "throttledTime": cpu_stat.get(time_key, 0) * scale,
        },
        "periods",
        "throttledPeriods",
        "throttledTime",
    )


def _page_sizes() -> list[str]:
    """runc's HugePageSizes: hugepages-2048kB -> "2MB", hugepages-1048576kB -> "1GB"."""
    out = []
    try:
        names = os.listdir("/sys/kernel/mm/hugepages")
    except OSError:
        return out
    units = ("KB", "MB", "GB", "TB", "PB")
    for name in sorted(names):
        size = int(name.removeprefix("hugepages-").removesuffix("kB"))
        unit = 0
        while size >= 1024 and size % 1024 == 0 and unit < len(units) - 1:
            size //= 1024
            unit += 1
        out.append(f"{size}{units[unit]}")
    return out


# runc 1.1's order: the first group whose first file has entries wins.
_BLKIO_GROUPS = (
    (
        ("blkio.bfq.sectors_recursive", "sectorsRecursive"),
        ("blkio.bfq.io_service_time_recursive", "ioServiceTimeRecursive"),
        ("blkio.bfq.io_wait_time_recursive", "ioWaitTimeRecursive"),
        ("blkio.bfq.io_merged_recursive", "ioMergedRecursive"),
        ("blkio.bfq.io_queued_recursive", "ioQueueRecursive"),
        ("blkio.bfq.time_recursive", "ioTimeRecursive"),
        ("blkio.bfq.io_serviced_recursive", "ioServicedRecursive"),
        ("blkio.bfq.io_service_bytes_recursive", "ioServiceBytesRecursive"),
    ),
    (
        ("blkio.bfq.io_serviced_recursive", "ioServicedRecursive"),
        ("blkio.bfq.io_service_bytes_recursive", "ioServiceBytesRecursive"),
    ),
    (
        ("blkio.sectors_recursive", "sectorsRecursive"),
        ("blkio.io_service_time_recursive", "ioServiceTimeRecursive"),
        ("blkio.io_wait_time_recursive", "ioWaitTimeRecursive"),
        ("blkio.io_merged_recursive", "ioMergedRecursive"),
        ("blkio.io_queued_recursive", "ioQueueRecursive"),
        ("blkio.time_recursive", "ioTimeRecursive"),
        ("blkio.io_serviced_recursive", "ioServicedRecursive"),
        ("blkio.io_service_bytes_recursive", "ioServiceBytesRecursive"),
    ),
    (
        ("blkio.throttle.io_serviced_recursive", "ioServicedRecursive"),
        ("blkio.throttle.io_service_bytes_recursive", "ioServiceBytesRecursive"),
    ),
    (
        ("blkio.throttle.io_serviced", "ioServicedRecursive"),
        ("blkio.throttle.io_service_bytes", "ioServiceBytesRecursive"),
    ),
)


def _blkio_entries(path: str, name: str) -> list[dict] | None:
    try:
        text = fsio.read(path, name)
    except OSError:
        return None
    entries = []
    for line in text.splitlines():
        fields = line.replace(":", " ").split()
        if len(fields) < 3:
            continue  # "Total N"
        if len(fields) == 3:  # sectors / time: "maj:min value"
            entry = {"major": int(fields[0]), "minor": int(fields[1]), "value": int(fields[2])}
        else:
            entry = {
                "major": int(fields[0]),
                "minor": int(fields[1]),
                "op": fields[2],
                "value": int(fields[3]),
            }
        entries.append(_omit(entry, "major", "minor", "op", "value"))
    return entries or None


def _blkio_v1(path: str | None) -> dict:
    if not path:
        return {}
    for group in _BLKIO_GROUPS:
        out: dict[str, list] = {}
        for i, (name, key) in enumerate(group):
            entries = _blkio_entries(path, name)
            if entries is None:
                if i == 0:
                    break
                return out
            out[key] = entries
        else:
            return out
    return {}


def _cpuset_list(text: str) -> list[int]:
    out: list[int] = []
    for part in text.strip().split(","):
        if not part:
            continue
        lo, _, hi = part.partition("-")
        out.extend(range(int(lo), int(hi or lo) + 1))
    return out


def _cpuset_v1(path: str | None) -> dict:
    if not path:
        return {}
    out: dict = {}
    for key, name in (("cpus", "cpuset.cpus"), ("mems", "cpuset.mems")):
        try:
            out[key] = _cpuset_list(fsio.read(path, name))
        except (OSError, ValueError):
            pass
    for key in (
        "cpu_exclusive",
        "mem_hardwall",
        "mem_exclusive",
        "memory_migrate",
        "memory_spread_page",
        "memory_spread_slab",
        "memory_pressure",
        "sched_load_balance",
    ):
        out[key] = _uint(path, f"cpuset.{key}")
    try:
        out["sched_relax_domain_level"] = int(fsio.read(path, "cpuset.sched_relax_domain_level"))
    except (OSError, ValueError):
        out["sched_relax_domain_level"] = 0
    return _omit(out, "cpus", "mems")


def _hugetlb_v2(path: str) -> dict:
    out = {}
    for size in _page_sizes():
        if fsio.exists(path, f"hugetlb.{size}.current"):
            usage = _uint(path, f"hugetlb.{size}.current")
            failcnt = _kv(path, f"hugetlb.{size}.events").get("max", 0)
            out[size] = _omit({"usage": usage, "failcnt": failcnt}, "usage")
    return out


def v1_stats(paths: dict[str, str], unified: str | None = None) -> dict:
    cpu_path, acct = paths.get("cpu"), paths.get("cpuacct")
    usage: dict = {"total": _uint(acct, "cpuacct.usage")}
    try:
        usage["percpu"] = [int(x) for x in fsio.read(acct, "cpuacct.usage_percpu").split()] if acct else []
    except OSError:
        usage["percpu"] = []
    try:
        rows = (
            [line.split() for line in fsio.read(acct, "cpuacct.usage_all").splitlines()[1:]] if acct else []
        )
        usage["percpu_kernel"] = [int(r[2]) for r in rows]
        usage["percpu_user"] = [int(r[1]) for r in rows]
    except (OSError, ValueError, IndexError):
        pass
    ticks = _kv(acct, "cpuacct.stat")
    tck = _clk_tck()
    usage["kernel"] = ticks.get("system", 0) * _NS_PER_SEC // tck
    usage["user"] = ticks.get("user", 0) * _NS_PER_SEC // tck
    _omit(usage, "total", "percpu", "percpu_kernel", "percpu_user")
    cpu = {"usage": usage, "throttling": _throttling(_kv(cpu_path, "cpu.stat"), 1, "throttled_time")}

    mem = paths.get("memory")
    raw = _kv(mem, "memory.stat")

    def entry(prefix: str) -> dict:
        return _mem_entry(
            _uint(mem, prefix + ".limit_in_bytes"),
            _uint(mem, prefix + ".usage_in_bytes"),
            _uint(mem, prefix + ".max_usage_in_bytes"),
            _uint(mem, prefix + ".failcnt"),
        )

    memory = {
        "cache": raw.get("cache", 0),
        "usage": entry("memory"),
        "swap": entry("memory.memsw"),
        "kernel": entry("memory.kmem"),
        "kernelTCP": entry("memory.kmem.tcp"),
        "raw": raw,
    }
    _omit(memory, "cache", "raw")

    pids_path = paths.get("pids")
    limit = _uint(pids_path, "pids.max")
    pids = _omit(
        {"current": _uint(pids_path, "pids.current"), "limit": 0 if limit == (1 << 64) - 1 else limit},
        "current",
        "limit",
    )
    hpath = paths.get("hugetlb")
    if hpath:
        hugetlb = {
            size: _omit(
                {
                    "usage": _uint(hpath, f"hugetlb.{size}.usage_in_bytes"),
                    "max": _uint(hpath, f"hugetlb.{size}.max_usage_in_bytes"),
                    "failcnt": _uint(hpath, f"hugetlb.{size}.failcnt"),
                },
                "usage",
                "max",
            )
            for size in _page_sizes()
        }
    else:  # a hybrid host may have hugetlb in its cgroup2 hierarchy only
        hugetlb = _hugetlb_v2(unified) if unified else {}
    return {
        "cpu": cpu,
        "cpuset": _cpuset_v1(paths.get("cpuset")),
        "memory": memory,
        "pids": pids,
        "blkio": _blkio_v1(paths.get("blkio")),
        "hugetlb": hugetlb,
        "intel_rdt": {},
        "network_interfaces": None,
    }


def v2_stats(path: str) -> dict:
    st = _kv(path, "cpu.stat")
    usage = _omit(
        {
            "total": st.get("usage_usec", 0) * 1000,
            "kernel": st.get("system_usec", 0) * 1000,
            "user": st.get("user_usec", 0) * 1000,
        },
        "total",
    )
    cpu = {"usage": usage, "throttling": _throttling(st, 1000, "throttled_usec")}
    raw = _kv(path, "memory.stat")
    mem_usage = _mem_entry(
        _uint(path, "memory.max"), _uint(path, "memory.current"), _uint(path, "memory.peak"), 0
    )
    swap_only = _uint(path, "memory.swap.current")
    swap_limit = _uint(path, "memory.swap.max")
    if swap_limit != (1 << 64) - 1 and mem_usage["limit"] != (1 << 64) - 1:
        swap_limit += mem_usage["limit"]
    memory = {
        "cache": raw.get("file", 0),
        "usage": mem_usage,
        "swap": _mem_entry(swap_limit, swap_only + mem_usage.get("usage", 0), 0, 0),
        "kernel": {"limit": 0, "failcnt": 0},
        "kernelTCP": {"limit": 0, "failcnt": 0},
        "raw": raw,
    }
    _omit(memory, "cache", "raw")
    if fsio.exists(path, "pids.current"):
        limit = _uint(path, "pids.max")
        pids = {"current": _uint(path, "pids.current"), "limit": 0 if limit == (1 << 64) - 1 else limit}
    else:
        try:
            pids = {"current": len(fsio.read(path, "cgroup.procs").split()), "limit": 0}
        except OSError:
            pids = {}
    _omit(pids, "current", "limit")
    blkio: dict[str, list] = {}
    try:
        text = fsio.read(path, "io.stat")
    except OSError:
        text = ""
    ops = {
        "rbytes": ("ioServiceBytesRecursive", "Read"),
        "wbytes": ("ioServiceBytesRecursive", "Write"),
        "rios": ("ioServicedRecursive", "Read"),
        "wios": ("ioServicedRecursive", "Write"),
    }
    for line in text.splitlines():
        dev, *items = line.split()
        major, _, minor = dev.partition(":")
        for item in items:
            k, _, v = item.partition("=")
            if k in ops:
                key, op = ops[k]
                entry = {"major": int(major), "minor": int(minor), "op": op, "value": int(v)}
                blkio.setdefault(key, []).append(_omit(entry, "major", "minor", "value"))
    hugetlb = _hugetlb_v2(path)
    return {
        "cpu": cpu,
        "cpuset": {},
        "memory": memory,
        "pids": pids,
        "blkio": blkio,
        "hugetlb": hugetlb,
        "intel_rdt": {},
        "network_interfaces": None,
    }

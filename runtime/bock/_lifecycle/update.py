"""``bock update``: change a running container's resources live (``--resources`` JSON or flags).

The new values are applied through the cgroup manager's ``set`` and merged into the
``linux.resources`` recorded in state.json, so later ``update`` calls and ``events``
see them.
"""

from __future__ import annotations

from bock._lifecycle.ps import manager_for
from bock._state import Container
from bock.errors import BockError, ConfigError, ContainerNotRunning, UsageError

# flag -> (JSON path under linux.resources, kind)
FLAG_PATHS: dict[str, tuple[tuple[str, ...], str]] = {
    "memory": (("memory", "limit"), "bytes"),
    "memory-reservation": (("memory", "reservation"), "bytes"),
    "memory-swap": (("memory", "swap"), "bytes"),
    "kernel-memory": (("memory", "kernel"), "bytes"),
    "kernel-memory-tcp": (("memory", "kernelTCP"), "bytes"),
    "cpu-shares": (("cpu", "shares"), "uint"),
    "cpu-quota": (("cpu", "quota"), "int"),
    "cpu-period": (("cpu", "period"), "uint"),
    "cpu-rt-period": (("cpu", "realtimePeriod"), "uint"),
    "cpu-rt-runtime": (("cpu", "realtimeRuntime"), "int"),
    "cpuset-cpus": (("cpu", "cpus"), "str"),
    "cpuset-mems": (("cpu", "mems"), "str"),
    "pids-limit": (("pids", "limit"), "int"),
    "blkio-weight": (("blockIO", "weight"), "uint"),
    "l3-cache-schema": (("intelRdt", "l3CacheSchema"), "rdt"),
    "mem-bw-schema": (("intelRdt", "memBwSchema"), "rdt"),
}

_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}


def ram_in_bytes(text: str) -> int:
    """go-units RAMInBytes (``512m``, ``1.5G``, ``1024``, ``64KiB``); ``-1`` means unlimited."""
    s = text.strip()
    if s == "-1":
        return -1
    low = s.lower()
    for suffix in ("ib", "b"):
        if low.endswith(suffix) and len(low) > len(suffix):
            low = low[: -len(suffix)]
            break
    unit = ""
    if low and low[-1] in "kmgtp":
        unit, low = low[-1], low[:-1]
    low = low.rstrip()
    try:
        value = float(low) if low and low[0].isdigit() else None
    except ValueError:
        value = None
    if value is None:
        raise UsageError(f"invalid size: '{text}'")
    return int(value * _UNITS[unit])


def _number(flag: str, text: str, kind: str) -> int | str:
    if kind == "str":
        return text
    if kind == "bytes":
        return ram_in_bytes(text)
    try:
        num = int(text, 10)
    except ValueError:
        raise UsageError(f"invalid value for {flag}: {text}") from None
    if kind == "uint" and num < 0:
        raise UsageError(f"invalid value for {flag}: {text}")
    return num


def resources_from_flags(flags: dict[str, str]) -> dict:
    out: dict = {}
    for flag, text in flags.items():
        path, kind = FLAG_PATHS[flag]
        if kind == "rdt":
            raise BockError("Intel RDT is not supported by bock")
        node = out
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = _number("--" + flag, text, kind)
    return out


def read_resources(source: str, stdin) -> dict:
    from bock import _jsonlite

    try:
        if source == "-":
            raw = stdin.buffer.read() if hasattr(stdin, "buffer") else stdin.read()
        else:
            with open(source, "rb") as f:
                raw = f.read()
    except OSError as err:
        raise ConfigError(f"open {source}: {err.strerror.lower()}") from None
    try:
        doc = _jsonlite.loads(raw)
    except (_jsonlite.JSONError, UnicodeDecodeError) as err:
        raise ConfigError(f"decode resources: invalid JSON: {err}") from None
    if not isinstance(doc, dict):
        raise ConfigError("decode resources: a LinuxResources JSON object is required")
    return doc


def merge(old: dict, new: dict) -> dict:
    """``new`` over ``old``: objects merge key by key, everything else is replaced."""
    out = dict(old)
    for key, value in new.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def update(container: Container, changes: dict) -> None:
    if container.status() == "stopped":
        raise ContainerNotRunning()
    if "intelRdt" in changes:
        raise BockError("Intel RDT is not supported by bock")
    manager = manager_for(container)
    from bock._spec.resources import LinuxResources

    try:
        typed = LinuxResources.from_json(changes)
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        raise ConfigError(f"invalid resources: {err}") from None
    manager.set(typed)
    linux = container.config.setdefault("linux", {})
    linux["resources"] = merge(linux.get("resources") or {}, changes)
    container.save()

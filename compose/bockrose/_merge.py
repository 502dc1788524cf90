"""The compose-spec merge rules (13-merge.md): mappings merge recursively, sequences append, unique
resources (volumes/secrets/configs by target, ports by ip+target+published+protocol) merge by key,
command/entrypoint/healthcheck.test are replaced, `!reset` removes and `!override` replaces."""

from __future__ import annotations

import copy
from typing import Any

from ._yaml import Override, Reset

_REPLACED = {("command",), ("entrypoint",), ("healthcheck", "test")}


def _unique_key(section: str, item: Any) -> Any:
    if not isinstance(item, dict):
        return repr(item)
    if section == "ports":
        return (
            item.get("host_ip", ""),
            item.get("target"),
            item.get("published"),
            item.get("protocol", "tcp"),
        )
    if section in ("volumes", "secrets", "configs"):
        return item.get("target") or item.get("source") or repr(item)
    return repr(item)


def merge(base: Any, over: Any, path: tuple[str, ...] = ()) -> Any:
    """over merged onto base (neither is modified; tags in `over` are applied and removed)."""
    if isinstance(over, Reset):
        return None
    if isinstance(over, Override):
        return clean(over.value)
    if isinstance(base, dict) and isinstance(over, dict):
        out = dict(base)
        for k, v in over.items():
            if isinstance(v, Reset):
                out.pop(k, None)
                continue
            sub = path + (str(k),)
            out[k] = merge(base[k], v, sub) if k in base else clean(v)
        return out
    if isinstance(base, list) and isinstance(over, list):
        if path[-1:] and path[-1] in ("ports", "volumes", "secrets", "configs") and len(path) == 3:
            section = path[-1]
            out = list(base)
            index = {_unique_key(section, item): i for i, item in enumerate(out)}
            for item in over:
                if isinstance(item, Reset):
                    continue
                key = _unique_key(section, item)
                if key in index:
                    out[index[key]] = merge(out[index[key]], item, path)
                else:
                    index[key] = len(out)
                    out.append(clean(item))
            return out
        if (path[-1:] and path[-1] == "test") or (path[-1:] and path[-1] in ("command", "entrypoint")):
            return clean(over)
        return list(base) + [clean(v) for v in over if not isinstance(v, Reset)]
    return clean(over)


def clean(value: Any) -> Any:
    """Drop tags from a value that is not merged onto anything."""
    if isinstance(value, Override):
        return clean(value.value)
    if isinstance(value, Reset):
        return None
    if isinstance(value, dict):
        return {k: clean(v) for k, v in value.items() if not isinstance(v, Reset)}
    if isinstance(value, list):
        return [clean(v) for v in value if not isinstance(v, Reset)]
    return copy.copy(value)

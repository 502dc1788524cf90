"""Per-file normalisation of a service: every short form becomes the long form, so that files merge
by the spec's rules (environment by key, ports and volumes by their unique keys, ...)."""

from __future__ import annotations

import os
import shlex
from typing import Any

from ._yaml import LineDict, Override, Reset
from .errors import ConfigError


def _kv_list(value: Any, where: str, sep: str = "=") -> dict[str, Any]:
    if isinstance(value, dict):
        return {
            str(k): (
                None
                if v is None
                else v
                if isinstance(v, (Reset, Override))
                else str(v)
                if not isinstance(v, bool)
                else str(v).lower()
            )
            for k, v in value.items()
        }
    out: dict[str, Any] = {}
    for item in value or []:
        if not isinstance(item, str):
            raise ConfigError(f"{where}: expected KEY{sep}VALUE strings, got {item!r}")
        k, eq, v = item.partition(sep)
        out[k] = v if eq else None
    return out


def parse_port(spec: Any, where: str) -> list[dict[str, Any]]:
    """`[HOST_IP:][HOST_PORT[-RANGE]:]CONTAINER_PORT[-RANGE][/PROTO]` -> long-form dicts."""
    if isinstance(spec, dict):
        p = dict(spec)
        p.setdefault("protocol", "tcp")
        p.setdefault("mode", "ingress")
        p["target"] = int(p["target"])
        if p.get("published") is not None:
            p["published"] = str(p["published"])
        return [p]
    s = str(spec)
    proto = "tcp"
    if "/" in s:
        s, proto = s.rsplit("/", 1)
    host_ip = ""
    if s.startswith("["):
        end = s.index("]")
        host_ip, s = s[1:end], s[end + 2 :]
    parts = s.split(":")
    if len(parts) == 3:
        host_ip, published, target = parts
    elif len(parts) == 2:
        published, target = parts
    elif len(parts) == 1:
        published, target = "", parts[0]
    else:
        raise ConfigError(f"{where}: invalid port {spec!r}")
    try:
        t0, _, t1 = target.partition("-")
        targets = list(range(int(t0), int(t1 or t0) + 1))
        if published:
            p0, _, p1 = published.partition("-")
            pubs = list(range(int(p0), int(p1 or p0) + 1))
        else:
            pubs = []
    except ValueError:
        raise ConfigError(f"{where}: invalid port {spec!r}") from None
    if pubs and len(pubs) != len(targets) and len(targets) != 1:
        raise ConfigError(f"{where}: port ranges of different sizes in {spec!r}")
    out = []
    for i, t in enumerate(targets):
        p: dict[str, Any] = {"mode": "ingress", "target": t, "protocol": proto}
        if host_ip:
            p["host_ip"] = host_ip
        if pubs:
            p["published"] = str(pubs[i] if len(pubs) == len(targets) else pubs[0])
        out.append(p)
    return out


def parse_volume(spec: Any, where: str, base: str) -> dict[str, Any]:
    if isinstance(spec, dict):
        v = dict(spec)
    else:
        parts = str(spec).split(":")
        if len(parts) == 1:
            v = {"type": "volume", "target": parts[0]}
        else:
            src, dst = parts[0], parts[1]
            mode = parts[2] if len(parts) > 2 else ""
            bind = src.startswith((".", "/", "~"))
            v = {"type": "bind" if bind else "volume", "source": src, "target": dst}
            opts = mode.split(",") if mode else []
            if "ro" in opts:
                v["read_only"] = True
            if bind:
                v["bind"] = {"create_host_path": True}
            elif "nocopy" in opts:
                v["volume"] = {"nocopy": True}
    if v.get("type") == "bind" and v.get("source"):
        src = os.path.expanduser(v["source"])
        v["source"] = os.path.normpath(os.path.join(base, src))
    if not v.get("target"):
        raise ConfigError(f"{where}: volume {spec!r} has no target")
    return v


def normalize_service(name: str, svc: Any, base: str) -> dict[str, Any]:
    """Long forms for one service of one file (base: the file's directory, for relative paths)."""
    if svc is None:
        svc = LineDict()
        svc.lines, svc.file, svc.line = {}, "", 0
    if not isinstance(svc, dict):
        raise ConfigError(f"service {name!r} must be a mapping")
    where = svc.where() if isinstance(svc, LineDict) else name
    s = svc

    def w(key: str) -> str:
        return s.where(key) if isinstance(s, LineDict) else f"services.{name}.{key}"

    def plain(key: str) -> Any:
        v = s.get(key)
        return v.value if isinstance(v, Override) else v

    def put(key: str, value: Any) -> None:
        s[key] = Override(value) if isinstance(s.get(key), Override) else value

    for key in ("environment", "labels", "annotations", "sysctls"):
        if key in s and not isinstance(s[key], Reset):
            put(key, _kv_list(plain(key), w(key)))
    if "extra_hosts" in s and not isinstance(s["extra_hosts"], Reset):
        v = plain("extra_hosts")
        if isinstance(v, list):
            v = {h: ip for h, _, ip in (x.replace("=", ":", 1).partition(":") for x in v)}
        put("extra_hosts", {str(k): str(x) for k, x in (v or {}).items()})
    if "depends_on" in s and not isinstance(s["depends_on"], Reset):
        v = plain("depends_on")
        if isinstance(v, list):
            v = {d: {} for d in v}
        put(
            "depends_on",
            {
                d: {
                    "condition": (c or {}).get("condition", "service_started"),
                    "required": _truthy((c or {}).get("required", True)),
                    **({"restart": _truthy(c["restart"])} if c and "restart" in c else {}),
                }
                for d, c in v.items()
            },
        )
    if "networks" in s and not isinstance(s["networks"], Reset):
        v = plain("networks")
        if isinstance(v, list):
            v = {n: None for n in v}
        put("networks", {k: (dict(x) if x else None) for k, x in v.items()})
    if "ports" in s and not isinstance(s["ports"], Reset):
        put("ports", [p for spec in plain("ports") or [] for p in parse_port(spec, w("ports"))])
    if "volumes" in s and not isinstance(s["volumes"], Reset):
        put("volumes", [parse_volume(v, w("volumes"), base) for v in plain("volumes") or []])
    for key in ("command", "entrypoint"):
        v = plain(key)
        if isinstance(v, str):
            try:
                put(key, shlex.split(v))
            except ValueError as exc:
                raise ConfigError(f"{w(key)}: {key}: {exc}") from None
    hc = s.get("healthcheck")
    if isinstance(hc, dict) and isinstance(hc.get("test"), str):
        hc["test"] = ["CMD-SHELL", hc["test"]]
    b = s.get("build")
    if isinstance(b, str):
        s["build"] = {"context": b}
    if isinstance(s.get("build"), dict):
        ctx = s["build"].get("context", ".")
        s["build"]["context"] = os.path.normpath(os.path.join(base, ctx)) if "://" not in ctx else ctx
    if "env_file" in s and not isinstance(s["env_file"], Reset):
        v = plain("env_file")
        items = [v] if isinstance(v, str) else v or []
        put(
            "env_file",
            [
                {
                    "path": os.path.normpath(os.path.join(base, x if isinstance(x, str) else x["path"])),
                    "required": True if isinstance(x, str) else _truthy(x.get("required", True)),
                }
                for x in items
            ],
        )
    if "tmpfs" in s and isinstance(s["tmpfs"], str):
        s["tmpfs"] = [s["tmpfs"]]
    for key in ("dns", "dns_search", "dns_opt"):
        if isinstance(s.get(key), str):
            s[key] = [s[key]]
    del where
    return s


def _truthy(v: Any) -> bool:
    if isinstance(v, str):
        return v.lower() in ("1", "true", "yes", "y", "on")
    return bool(v)

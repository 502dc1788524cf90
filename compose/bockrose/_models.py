"""The loaded project (attrs) and helpers on the normalised service dicts."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import attrs

LABEL = "com.docker.compose."
HASH_EXCLUDED = ("build", "pull_policy", "scale", "depends_on", "profiles")


@attrs.define
class Project:
    name: str
    working_dir: str
    config_files: list[str]
    environment: dict[str, str]
    env_files: list[str] = attrs.field(factory=list)
    services: dict[str, dict[str, Any]] = attrs.field(factory=dict)
    disabled: dict[str, dict[str, Any]] = attrs.field(factory=dict)
    networks: dict[str, dict[str, Any]] = attrs.field(factory=dict)
    volumes: dict[str, dict[str, Any]] = attrs.field(factory=dict)
    configs: dict[str, dict[str, Any]] = attrs.field(factory=dict)
    secrets: dict[str, dict[str, Any]] = attrs.field(factory=dict)
    extensions: dict[str, Any] = attrs.field(factory=dict)
    profiles: list[str] = attrs.field(factory=list)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "services": self.services}
        for key in ("networks", "volumes", "configs", "secrets"):
            if getattr(self, key):
                out[key] = getattr(self, key)
        out.update(self.extensions)
        return out

    def deps(self) -> dict[str, list[str]]:
        return {n: list(s.get("depends_on") or {}) for n, s in self.services.items()}

    def network_name(self, key: str) -> str:
        net = self.networks.get(key) or {}
        return net.get("name") or f"{self.name}_{key}"

    def volume_name(self, key: str) -> str:
        vol = self.volumes.get(key) or {}
        return vol.get("name") or f"{self.name}_{key}"


def scale_of(svc: dict[str, Any]) -> int:
    deploy = svc.get("deploy") or {}
    if deploy.get("replicas") is not None:
        return int(deploy["replicas"])
    if svc.get("scale") is not None:
        return int(svc["scale"])
    return 1


def service_hash(svc: dict[str, Any]) -> str:
    """docker compose's config-hash: sha256 of the service without build, pull_policy, scale,
    deploy.replicas, depends_on and profiles, so that changing only those recreates nothing."""
    o = {k: v for k, v in svc.items() if k not in HASH_EXCLUDED}
    if isinstance(o.get("deploy"), dict):
        o["deploy"] = {k: v for k, v in o["deploy"].items() if k != "replicas"}
    data = json.dumps(o, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(data.encode()).hexdigest()


def service_networks(project: Project, svc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The compose networks a service joins ({} for network_mode none/host/service:)."""
    if svc.get("network_mode"):
        return {}
    nets = svc.get("networks")
    if not nets:
        return {"default": {}}
    return {k: (v or {}) for k, v in nets.items()}


def duration(value: Any, default: float) -> float:
    """Compose durations: 1h2m3s, 1.5s, 300ms, 10us, or a bare number of seconds."""
    if value is None or value == "":
        return default
    if isinstance(value, (int, float)):
        return float(value)
    s = str(value).strip()
    total, num = 0.0, ""
    units = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}
    i = 0
    while i < len(s):
        c = s[i]
        if c.isdigit() or c == ".":
            num += c
            i += 1
            continue
        unit = s[i : i + 2] if s[i : i + 2] in units else c
        if unit not in units or not num:
            raise ValueError(f"invalid duration {value!r}")
        total += float(num) * units[unit]
        num = ""
        i += len(unit)
    if num:
        total += float(num)
    return total

"""Load a bundle's config.json once: parse, schema-check, structure, semantic checks."""

from __future__ import annotations

import os

from bock import _jsonlite
from bock._spec.config import Spec
from bock.errors import ConfigError


def read_config(bundle: str) -> tuple[dict, Spec]:
    path = os.path.join(bundle, "config.json")
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        raise ConfigError(
            f"JSON specification file config.json not found (open {path}: no such file or directory)"
        )
    except OSError as err:
        raise ConfigError(f"open {path}: {err.strerror}")
    try:
        doc = _jsonlite.loads(raw)
    except (_jsonlite.JSONError, UnicodeDecodeError) as err:
        raise ConfigError(f"config.json: invalid JSON: {err}")
    if not isinstance(doc, dict):
        raise ConfigError("config.json: $: the document must be a JSON object (rule: type)")
    try:
        from bock import _schema
    except ImportError:  # pragma: no cover - the schema validator ships with the runtime
        _schema = None
    if _schema is not None:
        _schema.validate(doc, "config", "config.json")
    spec = Spec.from_json(doc)
    check_spec(spec)
    return doc, spec


def check_spec(spec: Spec) -> None:
    """What the schema cannot say (runc's validateProcessSpec and config validators)."""
    p = spec.process
    if p is None:
        raise ConfigError("config.json: process: the process property is required to create a container")
    if not p.args:
        raise ConfigError("config.json: process.args: args must not be empty")
    for item in p.env:
        if "=" not in item:
            raise ConfigError(f'config.json: process.env: invalid environment variable: "{item}"')
    if not p.cwd.startswith("/"):
        raise ConfigError(f"config.json: process.cwd: cwd {p.cwd!r} must be an absolute path")
    if spec.root is None or not spec.root.path:
        raise ConfigError("config.json: root.path: a root filesystem is required")
    seen: set[str] = set()
    for ns in spec.linux.namespaces:
        if ns.type in seen:
            raise ConfigError(f"config.json: linux.namespaces: duplicate namespace {ns.type}")
        seen.add(ns.type)
    if "mount" not in seen:
        raise ConfigError("config.json: linux.namespaces: a mount namespace is required")
    if spec.hostname and "uts" not in seen:
        raise ConfigError("config.json: hostname: unable to set hostname without a private UTS namespace")
    if spec.domainname and "uts" not in seen:
        raise ConfigError("config.json: domainname: unable to set domainname without a private UTS namespace")
    # id mappings, time offsets, idmapped mounts: runc's rules and wording
    linux = spec.linux
    if (
        linux.uid_mappings
        or linux.gid_mappings
        or linux.time_offsets
        or seen & {"user", "time"}
        or any(
            m.uid_mappings or m.gid_mappings or "idmap" in m.options or "ridmap" in m.options
            for m in spec.mounts
        )
    ):
        from bock._security.idmap import validate as validate_idmap

        validate_idmap(linux, spec.mounts)

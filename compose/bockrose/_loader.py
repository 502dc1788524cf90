"""From compose files on disk to a Project: discovery, .env, interpolation, schema validation,
include, extends, merging of -f files, profiles and the checks that need the whole model."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable, Sequence
from typing import Any

from . import _merge, _normalize, _schema
from ._graph import check_acyclic
from ._interpolate import interpolate, parse_env_file
from ._models import Project
from ._yaml import LineDict, Override, Reset, load_yaml
from .errors import ConfigError

CANDIDATES = ("compose.yaml", "compose.yml", "docker-compose.yaml", "docker-compose.yml")
OVERRIDES = (
    "compose.override.yaml",
    "compose.override.yml",
    "docker-compose.override.yaml",
    "docker-compose.override.yml",
)
_NAME_OK = re.compile(r"^[a-z0-9][a-z0-9_-]*$")


def find_files(start: str) -> list[str]:
    """compose.yaml (or its aliases) in start or a parent, plus the matching override file."""
    d = os.path.abspath(start)
    while True:
        for c in CANDIDATES:
            p = os.path.join(d, c)
            if os.path.isfile(p):
                out = [p]
                for o in OVERRIDES:
                    if os.path.isfile(os.path.join(d, o)):
                        out.append(os.path.join(d, o))
                        break
                return out
        parent = os.path.dirname(d)
        if parent == d:
            raise ConfigError(
                f"no configuration file provided: not found (looked for {', '.join(CANDIDATES)})"
            )
        d = parent


def normalize_project_name(name: str) -> str:
    return re.sub(r"[^a-z0-9_-]", "", name.lower()).lstrip("_-")


def _read(path: str) -> str:
    if path == "-":
        return sys.stdin.read()
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None


class _Loader:
    def __init__(self, env: dict[str, str], warn: Callable[[str], None]) -> None:
        self.env = env
        self.warn = warn
        self.cache: dict[str, Any] = {}

    def load_file(self, path: str, env: dict[str, str] | None = None) -> Any:
        """One file: YAML, interpolated, validated, services normalised (include not yet applied)."""
        key = (path, id(env))
        if key in self.cache:
            return self.cache[key]
        doc = load_yaml(_read(path), path)
        if doc is None:
            doc = LineDict()
            doc.lines, doc.file, doc.line = {}, path, 1
        if not isinstance(doc, dict):
            raise ConfigError(f"{path}: top-level object must be a mapping")
        interpolate(doc, self.env if env is None else env, self.warn, path)
        _schema.validate(doc, path)
        if "version" in doc:
            self.warn(f"{path}: `version` is obsolete, it will be ignored")
            del doc["version"]
        base = os.path.dirname(os.path.abspath(path)) if path != "-" else os.getcwd()
        services = doc.get("services")
        if isinstance(services, dict):
            for name in list(services):
                if isinstance(services[name], (Reset, Override)):
                    continue
                services[name] = _normalize.normalize_service(name, services[name], base)
        for sect in ("configs", "secrets"):
            for v in (doc.get(sect) or {}).values():
                if isinstance(v, dict) and v.get("file"):
                    v["file"] = os.path.normpath(os.path.join(base, os.path.expanduser(v["file"])))
        self.cache[key] = doc
        return doc

    def resolve_extends(self, path: str, doc: dict[str, Any], name: str, seen: tuple = ()) -> dict[str, Any]:
        services = doc.get("services") or {}
        if name not in services:
            raise ConfigError(f"{path}: cannot extend service {name!r}: no such service")
        svc = services[name]
        ext = svc.get("extends") if isinstance(svc, dict) else None
        if not ext:
            return _merge.clean(svc)
        if isinstance(ext, str):
            ext = {"service": ext}
        ext_file = ext.get("file")
        target_path = os.path.normpath(os.path.join(os.path.dirname(path), ext_file)) if ext_file else path
        marker = (target_path, ext["service"])
        if marker in seen or marker == (path, name):
            chain = " -> ".join(f"{os.path.basename(p)}:{s}" for p, s in seen + (marker,))
            raise ConfigError(
                f"{svc.where('extends') if isinstance(svc, LineDict) else path}: circular extends: {chain}"
            )
        target_doc = self.load_file(target_path) if ext_file else doc
        base = self.resolve_extends(target_path, target_doc, ext["service"], seen + ((path, name),))
        own = {k: v for k, v in svc.items() if k != "extends"}
        return _merge.merge(base, own, ("services", name))

    def load_model(self, path: str, env: dict[str, str] | None = None, seen: tuple = ()) -> dict[str, Any]:
        """A file with its extends and includes resolved, tags left for the merge of -f files."""
        doc = self.load_file(path, env)
        out: dict[str, Any] = {k: v for k, v in doc.items() if k not in ("services", "include")}
        services = {}
        for name, svc in (doc.get("services") or {}).items():
            if isinstance(svc, dict) and svc.get("extends"):
                services[name] = self.resolve_extends(path, doc, name)
            else:
                services[name] = svc
        out["services"] = services
        for item in doc.get("include") or []:
            if isinstance(item, str):
                item = {"path": item}
            paths = item["path"] if isinstance(item["path"], list) else [item["path"]]
            base = os.path.dirname(os.path.abspath(path))
            paths = [os.path.normpath(os.path.join(base, p)) for p in paths]
            if any(p in seen for p in paths):
                raise ConfigError(f"{doc.where('include')}: include cycle through {paths[0]}")
            inc_env = dict(self.env)
            env_files = item.get("env_file")
            proj_dir = os.path.normpath(
                os.path.join(base, item.get("project_directory", os.path.dirname(paths[0])))
            )
            env_files = ([env_files] if isinstance(env_files, str) else env_files) or [
                os.path.join(proj_dir, ".env")
            ]
            for ef in env_files:
                ef = os.path.normpath(os.path.join(base, ef))
                if os.path.isfile(ef):
                    for k, v in parse_env_file(_read(ef), ef, inc_env).items():
                        inc_env.setdefault(k, v) if k in os.environ else inc_env.__setitem__(k, v)
            merged: dict[str, Any] = {}
            for p in paths:
                merged = _merge.merge(merged, self.load_model(p, inc_env, seen + (path,)))
            for sect in ("services", "networks", "volumes", "configs", "secrets"):
                for k, v in (merged.get(sect) or {}).items():
                    if k in (out.get(sect) or {}):
                        raise ConfigError(
                            f"{doc.where('include')}: {sect[:-1]} {k!r} from {paths[0]} "
                            f"conflicts with one defined in {path}"
                        )
                    out.setdefault(sect, {})[k] = v
        return out


def load_project(
    files: Sequence[str] = (),
    *,
    project_name: str | None = None,
    project_directory: str | None = None,
    env_files: Sequence[str] = (),
    profiles: Sequence[str] = (),
    environ: dict[str, str] | None = None,
    warn: Callable[[str], None] | None = None,
    services: Sequence[str] = (),
) -> Project:
    environ = dict(os.environ if environ is None else environ)
    warn = warn or (lambda m: print(f"WARN[0000] {m}", file=sys.stderr))
    files = list(files) or (
        environ.get("COMPOSE_FILE", "").split(os.pathsep)
        if environ.get("COMPOSE_FILE")
        else find_files(project_directory or os.getcwd())
    )
    files = [f if f == "-" else os.path.abspath(f) for f in files]
    workdir = os.path.abspath(project_directory or (os.path.dirname(files[0]) if files[0] != "-" else "."))
    # .env / --env-file: the shell's environment wins
    env = dict(environ)
    used_env_files: list[str] = []
    if not env_files:
        dot = os.path.join(workdir, ".env")
        env_files = [dot] if os.path.isfile(dot) else []
    else:
        env_files = [os.path.abspath(e) for e in env_files]
    file_env: dict[str, str] = {}
    for ef in env_files:
        file_env.update(parse_env_file(_read(ef), ef, {**file_env, **environ}))
        used_env_files.append(ef)
    env = {**file_env, **environ}
    loader = _Loader(env, warn)
    model: dict[str, Any] = {}
    for f in files:
        model = _merge.merge(model, loader.load_model(f))
    name = project_name or env.get("COMPOSE_PROJECT_NAME") or model.get("name") or os.path.basename(workdir)
    name = normalize_project_name(name) if not project_name else name
    if not _NAME_OK.match(name or ""):
        raise ConfigError(
            f"invalid project name {name!r}: must contain only lowercase letters, digits, "
            "dashes and underscores, and start with a letter or digit"
        )
    if not profiles and env.get("COMPOSE_PROFILES"):
        profiles = [p for p in env["COMPOSE_PROFILES"].split(",") if p]
    all_services = {k: dict(v or {}) for k, v in (model.get("services") or {}).items()}
    enabled = set(profiles)
    active, disabled = {}, {}
    for sname, svc in all_services.items():
        prof = svc.get("profiles") or []
        if not prof or "*" in enabled or enabled.intersection(prof) or sname in services:
            active[sname] = svc
        else:
            disabled[sname] = svc
    project = Project(
        name=name,
        working_dir=workdir,
        config_files=files,
        environment=env,
        env_files=used_env_files,
        services=active,
        disabled=disabled,
        networks={k: dict(v or {}) for k, v in (model.get("networks") or {}).items()},
        volumes={k: dict(v or {}) for k, v in (model.get("volumes") or {}).items()},
        configs={k: dict(v or {}) for k, v in (model.get("configs") or {}).items()},
        secrets={k: dict(v or {}) for k, v in (model.get("secrets") or {}).items()},
        extensions={k: v for k, v in model.items() if str(k).startswith("x-")},
        profiles=list(profiles),
    )
    _check_model(project, warn)
    return project


# accepted by the schema, not applied by bockrose (said once per service, see compose/README.md)
IGNORED_KEYS = (
    "security_opt",
    "gpus",
    "logging",
    "cgroup_parent",
    "runtime",
    "platform",
    "isolation",
    "credential_spec",
    "userns_mode",
    "storage_opt",
    "blkio_config",
    "mac_address",
    "develop",
    "post_start",
    "pre_start",
    "pre_stop",
    "models",
    "provider",
    "use_api_socket",
    "attach",
    "stdin_open",
    "oom_score_adj",
    "oom_kill_disable",
    "cpu_shares",
    "cpuset",
    "group_add",
    "volumes_from",
    "links",
    "external_links",
    "expose",
    "device_cgroup_rules",
)


def _check_model(project: Project, warn: Callable[[str], None] = lambda m: None) -> None:
    uses_default = False
    for name, svc in project.services.items():
        ignored = [k for k in IGNORED_KEYS if k in svc]
        if ignored:
            warn(f"service {name!r}: {', '.join(ignored)} not supported by bockrose, ignored")
        if not svc.get("image") and not svc.get("build"):
            raise ConfigError(f"service {name!r} has neither an image nor a build context specified")
        for dep, cond in (svc.get("depends_on") or {}).items():
            if dep not in project.services:
                if dep in project.disabled and not cond.get("required", True):
                    continue
                where = "is disabled by its profiles" if dep in project.disabled else "is not defined"
                raise ConfigError(f"service {name!r} depends on service {dep!r} which {where}")
        nm = svc.get("network_mode") or ""
        if nm.startswith("service:") and nm[8:] not in project.services:
            raise ConfigError(f"service {name!r}: network_mode {nm!r} names an undefined service")
        if svc.get("networks"):
            for net in svc["networks"]:
                if net != "default" and net not in project.networks:
                    raise ConfigError(
                        f"service {name!r} refers to undefined network {net}: invalid compose project"
                    )
                uses_default |= net == "default"
        elif not nm:
            uses_default = True
        for v in svc.get("volumes") or []:
            if v.get("type") == "volume" and v.get("source") and v["source"] not in project.volumes:
                raise ConfigError(
                    f"service {name!r} refers to undefined volume {v['source']}: invalid compose project"
                )
        replicas = (svc.get("deploy") or {}).get("replicas")
        if svc.get("scale") is not None and replicas is not None and int(svc["scale"]) != int(replicas):
            raise ConfigError(f"service {name!r}: scale and deploy.replicas disagree")
    if uses_default:
        project.networks.setdefault("default", {})
    check_acyclic(project.deps())

"""What the monitor records and the CLI reads: per project a state.json (attrs models, written
atomically through cattrs), container logs as JSON lines, and an events file."""

from __future__ import annotations

import hashlib
import json
import os
import time
from typing import Any

import attrs
import cattrs

DEFAULT_ROOT = "/var/lib/bockrose"


def state_root(given: str | None = None) -> str:
    return os.path.abspath(given or os.environ.get("BOCKROSE_ROOT") or DEFAULT_ROOT)


@attrs.define
class PortBinding:
    target: int
    published: int
    protocol: str = "tcp"
    host_ip: str = "0.0.0.0"


@attrs.define
class ContainerState:
    name: str
    service: str
    number: int
    hash: str
    image: str
    status: str = "created"  # created, running, paused, restarting, exited, removing
    pid: int = 0
    exit_code: int | None = None
    health: str = ""  # "", starting, healthy, unhealthy
    health_log: list[dict[str, Any]] = attrs.field(factory=list)
    created_at: float = attrs.field(factory=time.time)
    started_at: float = 0.0
    finished_at: float = 0.0
    restart_count: int = 0
    explicitly_stopped: bool = False
    oneoff: bool = False
    nonce: str = ""
    netns: str = ""
    addresses: dict[str, str] = attrs.field(factory=dict)  # network key -> ipv4
    veths: list[str] = attrs.field(factory=list)
    ports: list[PortBinding] = attrs.field(factory=list)
    labels: dict[str, str] = attrs.field(factory=dict)
    command: list[str] = attrs.field(factory=list)
    aliases: dict[str, list[str]] = attrs.field(factory=dict)  # network key -> extra DNS names
    cgroup: str = ""
    image_digest: str = ""  # the image's manifest digest when it was created: a new image recreates
    console_holder: int = 0  # tty: true: the pid keeping a copy of the pty master (see _console)


@attrs.define
class NetworkState:
    key: str
    name: str
    bridge: str
    subnet: str
    gateway: str
    internal: bool = False
    external: bool = False


@attrs.define
class ProjectState:
    name: str
    key: str
    working_dir: str = ""
    config_files: list[str] = attrs.field(factory=list)
    runtime: str = ""
    runtime_root: str = ""
    image_root: str = ""
    monitor_pid: int = 0
    networks: dict[str, NetworkState] = attrs.field(factory=dict)
    volumes: list[str] = attrs.field(factory=list)
    containers: dict[str, ContainerState] = attrs.field(factory=dict)
    services: dict[str, dict[str, Any]] = attrs.field(factory=dict)


_conv = cattrs.Converter()


def project_dir(root: str, name: str) -> str:
    return os.path.join(root, "projects", name)


def state_path(root: str, name: str) -> str:
    return os.path.join(project_dir(root, name), "state.json")


def load_state(root: str, name: str) -> ProjectState | None:
    try:
        with open(state_path(root, name), "rb") as f:
            data = json.loads(f.read())
    except (OSError, ValueError):
        return None
    return _conv.structure(data, ProjectState)


def save_state(root: str, state: ProjectState) -> None:
    path = state_path(root, state.name)
    tmp = f"{path}.{os.getpid()}.tmp"
    data = json.dumps(_conv.unstructure(state), separators=(",", ":")).encode()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def socket_address(root: str, project: str) -> str:
    """The monitor's abstract unix socket (no path-length limit, nothing to clean up)."""
    return "\0bockrose-" + hashlib.sha256(project_dir(root, project).encode()).hexdigest()[:24]


def project_key(root: str, project: str) -> str:
    return hashlib.sha256(f"{root}/{project}".encode()).hexdigest()[:10]


def list_projects(root: str) -> list[str]:
    try:
        return sorted(os.listdir(os.path.join(root, "projects")))
    except OSError:
        return []


def pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except OSError:
        return False


def container_dir(root: str, project: str, name: str) -> str:
    return os.path.join(project_dir(root, project), "containers", name)


def log_path(root: str, project: str, name: str) -> str:
    return os.path.join(container_dir(root, project, name), "json.log")

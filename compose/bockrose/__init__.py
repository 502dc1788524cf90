"""bockrose: compose files on bock (or runc) with a per-project monitor, networks, DNS and health.

Public API::

    load_project(files, project_name=..., ...) -> Project     parse, interpolate, merge, validate
    service_hash(service_dict) -> str                         docker compose's config-hash
    Engine(project, options)                                 up/down/ps/... (bockrose._engine)
    ComposeError and subclasses                               bockrose.errors
"""

from __future__ import annotations

from ._loader import load_project
from ._models import Project, service_hash
from .errors import (
    ComposeError,
    ConfigError,
    DependencyError,
    InterpolationError,
    MonitorError,
    NetworkError,
    RuntimeFailure,
)

__all__ = [
    "ComposeError",
    "ConfigError",
    "DependencyError",
    "InterpolationError",
    "MonitorError",
    "NetworkError",
    "Project",
    "RuntimeFailure",
    "load_project",
    "service_hash",
]

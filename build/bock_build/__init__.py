"""bock-build: an OCI image builder for Dockerfiles and YAML Bockfiles with a content-addressed cache.

Public API::

    load_buildfile(path) -> BuildGraph      a Dockerfile or a Bockfile (told apart by content)
    parse_dockerfile(text, file)            Dockerfile front end
    load_bockfile(text, file)               Bockfile front end (schema: spec-schemas/bockfile-schema.json)
    dump_bockfile(graph)                    the graph as a Bockfile (``bock-build convert``)
    Builder(store, graph, BuildOptions(...)).build() -> BuildResult
    Cache(store)                            list/prune/clear the step cache
    BuildError and subclasses               the one exception hierarchy (bock_build.errors)
"""

from __future__ import annotations

from .errors import (
    BaseImageError,
    BuildError,
    BuildfileError,
    CacheError,
    ContextError,
    RuntimeFailure,
    StepFailed,
)

_LAZY = {
    "load_buildfile": ("_frontend", "load"),
    "parse_dockerfile": ("_dockerfile", "parse_dockerfile"),
    "load_bockfile": ("_bockfile", "load_bockfile"),
    "dump_bockfile": ("_bockfile", "dump_bockfile"),
    "Builder": ("_builder", "Builder"),
    "BuildOptions": ("_builder", "BuildOptions"),
    "BuildResult": ("_builder", "BuildResult"),
    "BuildGraph": ("_graph", "BuildGraph"),
    "Stage": ("_graph", "Stage"),
    "Step": ("_graph", "Step"),
    "Cache": ("_cache", "Cache"),
}


def __getattr__(name: str):
    entry = _LAZY.get(name)
    if entry is None:
        raise AttributeError(f"module 'bock_build' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f".{entry[0]}", __name__), entry[1])
    globals()[name] = value
    return value


__all__ = [
    "BaseImageError",
    "BuildError",
    "BuildGraph",
    "BuildOptions",
    "BuildResult",
    "Builder",
    "BuildfileError",
    "Cache",
    "CacheError",
    "ContextError",
    "RuntimeFailure",
    "Stage",
    "Step",
    "StepFailed",
    "dump_bockfile",
    "load_bockfile",
    "load_buildfile",
    "parse_dockerfile",
]

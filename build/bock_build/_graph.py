"""The build graph both front ends compile to: stages of steps. The executor and the cache only see
this. Values that take ``$VAR`` substitution are kept unexpanded in a canonical form (``\\$`` is a
literal dollar, ``\\\\`` a literal backslash) and expanded at build time with the args/env in scope."""

from __future__ import annotations

from typing import Any

import attrs

# ops: arg, env, run, copy (add=True for ADD), workdir, user, shell, and the image-config ops
# label, expose, volume, stopsignal, entrypoint, cmd, healthcheck, onbuild.
CONFIG_OPS = ("label", "expose", "volume", "stopsignal", "entrypoint", "cmd", "healthcheck", "onbuild")
LAYER_OPS = ("run", "copy")


@attrs.frozen
class Step:
    op: str
    args: dict[str, Any]
    line: int = 0
    text: str = ""

    def describe(self) -> str:
        return self.text or f"{self.op.upper()} {self.args}"


@attrs.frozen
class Stage:
    index: int
    name: str | None
    base: str  # an image reference, a stage name, or "scratch" (unexpanded)
    steps: tuple[Step, ...]
    platform: str | None = None
    line: int = 0

    @property
    def label(self) -> str:
        return self.name or str(self.index)


@attrs.frozen
class BuildGraph:
    file: str
    global_args: tuple[Step, ...]
    stages: tuple[Stage, ...]

    def stage(self, name_or_index: str) -> Stage | None:
        for s in self.stages:
            if s.name is not None and s.name.lower() == name_or_index.lower():
                return s
        if name_or_index.isdigit() and int(name_or_index) < len(self.stages):
            return self.stages[int(name_or_index)]
        return None


def to_dict(obj: Any) -> Any:
    """The graph as plain data (cattrs; imported on first use: a build does not need it)."""
    import cattrs

    return cattrs.Converter().unstructure(obj)

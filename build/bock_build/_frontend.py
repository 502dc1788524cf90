"""Choosing the build file (Dockerfile or Bockfile, told apart by content) and compiling it."""

from __future__ import annotations

from pathlib import Path

from ._graph import BuildGraph
from .errors import BuildError


def find_file(context: Path, file: str | None) -> Path:
    if file:
        p = Path(file)
        if p.is_file():
            return p
        if not p.is_absolute() and (context / p).is_file():
            return context / p
        raise BuildError(f"build file {file!r} not found")
    for name in ("Dockerfile", "Containerfile", "Bockfile", "Bockfile.yaml", "Bockfile.yml"):
        if (context / name).is_file():
            return context / name
    raise BuildError(f"no Dockerfile or Bockfile in {context} (use -f FILE)")


def is_bockfile(text: str) -> bool:
    """A Bockfile is a YAML mapping with a top-level ``stages:`` key; anything else is a Dockerfile."""
    for line in text.splitlines():
        s = line.strip()
        if not s or s.startswith("#") or s == "---":
            continue
        if line.startswith("stages:") or line.startswith("version:") or line.startswith("args:"):
            return True
        if s.split(None, 1)[0].upper() in ("FROM", "ARG") or not line[0].isalpha():
            return False
    return False


def load(path: Path) -> BuildGraph:
    text = path.read_text()
    if is_bockfile(text):
        from ._bockfile import load_bockfile

        return load_bockfile(text, str(path))
    from ._dockerfile import parse_dockerfile

    return parse_dockerfile(text, str(path))

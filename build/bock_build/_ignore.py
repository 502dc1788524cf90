"""``.dockerignore`` with Docker's semantics (not gitignore's): Go ``filepath.Match`` per pattern plus
``**``, a leading ``/`` stripped, ``!`` re-includes, the last matching line wins, and a pattern that
matches a directory excludes everything below it."""

from __future__ import annotations

import os
import re
from pathlib import Path


def _regex(pattern: str) -> re.Pattern[str]:
    out, i, n = [], 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "*":
            if pattern.startswith("**", i):
                i += 2
                if pattern.startswith("/", i):
                    out.append("(?:.*/)?")
                    i += 1
                else:
                    out.append(".*")
                continue
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            j = pattern.find("]", i + 1)
            if j < 0:
                out.append(re.escape(c))
            else:
                body = pattern[i + 1 : j].replace("\\", "\\\\")
                if body.startswith("!") or body.startswith("^"):
                    body = "^" + body[1:]
                out.append(f"[{body}]")
                i = j
        elif c == "\\" and i + 1 < n:
            out.append(re.escape(pattern[i + 1]))
            i += 1
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile("".join(out) + "$")


class IgnoreRules:
    def __init__(self, lines: list[str]) -> None:
        self.rules: list[tuple[bool, re.Pattern[str]]] = []
        for raw in lines:
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            negate = line.startswith("!")
            if negate:
                line = line[1:].strip()
            line = os.path.normpath(line.lstrip("/")) if line.lstrip("/") else "."
            if line == ".":
                continue
            self.rules.append((negate, _regex(line)))
        self.has_negation = any(neg for neg, _ in self.rules)

    @classmethod
    def load(cls, context: Path, dockerfile: Path | None = None) -> IgnoreRules:
        candidates = []
        if dockerfile is not None:
            candidates.append(dockerfile.with_name(dockerfile.name + ".dockerignore"))
        candidates += [context / ".dockerignore", context / ".containerignore"]
        for c in candidates:
            if c.is_file():
                return cls(c.read_text().splitlines())
        return cls([])

    def ignored(self, rel: str) -> bool:
        """rel: a context-relative path with '/' separators."""
        if not self.rules:
            return False
        parts = rel.split("/")
        prefixes = ["/".join(parts[: k + 1]) for k in range(len(parts))]
        result = False
        for negate, rx in self.rules:
            if any(rx.match(p) for p in prefixes):
                result = not negate
        return result

    def prunable(self, rel_dir: str) -> bool:
        """A directory can be skipped entirely: it is ignored and no '!' rule could re-include inside."""
        return not self.has_negation and self.ignored(rel_dir)

"""Compose interpolation: $VAR, ${VAR}, ${VAR:-d}, ${VAR-d}, ${VAR:?e}, ${VAR?e}, ${VAR:+a}, ${VAR+a},
nested defaults, and $$ for a literal $. Applied to values (not keys) of each file before merging."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from .errors import InterpolationError

_NAME = re.compile(r"[_a-zA-Z][_a-zA-Z0-9]*")


def _braced(
    s: str, i: int, env: Mapping[str, str], warn: Callable[[str], None], where: str
) -> tuple[str, int]:
    """s[i] is just after '${'; returns (value, index after the closing brace)."""
    m = _NAME.match(s, i)
    if not m:
        raise InterpolationError(f"{where}: invalid interpolation format in {s!r}")
    name = m.group()
    j = m.end()
    if j < len(s) and s[j] == "}":
        if name not in env:
            warn(f'The "{name}" variable is not set. Defaulting to a blank string.')
        return env.get(name, ""), j + 1
    for op in (":-", ":?", ":+", "-", "?", "+"):
        if s.startswith(op, j):
            break
    else:
        raise InterpolationError(f"{where}: invalid interpolation format in {s!r}")
    # the operand runs to the matching brace; it may itself contain ${...}
    k = j + len(op)
    depth = 1
    parts: list[str] = []
    while k < len(s):
        c = s[k]
        if c == "$" and s.startswith("$$", k):
            parts.append("$")
            k += 2
            continue
        if c == "$" and s.startswith("${", k):
            val, k = _braced(s, k + 2, env, warn, where)
            parts.append(val)
            continue
        if c == "$":
            val, k = _bare(s, k + 1, env, warn)
            parts.append(val)
            continue
        if c == "}":
            depth -= 1
            break
        parts.append(c)
        k += 1
    if depth:
        raise InterpolationError(f"{where}: missing closing brace in {s!r}")
    operand = "".join(parts)
    value = env.get(name)
    set_nonempty = value is not None and value != ""
    if op == ":-":
        return (value if set_nonempty else operand), k + 1
    if op == "-":
        return (value if value is not None else operand), k + 1
    if op == ":+":
        return (operand if set_nonempty else ""), k + 1
    if op == "+":
        return (operand if value is not None else ""), k + 1
    if (op == ":?" and not set_nonempty) or (op == "?" and value is None):
        raise InterpolationError(f"{where}: required variable {name} is missing a value: {operand}")
    return value or "", k + 1


def _bare(s: str, i: int, env: Mapping[str, str], warn: Callable[[str], None]) -> tuple[str, int]:
    m = _NAME.match(s, i)
    if not m:
        return "$", i
    if m.group() not in env:
        warn(f'The "{m.group()}" variable is not set. Defaulting to a blank string.')
    return env.get(m.group(), ""), m.end()


def interpolate_str(s: str, env: Mapping[str, str], warn: Callable[[str], None], where: str = "") -> str:
    if "$" not in s:
        return s
    out: list[str] = []
    i = 0
    while i < len(s):
        c = s[i]
        if c != "$":
            j = s.find("$", i)
            j = len(s) if j < 0 else j
            out.append(s[i:j])
            i = j
            continue
        if s.startswith("$$", i):
            out.append("$")
            i += 2
        elif s.startswith("${", i):
            val, i = _braced(s, i + 2, env, warn, where)
            out.append(val)
        else:
            val, i = _bare(s, i + 1, env, warn)
            out.append(val)
    return "".join(out)


def interpolate(value: Any, env: Mapping[str, str], warn: Callable[[str], None], where: str = "") -> Any:
    """Interpolate every string value in a loaded YAML tree, in place for dicts (keeps line info)."""
    from ._yaml import LineDict, Override, Reset

    if isinstance(value, str):
        return interpolate_str(value, env, warn, where)
    if isinstance(value, dict):
        for k in list(value):
            w = value.where(k) if isinstance(value, LineDict) else where
            value[k] = interpolate(value[k], env, warn, w)
        return value
    if isinstance(value, list):
        return [interpolate(v, env, warn, where) for v in value]
    if isinstance(value, Override):
        return Override(interpolate(value.value, env, warn, where))
    if isinstance(value, Reset):
        return value
    return value


def parse_env_file(text: str, filename: str, env: Mapping[str, str] | None = None) -> dict[str, str]:
    """A .env / env_file: KEY=VALUE lines, # comments, optional `export `, single quotes literal,
    double quotes with escapes, unquoted values interpolated against what is known so far."""
    out: dict[str, str] = {}
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[7:].lstrip()
        key, eq, val = line.partition("=")
        key = key.strip()
        if not _NAME.fullmatch(key):
            raise InterpolationError(f"{filename}:{n}: invalid variable name {key!r}")
        if not eq:
            if env is not None and key in env:
                out[key] = env[key]
            continue
        val = val.strip()
        if len(val) >= 2 and val[0] == val[-1] == "'":
            val = val[1:-1]
        elif len(val) >= 2 and val[0] == val[-1] == '"':
            val = val[1:-1].encode("latin-1", "backslashreplace").decode("unicode_escape")
        else:
            val = re.sub(r"\s+#.*$", "", val)
            known = {**(env or {}), **out}
            val = interpolate_str(val, known, lambda _m: None, f"{filename}:{n}")
        out[key] = val
    return out

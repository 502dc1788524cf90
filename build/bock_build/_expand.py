"""``$VAR`` substitution on the graph's canonical strings (``\\$`` literal dollar, ``\\\\`` literal
backslash): ``$V ${V} ${V:-w} ${V-w} ${V:+w} ${V+w} ${V#p} ${V##p} ${V%p} ${V%%p} ${V/p/r} ${V//p/r}``."""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping

from .errors import BuildError

_NAME_START = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_"
_NAME = _NAME_START + "0123456789"


def expand(text: str, env: Mapping[str, str]) -> str:
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == "\\" and i + 1 < n:
            out.append(text[i + 1])
            i += 2
        elif c == "$" and i + 1 < n and text[i + 1] == "{":
            end = _matching_brace(text, i + 2)
            out.append(_braced(text[i + 2 : end], env))
            i = end + 1
        elif c == "$" and i + 1 < n and text[i + 1] in _NAME_START:
            j = i + 1
            while j < n and text[j] in _NAME:
                j += 1
            out.append(env.get(text[i + 1 : j], ""))
            i = j
        else:
            out.append(c)
            i += 1
    return "".join(out)


def _matching_brace(text: str, start: int) -> int:
    depth, i = 1, start
    while i < len(text):
        if text[i] == "\\":
            i += 2
            continue
        if text[i] == "{":
            depth += 1
        elif text[i] == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    raise BuildError(f"missing '}}' in substitution: {text!r}")


def _strip(value: str, pattern: str, longest: bool, suffix: bool) -> str:
    sizes = range(len(value), -1, -1) if longest else range(len(value) + 1)
    for k in sizes:
        part = value[len(value) - k :] if suffix else value[:k]
        if fnmatch.fnmatchcase(part, pattern):
            return value[: len(value) - k] if suffix else value[k:]
    return value


def _braced(body: str, env: Mapping[str, str]) -> str:
    j = 0
    while j < len(body) and body[j] in _NAME:
        j += 1
    name, rest = body[:j], body[j:]
    if not name:
        raise BuildError(f"bad substitution: ${{{body}}}")
    value = env.get(name)
    if not rest:
        return value or ""
    for op in (":-", ":+", "-", "+"):
        if rest.startswith(op):
            word = expand(rest[len(op) :], env)
            if op == ":-":
                return value if value else word
            if op == "-":
                return value if value is not None else word
            if op == ":+":
                return word if value else ""
            return word if value is not None else ""
    value = value or ""
    for op, longest, suffix in (
        ("##", True, False),
        ("#", False, False),
        ("%%", True, True),
        ("%", False, True),
    ):
        if rest.startswith(op):
            return _strip(value, expand(rest[len(op) :], env), longest, suffix)
    if rest.startswith("/"):
        every = rest.startswith("//")
        pat, _, repl = rest[2 if every else 1 :].partition("/")
        pat, repl = expand(pat, env), expand(repl, env)
        return _replace(value, pat, repl, every)
    raise BuildError(f"unsupported modifier in ${{{body}}}")


def _replace(value: str, pat: str, repl: str, every: bool) -> str:
    out, i = [], 0
    while i < len(value):
        for k in range(len(value) - i, 0, -1):
            if fnmatch.fnmatchcase(value[i : i + k], pat):
                out.append(repl)
                i += k
                if not every:
                    return "".join(out) + value[i:]
                break
        else:
            out.append(value[i])
            i += 1
    return "".join(out)


def literal(text: str) -> str:
    """The canonical form of a literal string (no substitution will happen in it)."""
    return text.replace("\\", "\\\\").replace("$", "\\$")

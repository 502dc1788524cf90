"""Validation of one compose file against spec-schemas/compose-schema.json, with file and line.

A small validator for the keywords that schema uses (type, properties, patternProperties,
additionalProperties, items, oneOf, enum, required, pattern): importing and compiling jsonschema
costs about 190 ms per command, so jsonschema is the tests' oracle for this module instead."""

from __future__ import annotations

import functools
import json
import pathlib
import re
from typing import Any

from ._yaml import LineDict, strip_tags
from .errors import ConfigError

_TYPES = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
}


@functools.cache
def schema() -> dict[str, Any]:
    return json.loads(pathlib.Path(__file__).with_name("compose-schema.json").read_text())


@functools.cache
def _rx(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


class _Invalid(Exception):
    def __init__(self, path: list[Any], message: str, key: Any = None) -> None:
        super().__init__(message)
        self.path = path
        self.message = message
        self.key = key


def _check(value: Any, sch: dict[str, Any], path: list[Any]) -> None:
    t = sch.get("type")
    if t is not None:
        types = t if isinstance(t, list) else [t]
        if not any(_TYPES[x](value) for x in types):
            raise _Invalid(path, f"{_show(value)} is not of type {', '.join(repr(x) for x in types)}")
    if "enum" in sch and value not in sch["enum"]:
        raise _Invalid(path, f"{_show(value)} is not one of {sch['enum']}")
    if "pattern" in sch and isinstance(value, str) and not _rx(sch["pattern"]).search(value):
        raise _Invalid(path, f"{value!r} does not match {sch['pattern']!r}")
    if "oneOf" in sch:
        errors = []
        matched = 0
        for alt in sch["oneOf"]:
            try:
                _check(value, alt, path)
                matched += 1
            except _Invalid as exc:
                errors.append(exc)
        if matched != 1:
            if matched == 0:
                # the branch whose type matched explains best
                deep = sorted(errors, key=lambda e: (-len(e.path), "is not of type" in e.message))
                raise deep[0]
            raise _Invalid(path, f"{_show(value)} is valid under more than one of the given schemas")
    if isinstance(value, dict):
        props = sch.get("properties") or {}
        pats = sch.get("patternProperties") or {}
        addl = sch.get("additionalProperties", True)
        for req in sch.get("required") or []:
            if req not in value:
                raise _Invalid(path, f"{req!r} is a required property")
        for k, v in value.items():
            sub = path + [k]
            matched_any = False
            if k in props:
                _check(v, props[k], sub)
                matched_any = True
            for p, psch in pats.items():
                if _rx(p).search(str(k)):
                    _check(v, psch, sub)
                    matched_any = True
            if not matched_any:
                if addl is False:
                    raise _Invalid(path, f"additional property {k!r} is not allowed", key=k)
                if isinstance(addl, dict):
                    _check(v, addl, sub)
    if isinstance(value, list) and isinstance(sch.get("items"), dict):
        for i, v in enumerate(value):
            _check(v, sch["items"], path + [i])


def _show(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) < 60 else text[:57] + "..."


def _where(doc: Any, path: list[Any]) -> str:
    node, where = doc, getattr(doc, "file", "")
    if isinstance(doc, LineDict):
        where = doc.where()
    for part in path:
        if isinstance(node, LineDict):
            where = node.where(part) if part in node else node.where()
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            break
    return where


def validate(doc: Any, filename: str) -> None:
    """Raise ConfigError for the first schema violation, naming the file, line and key path."""
    data = strip_tags(doc)
    if not isinstance(data, dict):
        raise ConfigError(f"{filename}: top-level object must be a mapping")
    try:
        _check(data, schema(), [])
    except _Invalid as err:
        dotted = ".".join(str(p) for p in err.path) or "(top level)"
        path = err.path + ([err.key] if err.key is not None else [])
        raise ConfigError(f"{_where(doc, path)}: {dotted}: {err.message}") from None


def is_valid(data: Any) -> bool:
    try:
        _check(strip_tags(data), schema(), [])
        return True
    except _Invalid:
        return False

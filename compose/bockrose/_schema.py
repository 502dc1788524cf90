"""Validation of one compose file against spec-schemas/compose-schema.json, with file and line."""

from __future__ import annotations

import functools
import json
import pathlib
from typing import Any

from ._yaml import LineDict, strip_tags
from .errors import ConfigError


@functools.cache
def _validator():
    import jsonschema

    schema = json.loads((pathlib.Path(__file__).with_name("compose-schema.json")).read_text())
    return jsonschema.Draft202012Validator(schema)


def _where(doc: Any, path: list[Any]) -> str:
    node, where = doc, getattr(doc, "file", "")
    for part in path:
        if isinstance(node, LineDict):
            where = node.where(part) if part in node else node.where()
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            break
    if isinstance(node, LineDict) and not path:
        where = node.where()
    return where


def validate(doc: Any, filename: str) -> None:
    """Raise ConfigError for the first schema violation, naming the file, line and key path."""
    data = strip_tags(doc)
    if not isinstance(data, dict):
        raise ConfigError(f"{filename}: top-level object must be a mapping")
    errors = sorted(_validator().iter_errors(data), key=lambda e: list(map(str, e.absolute_path)))
    if not errors:
        return
    err = errors[0]
    while err.context:  # oneOf: the most specific branch failure
        err = sorted(err.context, key=lambda e: -len(e.absolute_path))[0]
    path = list(err.absolute_path)
    dotted = ".".join(str(p) for p in path) or "(top level)"
    if err.validator == "additionalProperties":
        node = data
        for p in path:
            node = node[p]
        allowed = set((err.schema.get("properties") or {}))
        extra = [k for k in node if k not in allowed and not str(k).startswith("x-")]
        if "patternProperties" in err.schema and "^x-" not in err.schema["patternProperties"]:
            pats = list(err.schema["patternProperties"])
            import re

            extra = [k for k in node if not any(re.search(p, str(k)) for p in pats)]
        key = extra[0] if extra else "?"
        where = _where(doc, path + [key])
        raise ConfigError(f"{where}: {dotted}: additional property {key!r} is not allowed")
    raise ConfigError(f"{_where(doc, path)}: {dotted}: {err.message}")

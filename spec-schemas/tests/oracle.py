"""jsonschema validators for our schemas and for the upstream ones (the test oracle).

Shared by spec-schemas/tests/test_corpus.py and runtime/tests/unit/test_schema_validator.py.
Uses the ``jsonschema`` library, so it is for tests only (never the runtime's hot path).

The upstream runtime-spec schemas are read from, in order:
``$BOCK_OCI_SPEC_DIR`` (the ``oci-spec`` directory or its ``runtime-spec-schema``
subdirectory), then ``shared/oci-spec/runtime-spec-schema`` beside the repository or
one of its parents (``<repo>/../shared`` in CI, ``/work/shared`` for a worktree).
"""

from __future__ import annotations

import functools
import json
import os
import pathlib

from jsonschema import Draft4Validator, Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4, DRAFT202012

TESTS = pathlib.Path(__file__).resolve().parent
SCHEMAS = TESTS.parent
REPO = SCHEMAS.parent
CORPUS = TESTS / "corpus"
KINDS = ("config", "process", "state", "features")
# kind -> the root schema, ours and upstream's ("process" is what `exec --process` reads)
ROOTS = {"config": "config-schema.json", "state": "state-schema.json", "features": "features-schema.json"}
OURS_ROOTS = dict(ROOTS, process="config-schema.json#/$defs/process")
UPSTREAM_ROOTS = dict(ROOTS, process="config-schema.json#/properties/process")
OURS_BASE = "file:///bock/spec-schemas/"
UPSTREAM_BASE = "file:///oci/runtime-spec/schema/"


def upstream_dir() -> pathlib.Path | None:
    env = os.environ.get("BOCK_OCI_SPEC_DIR")
    candidates = []
    if env:
        candidates += [pathlib.Path(env), pathlib.Path(env) / "runtime-spec-schema"]
    for parent in (REPO, *REPO.parents):
        candidates.append(parent / "shared" / "oci-spec" / "runtime-spec-schema")
    for path in candidates:
        if (path / "config-schema.json").is_file():
            return path
    return None


def _registry(directory: pathlib.Path, base: str, spec) -> Registry:
    return Registry().with_resources(
        (base + path.name, Resource.from_contents(json.loads(path.read_text()), default_specification=spec))
        for path in sorted(directory.glob("*.json"))
    )


@functools.cache
def ours(kind: str) -> Draft202012Validator:
    registry = _registry(SCHEMAS, OURS_BASE, DRAFT202012)
    return Draft202012Validator({"$ref": OURS_BASE + OURS_ROOTS[kind]}, registry=registry)


@functools.cache
def upstream(kind: str) -> Draft4Validator:
    directory = upstream_dir()
    if directory is None:
        raise FileNotFoundError("upstream runtime-spec schemas not found (set BOCK_OCI_SPEC_DIR)")
    registry = _registry(directory, UPSTREAM_BASE, DRAFT4)
    return Draft4Validator({"$ref": UPSTREAM_BASE + UPSTREAM_ROOTS[kind]}, registry=registry)


def corpus(kind: str | None = None) -> list[tuple[str, str, pathlib.Path]]:
    """(kind, expected verdict "valid"/"invalid", path) for every corpus document."""
    out = []
    for k in (kind,) if kind else KINDS:
        for verdict in ("valid", "invalid"):
            out += [(k, verdict, p) for p in sorted((CORPUS / k / verdict).glob("*.json"))]
    return out


def load(path: pathlib.Path) -> object:
    return json.loads(path.read_text())


def expected_errors(kind: str) -> dict[str, dict[str, str]]:
    return json.loads((CORPUS / kind / "expected-errors.json").read_text())


def json_path(parts) -> str:
    """jsonschema's error.absolute_path as the JSON path bock reports ($.a.b[0]["x.y"])."""
    out = "$"
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part.isidentifier():
            out += "." + part
        else:
            out += "[" + json.dumps(part) + "]"
    return out

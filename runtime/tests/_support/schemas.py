"""Validators for the upstream runtime-spec schemas (test oracle only, never copied)."""

from __future__ import annotations

import json
import os

UPSTREAM = "/work/shared/oci-spec/runtime-spec-schema"


def upstream_validator(name: str):
    """A Draft 7 validator for ``name`` (e.g. ``config-schema.json``) with its sibling $refs
    resolved; None when jsonschema or the schemas are not available."""
    try:
        import jsonschema
        from referencing import Registry, Resource
        from referencing.jsonschema import DRAFT7
    except ImportError:
        return None
    if not os.path.isdir(UPSTREAM):
        return None
    resources = []
    for fname in os.listdir(UPSTREAM):
        if fname.endswith(".json"):
            with open(os.path.join(UPSTREAM, fname)) as f:
                doc = json.load(f)
            resources.append((fname, Resource.from_contents(doc, default_specification=DRAFT7)))
    registry = Registry().with_resources(resources)
    with open(os.path.join(UPSTREAM, name)) as f:
        schema = json.load(f)
    return jsonschema.Draft7Validator(schema, registry=registry)

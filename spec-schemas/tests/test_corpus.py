"""Our schemas against the corpus and against the upstream runtime-spec schemas (the oracle).

Every corpus document must get:
1. from our schemas, the verdict its directory names (valid/ or invalid/);
2. from the upstream schemas, the same verdict as from ours, except for the documented
   DIVERGENT documents below, where upstream must give the opposite verdict (so that the
   divergence stays real and listed);
3. if invalid, exactly one error from ours, at the path and with the keyword recorded in
   ``expected-errors.json`` (each invalid document breaks one rule).
"""

from __future__ import annotations

import importlib.util
import json
import pathlib
import sys

import pytest
from jsonschema import Draft202012Validator

_spec = importlib.util.spec_from_file_location(
    "bock_schema_oracle", pathlib.Path(__file__).with_name("oracle.py")
)
oracle = importlib.util.module_from_spec(_spec)
sys.modules.setdefault("bock_schema_oracle", oracle)
_spec.loader.exec_module(oracle)

# Documents on which our schemas deliberately disagree with upstream's. Each is a case where
# the upstream schema is stricter than the spec prose or lags behind it.
DIVERGENT = {
    "state/valid/divergent-runc-1.1.5-state-paused.json": (
        'runtime.md lets a runtime add states; runc (and bock) report "paused". Upstream\'s enum lacks it.'
    ),
    "config/valid/divergent-pids-without-limit.json": (
        "config-linux.md: pids.limit is OPTIONAL (Go: *int64 omitempty, so `pids: {}` is what a caller "
        "sends for an unset limit). Upstream's schema still requires it."
    ),
    "config/valid/divergent-other-platform-sections-type-only.json": (
        "config.md: windows, vm, solaris, zos and freebsd are OPTIONAL platform sections that a Linux "
        "runtime ignores; our schemas check only that each is an object (their contents are out of scope)."
    ),
    "features/valid/divergent-null-properties.json": (
        "features.md: every property except ociVersionMin/Max MAY be absent or null. Upstream rejects null."
    ),
    "features/invalid/divergent-memoryPolicy-bad-mode.json": (
        "features-linux.md v1.3.0 defines linux.memoryPolicy.modes; the upstream schema does not describe it."
    ),
    "features/invalid/divergent-intelRdt-schemata-string.json": (
        "features-linux.md v1.3.0 defines linux.intelRdt.schemata (bool); the upstream schema does not."
    ),
}

DOCS = oracle.corpus()
IDS = [f"{kind}/{verdict}/{path.name}" for kind, verdict, path in DOCS]


def test_corpus_size() -> None:
    assert len(DOCS) >= 60
    for kind in oracle.KINDS:
        for verdict in ("valid", "invalid"):
            assert any(k == kind and v == verdict for k, v, _ in DOCS), f"no {kind}/{verdict} documents"


def test_real_caller_configs_present() -> None:
    names = {path.name for kind, verdict, path in DOCS if kind == "config" and verdict == "valid"}
    for prefix in (
        "runc-1.1.5-spec",
        "runc-1.1.5-spec-rootless",
        "containerd-1.6-",
        "podman-4.3-",
        "buildah-1.28-",
    ):
        assert any(n.startswith(prefix) for n in names), prefix


@pytest.mark.parametrize("name", sorted(p.name for p in oracle.SCHEMAS.glob("*.json")))
def test_our_schema_files_are_valid_2020_12(name: str) -> None:
    Draft202012Validator.check_schema(json.loads((oracle.SCHEMAS / name).read_text()))


@pytest.mark.parametrize(("kind", "verdict", "path"), DOCS, ids=IDS)
def test_our_verdict_matches_directory(kind: str, verdict: str, path: pathlib.Path) -> None:
    errors = list(oracle.ours(kind).iter_errors(oracle.load(path)))
    assert (not errors) == (verdict == "valid"), [e.message for e in errors]


@pytest.mark.parametrize(("kind", "verdict", "path"), DOCS, ids=IDS)
def test_same_verdict_as_upstream(kind: str, verdict: str, path: pathlib.Path) -> None:
    if oracle.upstream_dir() is None:
        pytest.skip(
            "upstream runtime-spec schemas not found: set BOCK_OCI_SPEC_DIR or put shared/ beside the repo"
        )
    doc = oracle.load(path)
    ours_valid = oracle.ours(kind).is_valid(doc)
    upstream_valid = oracle.upstream(kind).is_valid(doc)
    key = f"{kind}/{verdict}/{path.name}"
    if key in DIVERGENT:
        assert ours_valid != upstream_valid, f"listed as divergent but both agree now: {DIVERGENT[key]}"
    else:
        assert ours_valid == upstream_valid, [e.message for e in oracle.upstream(kind).iter_errors(doc)]


def test_divergent_documents_exist() -> None:
    for key in DIVERGENT:
        assert (oracle.CORPUS / key).is_file(), key
        assert pathlib.Path(key).name.startswith("divergent-"), key


INVALID = [(kind, path) for kind, verdict, path in DOCS if verdict == "invalid"]


@pytest.mark.parametrize(("kind", "path"), INVALID, ids=[f"{k}/{p.name}" for k, p in INVALID])
def test_invalid_document_breaks_exactly_the_recorded_rule(kind: str, path: pathlib.Path) -> None:
    expected = oracle.expected_errors(kind)[path.name]
    errors = list(oracle.ours(kind).iter_errors(oracle.load(path)))
    assert [(oracle.json_path(e.absolute_path), e.validator) for e in errors] == [
        (expected["path"], expected["rule"])
    ]


def test_every_invalid_document_has_an_expectation() -> None:
    for kind in oracle.KINDS:
        names = {p.name for k, p in INVALID if k == kind}
        assert names == set(oracle.expected_errors(kind))

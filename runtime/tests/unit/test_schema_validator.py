"""bock._schema (the lean validator) against the jsonschema library on OUR schemas.

The lean validator must reach the same verdict, and report the same (path, keyword) errors,
as ``jsonschema`` (draft 2020-12) on every corpus document and on a few hundred deterministic
random mutations of the valid ones. Further tests pin the error text, the keywords our
schemas do not use yet, the pattern matcher, and the import budget (no json/re/typing).

Measurement (prints numbers, asserts nothing about time; skipped unless asked for):
    BOCK_MEASURE=1 /work/venv/bin/python -m pytest -s -p no:cacheprovider --import-mode=importlib \
        runtime/tests/unit/test_schema_validator.py -k measure
"""

from __future__ import annotations

import importlib.util
import json
import os
import pathlib
import random
import re
import subprocess
import sys

import pytest
from bock import _jsonlite, _schema
from bock.errors import ConfigError
from jsonschema import Draft202012Validator

ROOT = pathlib.Path(__file__).resolve().parents[3]
RUNTIME = ROOT / "runtime"
_spec = importlib.util.spec_from_file_location(
    "bock_schema_oracle", ROOT / "spec-schemas" / "tests" / "oracle.py"
)
oracle = importlib.util.module_from_spec(_spec)
sys.modules.setdefault("bock_schema_oracle", oracle)
_spec.loader.exec_module(oracle)

DOCS = oracle.corpus()
IDS = [f"{kind}/{verdict}/{path.name}" for kind, verdict, path in DOCS]
CONTAINERD = oracle.CORPUS / "config" / "valid" / "containerd-1.6-1.json"


def lean_errors(doc: object, kind: str) -> list[tuple[str, str]]:
    return sorted((e.path, e.rule) for e in _schema.errors(doc, kind))


def library_errors(doc: object, kind: str) -> list[tuple[str, str]]:
    return sorted(
        (oracle.json_path(e.absolute_path), e.validator) for e in oracle.ours(kind).iter_errors(doc)
    )


# --- the corpus --------------------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "verdict", "path"), DOCS, ids=IDS)
def test_corpus_same_errors_as_jsonschema(kind: str, verdict: str, path: pathlib.Path) -> None:
    doc = _jsonlite.loads(path.read_bytes())
    lean = lean_errors(doc, kind)
    assert lean == library_errors(doc, kind)
    assert (not lean) == (verdict == "valid")


INVALID = [(kind, path) for kind, verdict, path in DOCS if verdict == "invalid"]


@pytest.mark.parametrize(("kind", "path"), INVALID, ids=[f"{k}/{p.name}" for k, p in INVALID])
def test_validate_reports_the_recorded_error(kind: str, path: pathlib.Path) -> None:
    expected = oracle.expected_errors(kind)[path.name]
    with pytest.raises(_schema.SchemaError) as info:
        _schema.validate(_jsonlite.loads(path.read_bytes()), kind, source=f"{kind}.json")
    err = info.value
    assert (err.path, err.rule) == (expected["path"], expected["rule"])
    assert str(err).startswith(f"{kind}.json: {expected['path']}: ")
    assert str(err).endswith(f" (rule: {expected['rule']})")
    assert isinstance(err, ConfigError)


def test_valid_corpus_validates() -> None:
    for kind, verdict, path in DOCS:
        if verdict == "valid":
            assert _schema.validate(_jsonlite.loads(path.read_bytes()), kind) is None


# --- mutations ---------------------------------------------------------------------------------

POOL = [
    None,
    True,
    False,
    0,
    -1,
    1,
    1.0,
    0.5,
    2**31,
    2**32,
    2**63,
    2**64,
    -(2**63) - 1,
    "",
    "x",
    "BOGUS_VALUE",
    "RLIMIT_nofile",
    "0-3;7",
    "MB:\n",
    "2mb",
    "CAP_x",
    [],
    [1],
    ["a"],
    {},
    {"a": 1},
    {"type": "pid"},
]


def _nodes(doc: object, path: tuple = ()) -> list[tuple]:
    out = [path]
    if isinstance(doc, dict):
        for key, value in doc.items():
            out += _nodes(value, (*path, key))
    elif isinstance(doc, list):
        for i, value in enumerate(doc):
            out += _nodes(value, (*path, i))
    return out


def _mutate(doc: object, rng: random.Random) -> object:
    doc = json.loads(json.dumps(doc))
    nodes = [p for p in _nodes(doc) if p]
    if not nodes:
        return rng.choice(POOL)
    path = rng.choice(nodes)
    parent = doc
    for key in path[:-1]:
        parent = parent[key]
    key = path[-1]
    old = parent[key]
    action = rng.randrange(6)
    if action == 0:
        del parent[key]
    elif action == 1 and isinstance(old, str):
        parent[key] = rng.choice([old.lower(), old + "_X", old[:-1], old + "\n"])
    elif action == 2 and isinstance(old, int | float) and not isinstance(old, bool):
        parent[key] = rng.choice([-old - 1, old + 2**32, old + 2**64, -(2**64), float(old), old + 0.5])
    elif action == 3 and isinstance(old, dict):
        old[rng.choice(["x-unknown", "type", "path", "limit", "com.example.k"])] = rng.choice(POOL)
    else:
        parent[key] = rng.choice(POOL)
    return doc


def _mutations(count_per_doc: int = 8) -> list:
    rng = random.Random(20261129)
    cases = []
    for kind, verdict, path in DOCS:
        if verdict != "valid":
            continue
        doc = json.loads(path.read_text())
        for i in range(count_per_doc):
            cases.append((f"{kind}/{path.stem}#{i}", kind, _mutate(doc, rng)))
    return cases


MUTATIONS = _mutations()


def test_enough_mutations_and_both_verdicts() -> None:
    assert len(MUTATIONS) >= 300
    invalid = sum(1 for _, kind, doc in MUTATIONS if not oracle.ours(kind).is_valid(doc))
    assert 100 <= invalid <= len(MUTATIONS) - 30, invalid  # both outcomes are well represented


@pytest.mark.parametrize(("name", "kind", "doc"), MUTATIONS, ids=[m[0] for m in MUTATIONS])
def test_mutation_same_errors_as_jsonschema(name: str, kind: str, doc: object) -> None:
    lean = lean_errors(doc, kind)
    library = library_errors(doc, kind)
    assert lean == library
    if lean:
        with pytest.raises(_schema.SchemaError) as info:
            _schema.validate(doc, kind)
        best = (info.value.path, info.value.rule)
        assert best in library
        # like jsonschema.best_match: no error is shallower than the one reported
        depth = len(re.findall(r"\.|\[", best[0]))
        assert depth == min(len(re.findall(r"\.|\[", p)) for p, _ in library)


# --- messages ----------------------------------------------------------------------------------


def _containerd() -> dict:
    return _jsonlite.loads(CONTAINERD.read_bytes())


def _raises(doc: object, kind: str = "config") -> _schema.SchemaError:
    with pytest.raises(_schema.SchemaError) as info:
        _schema.validate(doc, kind)
    return info.value


def test_message_minimum() -> None:
    doc = _containerd()
    doc["process"]["user"]["uid"] = -1
    err = _raises(doc)
    assert str(err) == "config.json: $.process.user.uid: -1 is less than the minimum of 0 (rule: minimum)"
    assert (err.path, err.rule) == ("$.process.user.uid", "minimum")


def test_message_enum_lists_the_allowed_values() -> None:
    doc = _containerd()
    doc["linux"]["namespaces"][0]["type"] = "pidd"
    assert str(_raises(doc)) == (
        'config.json: $.linux.namespaces[0].type: "pidd" is not one of '
        '["pid", "network", "mount", "ipc", "uts", "user", "cgroup", "time"] (rule: enum)'
    )


def test_message_required() -> None:
    doc = _containerd()
    del doc["process"]["cwd"]
    assert str(_raises(doc)) == 'config.json: $.process: "cwd" is a required property (rule: required)'


def test_message_type_pattern_and_quoted_keys() -> None:
    doc = _containerd()
    doc["mounts"][2]["destination"] = 5
    assert str(_raises(doc)) == 'config.json: $.mounts[2].destination: 5 is not of type "string" (rule: type)'
    doc = _containerd()
    doc["process"]["rlimits"][0]["type"] = "RLIMIT_nofile"
    assert str(_raises(doc)) == (
        'config.json: $.process.rlimits[0].type: "RLIMIT_nofile" does not match "^RLIMIT_[A-Z]+$" '
        "(rule: pattern)"
    )
    doc = _containerd()
    doc["annotations"] = {"io.example/key": 3}
    assert str(_raises(doc)).startswith('config.json: $.annotations["io.example/key"]: 3 is not of type')


def test_long_values_are_shortened_and_long_enums_counted() -> None:
    doc = _containerd()
    doc["process"]["args"] = "x" * 500
    assert len(str(_raises(doc))) < 200
    doc = _containerd()
    doc["linux"]["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_ARM64"]}
    assert "... (23 values)]" in str(_raises(doc))


def test_most_relevant_error_is_the_shallowest() -> None:
    doc = _containerd()
    doc["process"]["user"]["uid"] = -1
    del doc["ociVersion"]
    err = _raises(doc)
    assert (err.path, err.rule, err.what) == ("$", "required", '"ociVersion" is a required property')
    assert len(_schema.errors(doc)) == 2


def test_source_and_kind() -> None:
    err = _raises({"id": "x"}, "state")
    assert str(err).startswith("state.json: $: ")
    with pytest.raises(_schema.SchemaError, match=r"^bundle/config.json: \$: "):
        _schema.validate([], "config", source="bundle/config.json")
    assert _schema.errors({"ociVersionMin": "1.0.0"}, "features")[0].rule == "required"
    with pytest.raises(ValueError, match="unknown document kind"):
        _schema.validate({}, "bogus")


def test_integral_float_is_an_integer_as_in_draft_2020_12() -> None:
    doc = _containerd()
    doc["process"]["user"]["uid"] = 1.0
    assert _schema.errors(doc) == []
    assert oracle.ours("config").is_valid(doc)
    doc["process"]["user"]["uid"] = True  # but a boolean is not
    assert [e.rule for e in _schema.errors(doc)] == ["type"]


# --- keywords our schemas do not use (yet): same results as jsonschema ------------------------

SYNTHETIC = [
    ({"anyOf": [{"type": "string"}, {"type": "integer", "minimum": 3}]}, ["a", 3, 2, None, 3.5]),
    ({"oneOf": [{"type": "integer"}, {"minimum": 2}]}, [1, 2, 2.5, "x"]),
    ({"not": {"type": "string"}}, ["a", 1, None]),
    (
        {
            "if": {"properties": {"status": {"const": "created"}}},
            "then": {"required": ["pid"]},
            "else": {"maxProperties": 2},
        },
        [
            {"status": "created"},
            {"status": "created", "pid": 1},
            {"status": "x", "a": 1},
            {"status": "x", "a": 1, "b": 2},
        ],
    ),
    ({"const": {"a": [1, True]}}, [{"a": [1, True]}, {"a": [1.0, True]}, {"a": [1, 1]}, {"a": [True, True]}]),
    ({"enum": [1, "a", None, False]}, [1, 1.0, True, False, 0, None, "a", "b"]),
    (
        {"prefixItems": [{"type": "integer"}, {"type": "string"}], "items": False},
        [[], [1], [1, "a"], [1, "a", 2], ["a"]],
    ),
    ({"prefixItems": [{"type": "integer"}]}, [[1, "x"], ["x"]]),
    ({"uniqueItems": True}, [[1, 2], [1, 1.0], [1, True], [[1], [1]], [{"a": 1}, {"a": 1}], [0, False]]),
    (
        {
            "properties": {"a": {}},
            "patternProperties": {"^x-": {"type": "integer"}},
            "additionalProperties": False,
        },
        [{"a": 1}, {"x-b": 1}, {"x-b": "s"}, {"b": 1}, {"b": 1, "c": 2}],
    ),
    (
        {"minProperties": 1, "maxProperties": 2, "propertyNames": {"minLength": 2}},
        [{}, {"ab": 1}, {"a": 1}, {"ab": 1, "cd": 2, "ef": 3}],
    ),
    ({"exclusiveMinimum": 0, "exclusiveMaximum": 10, "multipleOf": 2.5}, [0, 2.5, 5, 7, 10, 0.1, True]),
    ({"multipleOf": 3}, [9, 10, 9.0, 4.5]),
    ({"minLength": 2, "maxLength": 3}, ["a", "ab", "abcd", "\u00e9\u00e9"]),
    ({"minItems": 1, "maxItems": 2, "contains": {"type": "string"}}, [[], [1], ["a"], ["a", 1, 2]]),
    (
        {"dependentRequired": {"listenerMetadata": ["listenerPath"]}},
        [{"listenerMetadata": "m"}, {"listenerMetadata": "m", "listenerPath": "/p"}],
    ),
    ({"type": ["string", "null"], "pattern": "^a.c$"}, ["abc", "a\nc", "abc\n", None, 3]),
    ({"pattern": "(ab)+|c"}, ["abab", "c", "d"]),  # beyond the small matcher: falls back to re
    (
        {
            "$defs": {"node": {"type": "object", "properties": {"next": {"$ref": "#/$defs/node"}}}},
            "$ref": "#/$defs/node",
        },
        [{"next": {"next": {}}}, {"next": {"next": 1}}],
    ),
    ({"properties": {"a": True, "b": False}}, [{"a": 1}, {"b": 1}]),
]


@pytest.mark.parametrize(("schema", "instances"), SYNTHETIC, ids=[str(i) for i in range(len(SYNTHETIC))])
def test_synthetic_schema_same_errors_as_jsonschema(
    schema: dict, instances: list, tmp_path: pathlib.Path
) -> None:
    (tmp_path / "s.json").write_text(json.dumps(schema))
    check = _schema._Compiler(str(tmp_path)).compile_ref("s.json", "")
    library = Draft202012Validator(schema)
    for instance in instances:
        raw: list = []
        check(instance, None, raw)
        lean = sorted((_schema._path_str(loc), rule) for loc, rule, _, _ in raw)
        found = list(library.iter_errors(instance))
        if any(e.validator is None for e in found):
            # jsonschema reports a `false` subschema at the parent, with no keyword: verdict only
            assert bool(lean) == bool(found), instance
            continue
        assert lean == sorted((oracle.json_path(e.absolute_path), e.validator) for e in found), instance


def test_unsupported_keyword_fails_loudly(tmp_path: pathlib.Path) -> None:
    (tmp_path / "s.json").write_text(json.dumps({"properties": {"a": {"unevaluatedProperties": False}}}))
    check = _schema._Compiler(str(tmp_path)).compile_ref("s.json", "")
    check({}, None, [])  # compiled lazily: only reaching "a" compiles it
    with pytest.raises(_schema.SchemaLoadError, match="unevaluatedProperties"):
        check({"a": {}}, None, [])


def test_our_schemas_use_only_supported_keywords() -> None:
    # Compilation is lazy, so check every subschema position of every file up front.
    known = set(_schema._KEYWORDS) | set(_schema._IGNORED) | {"then", "else", "prefixItems"}
    maps = ("properties", "patternProperties", "$defs", "definitions")
    single = ("items", "additionalProperties", "not", "if", "then", "else", "contains", "propertyNames")
    seen: set[str] = set()

    def walk(schema: object, where: str) -> None:
        if isinstance(schema, bool):
            return
        assert isinstance(schema, dict), where
        for key, value in schema.items():
            assert key in known, f"{where}: {key}"
            seen.add(key)
            if key in maps:
                for name, sub in value.items():
                    walk(sub, f"{where}/{key}/{name}")
            elif key in single:
                walk(value, f"{where}/{key}")
            elif key in ("allOf", "anyOf", "oneOf", "prefixItems"):
                for i, sub in enumerate(value):
                    walk(sub, f"{where}/{key}/{i}")

    for path in sorted((ROOT / "spec-schemas").glob("*.json")):
        walk(json.loads(path.read_text()), path.name)
    assert {"type", "properties", "required", "enum", "pattern", "minimum", "maximum", "$ref"} <= seen


def test_missing_schema_directory(tmp_path: pathlib.Path) -> None:
    with pytest.raises(_schema.SchemaLoadError, match="cannot load schema"):
        _schema.load("config", str(tmp_path))


# --- the pattern matcher -----------------------------------------------------------------------


def _schema_patterns() -> set[str]:
    found: set[str] = set()

    def walk(node: object) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "pattern":
                    found.add(value)
                elif key == "patternProperties":
                    found.update(value)
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    # the runtime's schemas (and what they $ref); the builder's and compose tool's schemas
    # are validated by those tools, with jsonschema, off bock's hot path
    runtime_files = {"config-schema.json", "config-linux.json", "defs.json"}
    runtime_files |= {"state-schema.json", "features-schema.json", "features-linux.json"}
    for path in (ROOT / "spec-schemas").glob("*.json"):
        if path.name in runtime_files:
            walk(json.loads(path.read_text()))
    return found


def test_every_schema_pattern_avoids_re() -> None:
    patterns = _schema_patterns()
    assert len(patterns) >= 6
    for pattern in patterns:
        assert _schema._SimplePattern.parse(pattern) is not None, pattern


@pytest.mark.parametrize(
    "pattern", sorted(_schema_patterns() | {"a.c", "x?y+z*", "[^a-c]$", "^\\.x", "[]a-]", "b\\n$"})
)
def test_simple_pattern_agrees_with_re_search(pattern: str) -> None:
    rng = random.Random(pattern)
    alphabet = "RLIMT_ABCZcbup019, -MB:\nKGx.\\]"
    compiled = re.compile(pattern)
    simple = _schema._SimplePattern.parse(pattern)
    samples = [
        "",
        "RLIMIT_CORE",
        "RLIMIT_CORE\n",
        "RLIMIT_CORE\n\n",
        "0-3,7",
        "MB:0=20",
        "MB:0\n1",
        "2MB",
        "0MB",
        "CAP_SYS_ADMIN",
    ]
    samples += ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 9))) for _ in range(3000)]
    for text in samples:
        assert simple.search(text) == bool(compiled.search(text)), (pattern, text)


@pytest.mark.parametrize("pattern", ["(a)", "a|b", "\\d", "a{2}", "[[:alpha:]]", "a*?", "\\w+"])
def test_simple_pattern_declines_what_it_cannot_do(pattern: str) -> None:
    assert _schema._SimplePattern.parse(pattern) is None


# --- the import budget -------------------------------------------------------------------------

_PROBE = """
import sys
sys.path.insert(0, {runtime!r})
before = set(sys.modules)
from bock import _jsonlite, _schema
doc = _jsonlite.loads(open({config!r}, "rb").read())
_schema.validate(doc)
doc["process"]["rlimits"][0]["type"] = "bad"
try:
    _schema.validate(doc)
except _schema.SchemaError as err:
    assert err.rule == "pattern", err
print(" ".join(sorted(set(sys.modules) - before)))
"""


def test_validate_imports_nothing_heavy() -> None:
    code = _PROBE.format(runtime=str(RUNTIME), config=str(CONTAINERD))
    out = subprocess.run(
        ["/usr/bin/python3", "-I", "-S", "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    assert "bock._schema" in out
    for heavy in ("re", "json", "typing", "enum", "collections", "dataclasses", "pathlib", "jsonschema"):
        assert heavy not in out, heavy


# --- measurement helper (prints; no timed assertion) ------------------------------------------


@pytest.mark.skipif(
    not os.environ.get("BOCK_MEASURE"), reason="measurement only: set BOCK_MEASURE=1 and use -s"
)
def test_measure(rounds: int = 400) -> None:
    import statistics
    import time

    doc = _jsonlite.loads(CONTAINERD.read_bytes())
    _schema.validate(doc)
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        _schema.validate(doc)
        times.append(time.perf_counter() - t0)
    print(
        f"validate(containerd config), warm: median {statistics.median(times) * 1e6:.1f} us "
        f"over {rounds} runs"
    )

    cold = (
        f"import os, sys, time; sys.path.insert(0, {str(RUNTIME)!r}); t0 = time.perf_counter(); "
        "from bock import _jsonlite, _schema; t1 = time.perf_counter(); "
        f"d = _jsonlite.loads(open({str(CONTAINERD)!r}, 'rb').read()); _schema.validate(d); "
        "t2 = time.perf_counter(); print((t1 - t0) * 1e3, (t2 - t1) * 1e3)"
    )
    runs = []
    for _ in range(30):
        out = subprocess.run(
            ["/usr/bin/python3", "-I", "-S", "-c", cold], capture_output=True, text=True, check=True
        )
        runs.append(tuple(map(float, out.stdout.split())))
    imp = statistics.median(r[0] for r in runs)
    first = statistics.median(r[1] for r in runs)
    print(
        f"fresh /usr/bin/python3 -I -S (os loaded): import bock._schema {imp:.2f} ms "
        "(with bock, _json, bock.errors)"
    )
    print(f"  read config + load/compile schemas + first validate {first:.2f} ms; total {imp + first:.2f} ms")
    tree = subprocess.run(
        [
            "/usr/bin/python3",
            "-I",
            "-S",
            "-X",
            "importtime",
            "-c",
            f"import sys; sys.path.insert(0, {str(RUNTIME)!r}); import bock._schema",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stderr
    print("-X importtime (self | cumulative us):")
    print("\n".join(line for line in tree.splitlines() if "bock" in line or "_json" in line))

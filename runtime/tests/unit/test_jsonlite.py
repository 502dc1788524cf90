"""bock._jsonlite must read and write exactly what the json module does."""

from __future__ import annotations

import json

import pytest
from bock import _jsonlite

DOCS = [
    {},
    [],
    {"a": 1, "b": [1, 2.5, -3, True, False, None], "c": {"d": "e"}},
    {"unicode": "héllo \u2603 \U0001f600", "ctl": 'a\nb\t"c\\', "empty": ""},
    [[[]], [{}], {"x": [{}]}],
    {"big": 2**63 + 1, "neg": -(2**40), "float": 1e-9, "zero": 0.0},
    "just a string",
    42,
    None,
]


@pytest.mark.parametrize("doc", DOCS)
def test_dumps_compact_matches_json(doc):
    assert _jsonlite.dumps(doc) == json.dumps(doc, separators=(",", ":"))


@pytest.mark.parametrize("doc", DOCS)
@pytest.mark.parametrize("indent", [1, 2, 4])
def test_dumps_indented_matches_json(doc, indent):
    assert _jsonlite.dumps(doc, indent=indent) == json.dumps(doc, indent=indent)


@pytest.mark.parametrize("doc", DOCS)
def test_loads_matches_json(doc):
    text = json.dumps(doc, indent=2)
    assert _jsonlite.loads(text) == json.loads(text)
    assert _jsonlite.loads(text.encode()) == json.loads(text)


def test_loads_utf8_bom_and_whitespace():
    assert _jsonlite.loads(b'\xef\xbb\xbf \n {"a": 1} \n') == {"a": 1}


def test_loads_constants():
    got = _jsonlite.loads("[NaN, Infinity, -Infinity]")
    assert got[0] != got[0] and got[1] == float("inf") and got[2] == float("-inf")


@pytest.mark.parametrize(
    "bad", ["", "{", '{"a": }', "[1,]", '{"a" 1}', "tru", '"unterminated', "{} {}", "1 2"]
)
def test_loads_rejects_what_json_rejects(bad):
    with pytest.raises(ValueError):
        json.loads(bad)
    with pytest.raises(_jsonlite.JSONError):
        _jsonlite.loads(bad)


def test_dumps_rejects_unserializable():
    with pytest.raises(TypeError):
        _jsonlite.dumps({"a": object()})


def test_ensure_ascii_like_json():
    assert _jsonlite.dumps("é") == '"\\u00e9"' == json.dumps("é")


def test_errors_without_the_json_module_loaded():
    """bock never imports json on its hot path; the C scanner then cannot build its error
    (SystemError) unless _jsonlite handles it."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from bock import _jsonlite\n"
        "assert 'json' not in sys.modules\n"
        "for bad in ['{garbage', '{', '\"x', '{\"a\" 1}', '[1,]', 'tru']:\n"
        "    try:\n"
        "        _jsonlite.loads(bad)\n"
        "    except _jsonlite.JSONError as err:\n"
        "        print(type(err).__name__, err)\n"
    )
    res = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env={"PYTHONPATH": ":".join(sys.path)}
    )
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert len(lines) == 6 and all(line.startswith("JSONError ") for line in lines), lines
    assert "Expecting property name enclosed in double quotes" in lines[0]

"""JSON without `re` and `enum`.

``import json`` pulls in ``re`` and ``enum`` (about 5 ms here, a quarter of a whole
``runc run``). The C scanner and encoder in ``_json`` need neither, so the hot path
uses them directly. Output of :func:`dumps` matches ``json.dumps`` (compact or with
an indent, ``ensure_ascii`` on).
"""

from __future__ import annotations

import _json


class _Ctx:
    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    memo: dict = {}

    @staticmethod
    def parse_constant(name: str) -> float:
        return {"-Infinity": float("-inf"), "Infinity": float("inf"), "NaN": float("nan")}[name]


_scan = _json.make_scanner(_Ctx())
_WS = " \t\n\r"


class JSONError(ValueError):
    pass


def loads(text: str | bytes) -> object:
    if isinstance(text, bytes | bytearray):
        # as decode("utf-8-sig"), without importing that codec's module
        text = (text[3:] if text[:3] == b"\xef\xbb\xbf" else text).decode("utf-8")
    start = len(text) - len(text.lstrip(_WS))
    try:
        obj, end = _scan(text, start)
    except StopIteration as err:
        raise JSONError(f"invalid JSON at character {err.value}") from None
    except (ValueError, SystemError):
        # The C scanner builds its errors with json.decoder and, unless json is already
        # imported, fails with SystemError instead. Only on this error path: ask json why.
        import json

        try:
            json.loads(text)
        except ValueError as err:
            raise JSONError(str(err)) from None
        raise JSONError("invalid JSON") from None
    rest = text[end:].strip(_WS)
    if rest:
        raise JSONError(f"extra data at character {end}")
    return obj


def _default(obj: object) -> object:
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


_compact = _json.make_encoder(
    None, _default, _json.encode_basestring_ascii, None, ":", ",", False, False, True
)


def dumps(obj: object, indent: int | None = None) -> str:
    if indent is None:
        return "".join(_compact(obj, 0))
    out: list[str] = []
    _pretty(obj, out, " " * indent, "\n")
    return "".join(out)


def _pretty(obj: object, out: list[str], step: str, nl: str) -> None:
    if isinstance(obj, dict):
        if not obj:
            out.append("{}")
            return
        inner = nl + step
        out.append("{")
        first = True
        for key, value in obj.items():
            out.append(inner if first else "," + inner)
            first = False
            out.append(_json.encode_basestring_ascii(str(key)))
            out.append(": ")
            _pretty(value, out, step, inner)
        out.append(nl + "}")
    elif isinstance(obj, list | tuple):
        if not obj:
            out.append("[]")
            return
        inner = nl + step
        out.append("[")
        for i, value in enumerate(obj):
            out.append(inner if i == 0 else "," + inner)
            _pretty(value, out, step, inner)
        out.append(nl + "]")
    else:
        out.append("".join(_compact(obj, 0)))

"""A lean JSON Schema validator for the create hot path.

``import jsonschema`` costs about 90 ms; ``bock create`` must stay within a few
milliseconds. This module interprets the keywords that our own schemas in
``spec-schemas/`` use (draft 2020-12 semantics), so those JSON files stay the
single source of truth: nothing is generated or copied from them.

The schema files are read from ``schemas/`` next to this module (a symlink to
``spec-schemas/`` in a source tree, package data when installed) and compiled
once per process into closures. ``re`` is imported only when a ``pattern``
keyword is actually evaluated.

    validate(doc, kind="config", source="config.json")   raises SchemaError (the most relevant error)
    errors(doc, kind="config")                            every error, in schema order

A keyword that this module does not implement makes loading fail loudly
(:class:`SchemaLoadError`), so a schema change cannot be silently ignored.
"""

from __future__ import annotations

import os

from bock import _jsonlite
from bock.errors import ConfigError

SCHEMA_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "schemas")
# kind -> (schema file, JSON pointer inside it). "process" is the object `exec --process` reads.
ROOTS = {
    "config": ("config-schema.json", ""),
    "process": ("config-schema.json", "/$defs/process"),
    "state": ("state-schema.json", ""),
    "features": ("features-schema.json", ""),
}
SOURCES = {
    "config": "config.json",
    "process": "process.json",
    "state": "state.json",
    "features": "features.json",
}


class SchemaError(ConfigError):
    """A document broke a schema rule.

    ``path`` is a JSON path such as ``$.mounts[2].destination``; ``rule`` is the
    keyword broken (``type``, ``required``, ``enum``, ``minimum``, ``pattern``...).
    ``context`` holds the errors of each alternative for ``anyOf``/``oneOf``.
    """

    def __init__(self, source: str, path: str, rule: str, what: str, context: tuple = ()) -> None:
        super().__init__(f"{source}: {path}: {what} (rule: {rule})")
        self.source = source
        self.path = path
        self.rule = rule
        self.what = what
        self.context = context


class SchemaLoadError(Exception):
    """The schema files are missing, unreadable, or use a keyword this validator lacks."""


# ---------------------------------------------------------------------------------------------
# Paths and values in messages

# An instance location is built only when an error is reported: None is the root,
# otherwise a (parent, key) pair.


def _path_str(loc: tuple | None) -> str:
    keys = []
    while loc is not None:
        loc, key = loc
        keys.append(key)
    out = ["$"]
    for key in reversed(keys):
        if type(key) is int:
            out.append(f"[{key}]")
        elif key.isidentifier():
            out.append("." + key)
        else:
            out.append("[" + _jsonlite.dumps(key) + "]")
    return "".join(out)


def _path_len(loc: tuple | None) -> int:
    n = 0
    while loc is not None:
        loc = loc[0]
        n += 1
    return n


def _show(value: object, limit: int = 60) -> str:
    try:
        text = _jsonlite.dumps(value)
    except (TypeError, ValueError):
        text = repr(value)
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return text


def _show_list(values: list) -> str:
    shown = ", ".join(_show(v, 40) for v in values[:10])
    if len(values) > 10:
        shown += f", ... ({len(values)} values)"
    return "[" + shown + "]"


# ---------------------------------------------------------------------------------------------
# JSON equality as JSON Schema defines it (1 == 1.0, but true != 1)


def _freeze(value: object) -> object:
    t = type(value)
    if t is bool:
        return ("\0bool", value)
    if t is list:
        return ("\0list", tuple(_freeze(v) for v in value))
    if t is dict:
        return ("\0dict", frozenset((k, _freeze(v)) for k, v in value.items()))
    return value


def _is_integer(value: object) -> bool:
    t = type(value)
    return t is int or (t is float and value.is_integer())


_SIMPLE_TYPES = {"string": str, "boolean": bool, "array": list, "object": dict, "null": type(None)}
_TYPE_TESTS = {
    "string": lambda v: type(v) is str,
    "integer": _is_integer,
    "number": lambda v: type(v) is int or type(v) is float,
    "boolean": lambda v: type(v) is bool,
    "null": lambda v: v is None,
    "array": lambda v: type(v) is list,
    "object": lambda v: type(v) is dict,
}


# ---------------------------------------------------------------------------------------------
# Patterns without `re`: importing re costs about 5 ms, more than the whole validation.
# _SimplePattern handles the regular expressions our schemas use (anchors, literals, ".",
# character classes with ranges, and the quantifiers * + ?) with exactly the semantics of
# re.search; anything else (groups, alternation, {m,n}, \\d, \\w, ...) falls back to re.

_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "f": "\f", "v": "\v", "\\": "\\"}
_LITERAL_ESCAPES = frozenset(".^$*+?[](){}|-/\\ ")


class _SimplePattern:
    __slots__ = ("anchored_end", "anchored_start", "atoms", "pattern")

    def __init__(self, pattern: str, atoms: tuple, start: bool, end: bool) -> None:
        self.pattern = pattern
        self.atoms = atoms
        self.anchored_start = start
        self.anchored_end = end

    @classmethod
    def parse(cls, pattern: str) -> _SimplePattern | None:
        i, n = 0, len(pattern)
        start = pattern.startswith("^")
        if start:
            i = 1
        end = False
        atoms = []
        while i < n:
            ch = pattern[i]
            if ch == "$" and i == n - 1:
                end = True
                i += 1
                continue
            if ch in "^$()|{}*+?":
                return None
            if ch == ".":
                test = _not_newline
                i += 1
            elif ch == "\\":
                lit = cls._escape(pattern, i + 1)
                if lit is None:
                    return None
                test = frozenset(lit).__contains__
                i += 2
            elif ch == "[":
                parsed = cls._klass(pattern, i + 1)
                if parsed is None:
                    return None
                test, i = parsed
            else:
                test = frozenset(ch).__contains__
                i += 1
            lo, hi = 1, 1
            if i < n and pattern[i] in "*+?":
                lo, hi = {"*": (0, None), "+": (1, None), "?": (0, 1)}[pattern[i]]
                i += 1
                if i < n and pattern[i] in "*+?{":  # lazy or possessive forms
                    return None
            atoms.append((test, lo, hi))
        return cls(pattern, tuple(atoms), start, end)

    @staticmethod
    def _escape(pattern: str, i: int) -> str | None:
        if i >= len(pattern):
            return None
        ch = pattern[i]
        if ch in _ESCAPES:
            return _ESCAPES[ch]
        if ch in _LITERAL_ESCAPES:
            return ch
        return None  # \\d, \\w, \\s, \\b, back-references, ...: leave them to re

    @classmethod
    def _klass(cls, pattern: str, i: int):
        n = len(pattern)
        negate = i < n and pattern[i] == "^"
        if negate:
            i += 1
        chars: set[str] = set()
        ranges = []
        first = True
        while True:
            if i >= n:
                return None
            ch = pattern[i]
            if ch == "]" and not first:
                i += 1
                break
            first = False
            if ch == "[":
                return None  # nested sets / POSIX classes
            if ch == "\\":
                lit = cls._escape(pattern, i + 1)
                if lit is None:
                    return None
                ch = lit
                i += 2
            else:
                i += 1
            if i + 1 < n and pattern[i] == "-" and pattern[i + 1] != "]":
                hi = pattern[i + 1]
                i += 2
                if hi == "\\":
                    hi = cls._escape(pattern, i)
                    if hi is None:
                        return None
                    i += 1
                elif hi == "[":
                    return None
                if hi < ch:
                    return None
                ranges.append((ch, hi))
            else:
                chars.add(ch)
        chars_f = frozenset(chars)
        ranges_t = tuple(ranges)

        def test(c: str) -> bool:
            hit = c in chars_f
            if not hit:
                for lo, hi in ranges_t:
                    if lo <= c <= hi:
                        hit = True
                        break
            return hit != negate

        return test, i

    def search(self, text: str) -> bool:
        starts = (0,) if self.anchored_start else range(len(text) + 1)
        return any(self._match(0, text, pos) for pos in starts)

    def _match(self, k: int, text: str, pos: int) -> bool:
        atoms = self.atoms
        n = len(text)
        while k < len(atoms):
            test, lo, hi = atoms[k]
            if lo == 1 and hi == 1:
                if pos < n and test(text[pos]):
                    pos += 1
                    k += 1
                    continue
                return False
            count = 0
            while (hi is None or count < hi) and pos + count < n and test(text[pos + count]):
                count += 1
            while count >= lo:
                if self._match(k + 1, text, pos + count):
                    return True
                count -= 1
            return False
        if self.anchored_end:
            # like re: "$" also matches just before a newline that ends the text
            return pos == n or (pos == n - 1 and text[pos] == "\n")
        return True


def _not_newline(c: str) -> bool:
    return c != "\n"


# ---------------------------------------------------------------------------------------------
# The compiler: a schema (dict or bool) becomes a function check(instance, loc, errs)
# that appends (loc, rule, what, context) tuples to errs.

_IGNORED = frozenset(
    (
        "$schema",
        "$id",
        "$defs",
        "definitions",
        "$comment",
        "title",
        "description",
        "default",
        "examples",
        "deprecated",
        "readOnly",
        "writeOnly",
        "format",
    )
)


class _Compiler:
    def __init__(self, directory: str) -> None:
        self.directory = directory
        self.documents: dict[str, object] = {}
        self.compiled: dict[tuple[str, str], object] = {}
        self.patterns: dict[str, object] = {}

    # -- documents and references ------------------------------------------------------------
    def document(self, name: str) -> object:
        doc = self.documents.get(name)
        if doc is None:
            path = os.path.join(self.directory, name)
            try:
                with open(path, "rb") as f:
                    doc = _jsonlite.loads(f.read())
            except (OSError, ValueError) as err:
                raise SchemaLoadError(f"cannot load schema {path}: {err}") from None
            self.documents[name] = doc
        return doc

    def resolve(self, name: str, pointer: str) -> object:
        node = self.document(name)
        if pointer:
            if pointer[0] != "/":
                raise SchemaLoadError(
                    f"{name}: unsupported $ref fragment {pointer!r} (anchors are not supported)"
                )
            if "%" in pointer:
                raise SchemaLoadError(f"{name}: percent-encoded $ref {pointer!r} is not supported")
            for part in pointer[1:].split("/"):
                part = part.replace("~1", "/").replace("~0", "~")
                try:
                    node = node[int(part)] if type(node) is list else node[part]
                except (KeyError, IndexError, ValueError, TypeError):
                    raise SchemaLoadError(f"{name}: $ref target #{pointer} does not exist") from None
        return node

    def compile_ref(self, name: str, pointer: str):
        key = (name, pointer)
        if key in self.compiled:
            fn = self.compiled[key]
            if fn is None:  # a cycle: bind late
                return _late(lambda: self.compiled[key])
            return fn
        self.compiled[key] = None
        fn = self.compile(self.resolve(name, pointer), name)
        self.compiled[key] = fn
        return fn

    def ref(self, ref: str, base: str):
        target, _, pointer = ref.partition("#")
        if target:
            if "/" in target or ":" in target:
                raise SchemaLoadError(f"{base}: only sibling-file $refs are supported, not {ref!r}")
            name = target
        else:
            name = base
        return self.compile_ref(name, pointer)

    # Compiling only what a document reaches keeps the load cost low: a typical config
    # never touches seccomp, blockIO, rdma, ...
    def lazy(self, schema: object, base: str):
        if schema is True or schema == {}:
            return _accept
        return _late(lambda: self.compile(schema, base))

    def lazy_ref(self, ref: str, base: str):
        return _late(lambda: self.ref(ref, base))

    def regex(self, pattern: str):
        """An object with ``search(text)``: our tiny matcher, or ``re`` for what it cannot do."""
        rx = self.patterns.get(pattern)
        if rx is None:
            rx = _SimplePattern.parse(pattern)
            if rx is None:
                import re  # only for a pattern beyond _SimplePattern, and only when evaluated

                rx = re.compile(pattern)
            self.patterns[pattern] = rx
        return rx

    # -- schemas ----------------------------------------------------------------------------------
    def compile(self, schema: object, base: str):
        if schema is True:
            return _accept
        if schema is False:
            return _reject
        if type(schema) is not dict:
            raise SchemaLoadError(f"{base}: a schema must be an object or a boolean, not {_show(schema)}")
        checks = []
        for keyword, value in schema.items():
            if keyword in _IGNORED:
                continue
            maker = _KEYWORDS.get(keyword)
            if maker is None:
                if keyword in ("then", "else", "prefixItems"):  # handled with if / items
                    if keyword == "prefixItems" and "items" not in schema:
                        checks.append(_items(self, schema, None, base))
                    continue
                raise SchemaLoadError(
                    f"{base}: JSON Schema keyword {keyword!r} is not supported by bock._schema"
                )
            check = maker(self, schema, value, base)
            if check is not None:
                checks.append(check)
        if not checks:
            return _accept
        if len(checks) == 1:
            return checks[0]
        checks = tuple(checks)

        def all_checks(inst, loc, errs):
            for check in checks:
                check(inst, loc, errs)

        return all_checks


def _late(make):
    """A check that builds the real check on first use (then calls it directly)."""
    cell: list = []

    def first_use(inst, loc, errs):
        if not cell:
            cell.append(make())
        cell[0](inst, loc, errs)

    return first_use


def _accept(inst, loc, errs):
    return None


def _reject(inst, loc, errs):
    errs.append((loc, "false", "no value is allowed here", ()))


# ---------------------------------------------------------------------------------------------
# Keywords. Each maker returns a check function (or None when the keyword is a no-op).


def _type(c: _Compiler, schema: dict, value: object, base: str):
    names = [value] if type(value) is str else list(value)
    for name in names:
        if name not in _TYPE_TESTS:
            raise SchemaLoadError(f"{base}: unknown type {name!r}")
    shown = ", ".join(f'"{n}"' for n in names)  # type names need no escaping
    if len(names) == 1:
        name = names[0]
        if name == "integer":

            def check_int(inst, loc, errs):
                t = type(inst)
                if t is not int and not (t is float and inst.is_integer()):
                    errs.append((loc, "type", f"{_show(inst)} is not of type {shown}", ()))

            return check_int
        pytype = _SIMPLE_TYPES.get(name)
        if pytype is not None:

            def check_one(inst, loc, errs):
                if type(inst) is not pytype:
                    errs.append((loc, "type", f"{_show(inst)} is not of type {shown}", ()))

            return check_one
    tests = tuple(_TYPE_TESTS[n] for n in names)

    def check_any(inst, loc, errs):
        for test in tests:
            if test(inst):
                return
        errs.append((loc, "type", f"{_show(inst)} is not of type {shown}", ()))

    return check_any


def _properties(c: _Compiler, schema: dict, value: dict, base: str):
    props = tuple((k, c.lazy(s, base)) for k, s in value.items())

    def check(inst, loc, errs):
        if type(inst) is dict:
            for key, sub in props:
                if key in inst:
                    sub(inst[key], (loc, key), errs)

    return check


def _required(c: _Compiler, schema: dict, value: list, base: str):
    names = tuple(value)
    if not names:
        return None

    def check(inst, loc, errs):
        if type(inst) is dict:
            for name in names:
                if name not in inst:
                    errs.append((loc, "required", f"{_show(name)} is a required property", ()))

    return check


def _pattern_properties(c: _Compiler, schema: dict, value: dict, base: str):
    pats = tuple((p, c.lazy(s, base)) for p, s in value.items())

    def check(inst, loc, errs):
        if type(inst) is dict and inst:
            for pattern, sub in pats:
                rx = c.regex(pattern)
                for key, item in inst.items():
                    if rx.search(key):
                        sub(item, (loc, key), errs)

    return check


def _additional_properties(c: _Compiler, schema: dict, value: object, base: str):
    known = frozenset(schema.get("properties", ()))
    patterns = tuple(schema.get("patternProperties", ()))
    sub = c.lazy(value, base)
    if sub is _accept:
        return None

    def extras(inst):
        for key in inst:
            if key in known:
                continue
            if patterns and any(c.regex(p).search(key) for p in patterns):
                continue
            yield key

    if value is False:

        def check_false(inst, loc, errs):
            if type(inst) is dict:
                bad = list(extras(inst))
                if bad:
                    names = ", ".join(_show(k) for k in bad)
                    verb = "was" if len(bad) == 1 else "were"
                    errs.append(
                        (
                            loc,
                            "additionalProperties",
                            f"additional properties are not allowed ({names} {verb} unexpected)",
                            (),
                        )
                    )

        return check_false

    def check(inst, loc, errs):
        if type(inst) is dict:
            for key in extras(inst):
                sub(inst[key], (loc, key), errs)

    return check


def _property_names(c: _Compiler, schema: dict, value: object, base: str):
    sub = c.compile(value, base)

    def check(inst, loc, errs):
        if type(inst) is dict:
            for key in inst:
                sub(key, loc, errs)

    return check


def _dependent_required(c: _Compiler, schema: dict, value: dict, base: str):
    deps = tuple((k, tuple(v)) for k, v in value.items())

    def check(inst, loc, errs):
        if type(inst) is dict:
            for key, needed in deps:
                if key in inst:
                    for name in needed:
                        if name not in inst:
                            errs.append(
                                (
                                    loc,
                                    "dependentRequired",
                                    f"{_show(name)} is required when {_show(key)} is present",
                                    (),
                                )
                            )

    return check


def _items(c: _Compiler, schema: dict, value: object, base: str):
    prefix = tuple(c.lazy(s, base) for s in schema.get("prefixItems", ()))
    rest = c.lazy(value, base) if value is not None else None
    if rest is _accept:
        rest = None
    start = len(prefix)
    simple = (
        _SIMPLE_TYPES.get(value["type"])
        if type(value) is dict and len(value) == 1 and "type" in value
        else None
    )
    if simple is not None and not prefix:  # e.g. {"items": {"type": "string"}}: no call per item
        shown = f'"{value["type"]}"'

        def check_simple(inst, loc, errs):
            if type(inst) is list:
                for i, item in enumerate(inst):
                    if type(item) is not simple:
                        errs.append(((loc, i), "type", f"{_show(item)} is not of type {shown}", ()))

        return check_simple
    if value is False:  # reported once, at the array (as jsonschema does)

        def check_closed(inst, loc, errs):
            if type(inst) is list:
                for i, sub in enumerate(prefix[: len(inst)]):
                    sub(inst[i], (loc, i), errs)
                if len(inst) > start:
                    what = f"expected at most {start} items, found {len(inst) - start} more"
                    errs.append((loc, "items", what, ()))

        return check_closed

    def check(inst, loc, errs):
        if type(inst) is list:
            for i, sub in enumerate(prefix[: len(inst)]):
                sub(inst[i], (loc, i), errs)
            if rest is not None:
                for i in range(start, len(inst)):
                    rest(inst[i], (loc, i), errs)

    return check


def _unique_items(c: _Compiler, schema: dict, value: bool, base: str):
    if not value:
        return None

    def check(inst, loc, errs):
        if type(inst) is list and len(inst) > 1:
            seen = set()
            for item in inst:
                frozen = _freeze(item)
                if frozen in seen:
                    errs.append((loc, "uniqueItems", f"{_show(inst)} has non-unique elements", ()))
                    return
                seen.add(frozen)

    return check


def _contains(c: _Compiler, schema: dict, value: object, base: str):
    sub = c.compile(value, base)
    low = schema.get("minContains", 1)
    high = schema.get("maxContains")

    def check(inst, loc, errs):
        if type(inst) is list:
            n = 0
            for item in inst:
                trial: list = []
                sub(item, None, trial)
                n += not trial
            if n < low:
                errs.append((loc, "contains", f"{_show(inst)} does not contain enough matching items", ()))
            elif high is not None and n > high:
                errs.append((loc, "maxContains", f"{_show(inst)} contains too many matching items", ()))

    return check


def _enum(c: _Compiler, schema: dict, value: list, base: str):
    if all(type(v) is str for v in value):
        allowed = frozenset(value)

        def check_str(inst, loc, errs):
            if type(inst) is not str or inst not in allowed:
                errs.append((loc, "enum", f"{_show(inst)} is not one of {_show_list(value)}", ()))

        return check_str
    frozen = [_freeze(v) for v in value]

    def check(inst, loc, errs):
        if _freeze(inst) not in frozen:
            errs.append((loc, "enum", f"{_show(inst)} is not one of {_show_list(value)}", ()))

    return check


def _const(c: _Compiler, schema: dict, value: object, base: str):
    frozen = _freeze(value)

    def check(inst, loc, errs):
        if _freeze(inst) != frozen:
            errs.append((loc, "const", f"{_show(value)} was expected, not {_show(inst)}", ()))

    return check


def _pattern(c: _Compiler, schema: dict, value: str, base: str):
    def check(inst, loc, errs):
        if type(inst) is str and not c.regex(value).search(inst):
            errs.append((loc, "pattern", f"{_show(inst)} does not match {_show(value)}", ()))

    return check


def _size(rule: str, pytype: type, at_least: bool, unit: str):
    """minItems, maxItems, minLength, maxLength, minProperties, maxProperties."""

    def maker(c: _Compiler, schema: dict, value: int, base: str):
        def check(inst, loc, errs):
            if type(inst) is pytype and (len(inst) < value if at_least else len(inst) > value):
                if at_least and value == 1:
                    what = f"{_show(inst)} should be non-empty"
                else:
                    what = f"{_show(inst)} has {'fewer' if at_least else 'more'} than {value} {unit}"
                errs.append((loc, rule, what, ()))

        return check

    return maker


def _bound(rule: str, op, text: str):
    def maker(c: _Compiler, schema: dict, value: object, base: str):
        def check(inst, loc, errs):
            t = type(inst)
            if (t is int or t is float) and op(inst, value):
                errs.append((loc, rule, f"{_show(inst)} is {text} {value}", ()))

        return check

    return maker


def _multiple_of(c: _Compiler, schema: dict, value: object, base: str):
    def check(inst, loc, errs):
        t = type(inst)
        if t is int or t is float:
            if type(value) is float or t is float:
                q = inst / value
                bad = q != int(q) if q == q and q not in (float("inf"), float("-inf")) else True
            else:
                bad = inst % value != 0
            if bad:
                errs.append((loc, "multipleOf", f"{_show(inst)} is not a multiple of {value}", ()))

    return check


def _ref(c: _Compiler, schema: dict, value: str, base: str):
    return c.lazy_ref(value, base)


def _all_of(c: _Compiler, schema: dict, value: list, base: str):
    subs = tuple(c.compile(s, base) for s in value)

    def check(inst, loc, errs):
        for sub in subs:
            sub(inst, loc, errs)

    return check


def _any_of(c: _Compiler, schema: dict, value: list, base: str):
    subs = tuple(c.compile(s, base) for s in value)

    def check(inst, loc, errs):
        context = []
        for sub in subs:
            trial: list = []
            sub(inst, loc, trial)
            if not trial:
                return
            context.extend(trial)
        errs.append(
            (loc, "anyOf", f"{_show(inst)} is not valid under any of the given schemas", tuple(context))
        )

    return check


def _one_of(c: _Compiler, schema: dict, value: list, base: str):
    subs = tuple(c.compile(s, base) for s in value)

    def check(inst, loc, errs):
        context = []
        matched = 0
        for sub in subs:
            trial: list = []
            sub(inst, loc, trial)
            if trial:
                context.extend(trial)
            else:
                matched += 1
        if matched == 0:
            errs.append(
                (loc, "oneOf", f"{_show(inst)} is not valid under any of the given schemas", tuple(context))
            )
        elif matched > 1:
            errs.append(
                (loc, "oneOf", f"{_show(inst)} is valid under more than one of the given schemas", ())
            )

    return check


def _not(c: _Compiler, schema: dict, value: object, base: str):
    sub = c.compile(value, base)

    def check(inst, loc, errs):
        trial: list = []
        sub(inst, loc, trial)
        if not trial:
            errs.append((loc, "not", f"{_show(inst)} should not be valid under {_show(value)}", ()))

    return check


def _if(c: _Compiler, schema: dict, value: object, base: str):
    cond = c.compile(value, base)
    then = c.compile(schema["then"], base) if "then" in schema else None
    other = c.compile(schema["else"], base) if "else" in schema else None
    if then is None and other is None:
        return None

    def check(inst, loc, errs):
        trial: list = []
        cond(inst, loc, trial)
        branch = other if trial else then
        if branch is not None:
            branch(inst, loc, errs)

    return check


_KEYWORDS = {
    "type": _type,
    "properties": _properties,
    "required": _required,
    "patternProperties": _pattern_properties,
    "additionalProperties": _additional_properties,
    "propertyNames": _property_names,
    "minProperties": _size("minProperties", dict, True, "properties"),
    "maxProperties": _size("maxProperties", dict, False, "properties"),
    "dependentRequired": _dependent_required,
    "items": _items,
    "minItems": _size("minItems", list, True, "items"),
    "maxItems": _size("maxItems", list, False, "items"),
    "uniqueItems": _unique_items,
    "contains": _contains,
    "minContains": lambda c, s, v, b: None,  # read by contains
    "maxContains": lambda c, s, v, b: None,
    "enum": _enum,
    "const": _const,
    "pattern": _pattern,
    "minLength": _size("minLength", str, True, "characters"),
    "maxLength": _size("maxLength", str, False, "characters"),
    "minimum": _bound("minimum", lambda a, b: a < b, "less than the minimum of"),
    "maximum": _bound("maximum", lambda a, b: a > b, "greater than the maximum of"),
    "exclusiveMinimum": _bound(
        "exclusiveMinimum", lambda a, b: a <= b, "less than or equal to the exclusive minimum of"
    ),
    "exclusiveMaximum": _bound(
        "exclusiveMaximum", lambda a, b: a >= b, "greater than or equal to the exclusive maximum of"
    ),
    "multipleOf": _multiple_of,
    "$ref": _ref,
    "allOf": _all_of,
    "anyOf": _any_of,
    "oneOf": _one_of,
    "not": _not,
    "if": _if,
}


# ---------------------------------------------------------------------------------------------
# Public API

_compiler: _Compiler | None = None
_roots: dict[str, object] = {}


def _root(kind: str):
    global _compiler
    check = _roots.get(kind)
    if check is None:
        root = ROOTS.get(kind)
        if root is None:
            raise ValueError(f"unknown document kind {kind!r} (expected one of {', '.join(ROOTS)})")
        if _compiler is None:
            _compiler = _Compiler(SCHEMA_DIR)
        check = _roots[kind] = _compiler.compile_ref(*root)
    return check


def load(kind: str = "config", directory: str | None = None):
    """Compile the schema for ``kind`` (from ``directory`` if given) and return its check function.

    Mostly for tests and measurements; :func:`validate` loads on first use.
    """
    if directory is not None:
        return _Compiler(directory).compile_ref(*ROOTS[kind])
    return _root(kind)


def _to_error(raw: tuple, source: str) -> SchemaError:
    loc, rule, what, context = raw
    return SchemaError(source, _path_str(loc), rule, what, tuple(_to_error(e, source) for e in context))


def _raw_errors(doc: object, kind: str) -> list:
    errs: list = []
    _root(kind)(doc, None, errs)
    return errs


def errors(doc: object, kind: str = "config", source: str | None = None) -> list[SchemaError]:
    """Every schema error of ``doc``, in schema order. An empty list means valid."""
    src = source or SOURCES.get(kind, kind)
    return [_to_error(e, src) for e in _raw_errors(doc, kind)]


_WEAK = ("anyOf", "oneOf")


def _relevance(raw: tuple) -> tuple:
    # Like jsonschema.best_match: prefer the shallowest error (it says "more" is wrong),
    # and a definite keyword over anyOf/oneOf at the same depth.
    return (_path_len(raw[0]), raw[1] in _WEAK)


def _best(raw_errors: list) -> tuple | None:
    if not raw_errors:
        return None
    chosen = min(raw_errors, key=_relevance)
    while chosen[3]:  # anyOf/oneOf: the deepest, most specific alternative error
        ranked = sorted(chosen[3], key=lambda e: (-_path_len(e[0]), e[1] in _WEAK))
        if len(ranked) > 1 and (_path_len(ranked[0][0]), ranked[0][1] in _WEAK) == (
            _path_len(ranked[1][0]),
            ranked[1][1] in _WEAK,
        ):
            break
        chosen = ranked[0]
    return chosen


def validate(doc: object, kind: str = "config", source: str = "config.json") -> None:
    """Raise :class:`SchemaError` for the most relevant error of ``doc``; return None if valid."""
    errs = _raw_errors(doc, kind)
    if errs:
        if kind != "config" and source == "config.json":
            source = SOURCES.get(kind, kind)
        raise _to_error(_best(errs), source)

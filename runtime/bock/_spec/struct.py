"""A lean typed-record base for the spec model.

attrs and cattrs cost about 35 ms to import here (more than a whole ``runc run``),
so the runtime's hot path uses this small equivalent instead: a class declares its
fields as annotations, optionally with :func:`field` for a JSON key, a converter and
a default, and gets ``__slots__``, ``__init__``, ``__repr__``, ``__eq__``,
``from_json`` and ``to_json``. JSON keys default to the camelCase of the attribute.
"""

from __future__ import annotations

from _collections_abc import Callable  # already loaded by os; collections.abc costs ~3 ms

_REQUIRED = object()


class _Field:
    __slots__ = ("conv", "default", "factory", "key")

    def __init__(self, key: str | None, conv: Callable | None, default: object, factory: Callable | None):
        self.key = key
        self.conv = conv
        self.default = default
        self.factory = factory


def field(
    *,
    key: str | None = None,
    conv: Callable | None = None,
    default: object = None,
    factory: Callable | None = None,
    required: bool = False,
) -> object:
    """Describe one field: its JSON ``key``, a converter for its JSON value, its default."""
    return _Field(key, conv, _REQUIRED if required else default, factory)


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


class _StructMeta(type):
    def __new__(mcls, name: str, bases: tuple, ns: dict):
        names = tuple(n for n in ns.get("__annotations__", {}) if not n.startswith("_"))
        fields = []
        for attr in names:
            spec = ns.pop(attr, None)
            if not isinstance(spec, _Field):
                spec = _Field(None, None, spec, None)
            spec.key = spec.key or _camel(attr)
            fields.append((attr, spec))
        ns["__slots__"] = names
        cls = super().__new__(mcls, name, bases, ns)
        inherited = [f for b in bases for f in getattr(b, "_fields", ())]
        cls._fields = tuple(inherited) + tuple(fields)
        return cls


class Struct(metaclass=_StructMeta):
    """Base of every spec record. Unknown JSON keys are ignored (the schema has judged them)."""

    _fields: tuple[tuple[str, _Field], ...] = ()

    def __init__(self, **values: object) -> None:
        for attr, spec in self._fields:
            if attr in values:
                value = values.pop(attr)
            elif spec.factory is not None:
                value = spec.factory()
            elif spec.default is _REQUIRED:
                raise TypeError(f"{type(self).__name__}: missing {attr}")
            else:
                value = spec.default
            object.__setattr__(self, attr, value)
        if values:
            raise TypeError(f"{type(self).__name__}: unknown fields {sorted(values)}")

    @classmethod
    def from_json(cls, data: dict):
        obj = cls.__new__(cls)
        for attr, spec in cls._fields:
            value = data.get(spec.key, _REQUIRED)
            if value is _REQUIRED or value is None:
                if spec.factory is not None:
                    value = spec.factory()
                elif spec.default is _REQUIRED:
                    raise KeyError(spec.key)
                else:
                    value = spec.default
            elif spec.conv is not None:
                value = spec.conv(value)
            object.__setattr__(obj, attr, value)
        return obj

    def to_json(self) -> dict:
        out = {}
        for attr, spec in self._fields:
            value = getattr(self, attr)
            if value is None:
                continue
            out[spec.key] = _unstructure(value)
        return out

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return all(getattr(self, a) == getattr(other, a) for a, _ in self._fields)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        inner = ", ".join(f"{a}={getattr(self, a)!r}" for a, _ in self._fields)
        return f"{type(self).__name__}({inner})"


def _unstructure(value: object) -> object:
    if isinstance(value, Struct):
        return value.to_json()
    if isinstance(value, list | tuple):
        return [_unstructure(v) for v in value]
    if isinstance(value, dict):
        return {k: _unstructure(v) for k, v in value.items()}
    return value


def list_of(conv: Callable) -> Callable[[list], list]:
    """Converter for a JSON array whose items go through ``conv``."""
    return lambda items: [conv(item) for item in items]


def struct_list(cls: type[Struct]) -> Callable[[list], list]:
    return list_of(cls.from_json)

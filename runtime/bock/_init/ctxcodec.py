"""The init's context as bytes, for the re-exec into a sealed interpreter (bock._init.exeseal).

``pickle`` would do, but even the C ``_pickle`` imports functools and collections (about
3 ms on each side of the exec); ``marshal`` is built in. The object graph is flattened to
what marshal stores (None, bool, int, float, str, bytes, list, dict, tuple), with tagged
tuples for everything else, so every real tuple is tagged too:

* an instance of a Python class: its ``__slots__`` (and ``__dict__``) values, rebuilt with
  ``object.__new__`` and ``object.__setattr__`` (spec records are slotted and frozen); an
  object seen twice (the Spec shared by the context and its Security) is one object again;
* a class that defines ``__reduce__`` returning ``(callable, args)``: rebuilt by that call
  (a compiled seccomp filter: its ctypes pointer is valid in one process only);
* modules, classes and functions by name; sockets by fd number (the fd is inherited);
* a ctypes object anywhere else is refused: it may hold an address.
"""

from __future__ import annotations

import marshal
import sys

_TUPLE = "\x00t"
_SET = "\x00s"
_FROZENSET = "\x00f"
_OBJ = "\x00o"
_REF = "\x00r"
_CALL = "\x00c"
_MODULE = "\x00m"
_GLOBAL = "\x00g"
_SOCKET = "\x00k"

_PLAIN = (type(None), bool, int, float, str, bytes)


def _slots(cls: type) -> list[str]:
    names: list[str] = []
    for klass in cls.__mro__:
        slots = klass.__dict__.get("__slots__", ())
        for name in (slots,) if isinstance(slots, str) else slots:
            if name not in ("__dict__", "__weakref__") and name not in names:
                names.append(name)
    return names


def dumps(obj: object) -> bytes:
    import _socket
    import ctypes

    cdata = ctypes.c_int.__mro__[2]  # _ctypes._CData: every ctypes object
    module_type = type(sys)
    function_type = type(_slots)
    builtin_type = type(len)
    memo: dict[int, int] = {}
    keep: list[object] = []  # ids stay unique while the objects live

    def enc(o: object) -> object:
        t = type(o)
        if t in _PLAIN:
            return o
        if t is list:
            return [enc(x) for x in o]
        if t is dict:
            return {enc(k): enc(v) for k, v in o.items()}
        if t is tuple:
            return (_TUPLE, *[enc(x) for x in o])
        if t is set or t is frozenset:
            return (_SET if t is set else _FROZENSET, *[enc(x) for x in o])
        if t is module_type:
            return (_MODULE, o.__name__)
        if isinstance(o, _socket.socket):
            return (_SOCKET, o.fileno(), o.family, o.type)
        if (
            isinstance(o, type)
            or t is function_type
            or (t is builtin_type and type(o.__self__) is module_type)
        ):
            if "<" in o.__qualname__:  # <locals>, <lambda>: not reachable by name
                raise TypeError(f"{o.__qualname__}: a local function cannot cross the re-exec")
            return (_GLOBAL, o.__module__, o.__qualname__)  # a class or a module-level function
        if isinstance(o, cdata):
            raise TypeError(f"{t.__name__}: a ctypes object cannot cross the re-exec")
        if isinstance(o, _PLAIN):
            raise TypeError(f"{t.__name__}: a subclass of a built-in type cannot cross the re-exec")
        key = id(o)
        if key in memo:
            return (_REF, memo[key])
        index = memo[key] = len(memo)
        keep.append(o)
        if t.__reduce__ is not object.__reduce__:
            fn, args = o.__reduce__()[:2]
            return (_CALL, index, enc(fn), enc(args))
        state = {name: enc(getattr(o, name)) for name in _slots(t) if hasattr(o, name)}
        for name, value in getattr(o, "__dict__", {}).items():
            state[name] = enc(value)
        return (_OBJ, index, t.__module__, t.__qualname__, state)

    return marshal.dumps(enc(obj))


def _global(module: str, qualname: str) -> object:
    __import__(module)
    obj = sys.modules[module]
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


def loads(data: bytes) -> object:
    objects: dict[int, object] = {}

    def dec(o: object) -> object:
        t = type(o)
        if t is list:
            return [dec(x) for x in o]
        if t is dict:
            return {dec(k): dec(v) for k, v in o.items()}
        if t is not tuple:
            return o
        tag = o[0]
        if tag == _TUPLE:
            return tuple(dec(x) for x in o[1:])
        if tag == _OBJ:
            _, index, module, qualname, state = o
            obj = objects[index] = object.__new__(_global(module, qualname))
            for name, value in state.items():
                object.__setattr__(obj, name, dec(value))
            return obj
        if tag == _REF:
            return objects[o[1]]
        if tag == _GLOBAL:
            return _global(o[1], o[2])
        if tag == _MODULE:
            __import__(o[1])
            return sys.modules[o[1]]
        if tag == _SOCKET:
            import _socket

            return _socket.socket(o[2], o[3], 0, o[1])
        if tag == _CALL:
            _, index, fn, args = o
            obj = objects[index] = dec(fn)(*dec(args))
            return obj
        if tag == _SET:
            return {dec(x) for x in o[1:]}
        if tag == _FROZENSET:
            return frozenset(dec(x) for x in o[1:])
        raise ValueError(f"unknown tag {tag!r}")

    return dec(marshal.loads(data))

"""The lean typed-record base (bock._spec.struct)."""

from __future__ import annotations

import pytest
from bock._spec.struct import Struct, field, list_of, struct_list


class Inner(Struct):
    value: int = 0


class Outer(Struct):
    name: str = field(required=True)
    some_thing: int = 3
    renamed: str | None = field(key="otherKey")
    inner: Inner | None = field(conv=Inner.from_json)
    inners: list[Inner] = field(conv=struct_list(Inner), factory=list)
    doubled: list[int] = field(conv=list_of(lambda x: x * 2), factory=list)


class Child(Inner):
    extra: str = "e"


def test_camel_case_keys_and_renames():
    o = Outer.from_json({"name": "n", "someThing": 5, "otherKey": "r"})
    assert (o.name, o.some_thing, o.renamed) == ("n", 5, "r")


def test_defaults_and_factories_are_fresh():
    a = Outer.from_json({"name": "a"})
    b = Outer.from_json({"name": "b"})
    assert a.some_thing == 3 and a.inner is None and a.inners == []
    a.inners.append(1)
    assert b.inners == []


def test_null_means_default():
    o = Outer.from_json({"name": "n", "someThing": None, "inners": None})
    assert o.some_thing == 3 and o.inners == []


def test_required_missing():
    with pytest.raises(KeyError):
        Outer.from_json({})
    with pytest.raises(TypeError, match="missing name"):
        Outer()


def test_nested_and_converters():
    o = Outer.from_json({"name": "n", "inner": {"value": 7}, "inners": [{"value": 1}, {}], "doubled": [1, 2]})
    assert o.inner == Inner(value=7)
    assert o.inners == [Inner(value=1), Inner(value=0)]
    assert o.doubled == [2, 4]


def test_unknown_json_keys_are_ignored_but_unknown_kwargs_are_not():
    assert Outer.from_json({"name": "n", "future": 1}).name == "n"
    with pytest.raises(TypeError, match="unknown fields"):
        Inner(value=1, nope=2)


def test_to_json_roundtrip_skips_none():
    doc = {"name": "n", "someThing": 3, "inner": {"value": 7}, "inners": [{"value": 1}], "doubled": []}
    o = Outer.from_json(doc)
    assert o.to_json() == doc
    assert "otherKey" not in o.to_json()


def test_eq_repr_hash_slots():
    assert Inner(value=1) == Inner(value=1) != Inner(value=2)
    assert Inner(value=1) != Child(value=1)
    assert repr(Inner(value=1)) == "Inner(value=1)"
    with pytest.raises(TypeError):
        hash(Inner())
    with pytest.raises(AttributeError):
        Inner().other = 1  # __slots__


def test_inheritance_keeps_parent_fields():
    c = Child.from_json({"value": 2})
    assert (c.value, c.extra) == (2, "e")
    assert [a for a, _ in Child._fields] == ["value", "extra"]

"""YAML loading that remembers where every mapping key came from (file and line) and understands
the compose merge tags `!reset` and `!override`."""

from __future__ import annotations

from typing import Any

import attrs
import yaml

from .errors import ConfigError


class LineDict(dict):
    """A dict that knows the source line of each of its keys (``where(key)``)."""

    __slots__ = ("file", "line", "lines")

    def where(self, key: Any = None) -> str:
        line = self.lines.get(key, self.line) if key is not None else self.line
        return f"{self.file}:{line}" if line else str(self.file)


@attrs.frozen
class Reset:
    """`!reset`: remove the value inherited from earlier files."""

    value: Any = None


@attrs.frozen
class Override:
    """`!override`: replace the inherited value instead of merging with it."""

    value: Any = None


class _Loader(yaml.SafeLoader):
    filename = "<stdin>"


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> LineDict:
    loader.flatten_mapping(node)  # YAML merge keys (<<: *anchor)
    out = LineDict()
    out.lines = {}
    out.file = loader.filename
    out.line = node.start_mark.line + 1
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in out:
            raise ConfigError(f"{loader.filename}:{key_node.start_mark.line + 1}: duplicate key {key!r}")
        out[key] = loader.construct_object(value_node, deep=True)
        out.lines[key] = key_node.start_mark.line + 1
    return out


def _construct_tagged(cls):
    def construct(loader: _Loader, node: yaml.Node):
        if isinstance(node, yaml.MappingNode):
            value = _construct_mapping(loader, node)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_scalar(node)
            if cls is Reset or value in ("", "null", "~"):
                value = None if value in ("", "null", "~") else value
        return cls(value)

    return construct


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_Loader.add_constructor("!reset", _construct_tagged(Reset))
_Loader.add_constructor("!override", _construct_tagged(Override))


def load_yaml(text: str, filename: str) -> Any:
    """Parse one compose document; YAML errors become ConfigError with file and line."""
    loader = _Loader(text)
    loader.filename = filename
    try:
        return loader.get_single_data()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{filename}:{mark.line + 1}" if mark else filename
        raise ConfigError(f"{where}: invalid YAML: {getattr(exc, 'problem', exc)}") from None
    finally:
        loader.dispose()


def strip_tags(value: Any) -> Any:
    """The value with `!override` unwrapped and `!reset` entries dropped (for schema checks)."""
    if isinstance(value, Override):
        return strip_tags(value.value)
    if isinstance(value, dict):
        out = LineDict() if isinstance(value, LineDict) else {}
        if isinstance(value, LineDict):
            out.lines, out.file, out.line = value.lines, value.file, value.line
        for k, v in value.items():
            if not isinstance(v, Reset):
                out[k] = strip_tags(v)
        return out
    if isinstance(value, list):
        return [strip_tags(v) for v in value if not isinstance(v, Reset)]
    return value


def dump_yaml(data: Any) -> str:
    class _Dumper(yaml.SafeDumper):
        pass

    _Dumper.add_representer(LineDict, lambda d, v: d.represent_dict(dict(v)))
    return yaml.dump(data, Dumper=_Dumper, sort_keys=True, default_flow_style=False, allow_unicode=True)

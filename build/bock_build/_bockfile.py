"""Bockfile front end (YAML, validated by spec-schemas/bockfile-schema.json) and the Dockerfile ->
Bockfile converter. Schema errors name the line (from the YAML node marks) and the rule broken."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import yaml

from ._graph import BuildGraph, Stage, Step
from .errors import BuildfileError

SCHEMA_FILE = Path(__file__).with_name("bockfile-schema.json")


@functools.cache
def _validator():
    import jsonschema

    schema = json.loads(SCHEMA_FILE.read_text())
    return jsonschema.Draft202012Validator(schema)


def _canon(value: Any) -> str:
    """Bockfile string -> graph canonical form: ``$$`` is a literal dollar, no backslash escapes."""
    return str(value).replace("\\", "\\\\").replace("$$", "\\$")


def _bock(text: str) -> str:
    """Graph canonical form -> Bockfile string."""
    out, i = [], 0
    while i < len(text):
        if text[i] == "\\" and i + 1 < len(text):
            out.append("$$" if text[i + 1] == "$" else text[i + 1])
            i += 2
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def _node_at(root: yaml.Node, path) -> yaml.Node:
    node = root
    for key in path:
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                if k.value == key:
                    node = v
                    break
            else:
                return node
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
            node = node.value[key]
        else:
            return node
    return node


def _where(path) -> str:
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "(top level)"


def _explain(err) -> str:
    rule = "/".join(str(p) for p in err.schema_path)
    message = err.message
    if (err.validator == "anyOf" and list(err.schema_path)[-1:] == ["anyOf"] and "step" in rule) or (
        err.validator == "anyOf"
        and isinstance(err.instance, dict)
        and "required" in json.dumps(err.validator_value)
    ):
        message = "a step needs exactly one of run, copy, add, env, workdir, user, arg, shell"
    elif err.validator == "oneOf" and err.context:
        best = min(err.context, key=lambda e: len(e.message))
        message = f"{message.split(' is not valid')[0]} is not valid: {best.message}"
    return f"{_where(err.absolute_path)}: {message} (rule: {err.validator} at #/{rule})"


def load_bockfile(text: str, file: str = "Bockfile") -> BuildGraph:
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else 1
        raise BuildfileError(file, line, f"invalid YAML: {getattr(exc, 'problem', exc)}") from None
    if root is None:
        raise BuildfileError(file, 1, "empty Bockfile: expected a mapping with 'stages'")
    errors = sorted(_validator().iter_errors(data), key=lambda e: (len(list(e.absolute_path)), e.message))
    if errors:
        err = max(errors, key=lambda e: len(list(e.absolute_path)))
        node = _node_at(root, err.absolute_path)
        raise BuildfileError(file, node.start_mark.line + 1, _explain(err))
    lines = {}

    def line_of(*path) -> int:
        return _node_at(root, path).start_mark.line + 1

    global_args = tuple(
        Step("arg", {"args": [_arg(k, v)]}, line_of("args", k), f"ARG {k}")
        for k, v in (data.get("args") or {}).items()
    )
    stages = []
    for si, s in enumerate(data["stages"]):
        steps: list[Step] = []
        for k, v in (s.get("args") or {}).items():
            steps.append(Step("arg", {"args": [_arg(k, v)]}, line_of("stages", si, "args", k), f"ARG {k}"))
        for i, raw in enumerate(s.get("steps") or []):
            steps.append(_step(raw, line_of("stages", si, "steps", i)))
        config = s.get("config") or {}
        for key, value in config.items():
            steps.extend(_config_steps(key, value, line_of("stages", si, "config", key)))
        stages.append(
            Stage(
                si, s.get("name"), _canon(s["from"]), tuple(steps), s.get("platform"), line_of("stages", si)
            )
        )
    del lines
    names = [s.name.lower() for s in stages if s.name]
    for s in stages:
        if s.name and names.count(s.name.lower()) > 1:
            raise BuildfileError(file, s.line, f"duplicate stage name {s.name!r}")
    return BuildGraph(file, global_args, tuple(stages))


def _arg(name: str, value: Any) -> dict[str, Any]:
    return {"name": name, "default": None if value is None else _canon(_scalar(value))}


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _step(raw: dict[str, Any], line: int) -> Step:
    if "run" in raw:
        mounts = [
            {k: (_scalar(v) if k != "rw" else ("true" if v else "false")) for k, v in m.items()}
            for m in raw.get("mounts") or []
        ]
        cmd = raw["run"]
        return Step(
            "run",
            {"command": cmd, "mounts": mounts, "network": raw.get("network", "default")},
            line,
            _text("RUN", cmd),
        )
    for verb in ("copy", "add"):
        if verb in raw:
            sources = raw[verb] if isinstance(raw[verb], list) else [raw[verb]]
            inline = {sources[0]: raw["content"]} if "content" in raw else {}
            args = {
                "sources": [_canon(x) for x in sources],
                "dest": _canon(raw["to"]),
                "from": _canon(raw["from"]) if raw.get("from") is not None else None,
                "chown": _canon(_scalar(raw["chown"])) if raw.get("chown") is not None else None,
                "chmod": _chmod(raw.get("chmod")),
                "add": verb == "add",
                "inline": inline,
                "exclude": [_canon(x) for x in raw.get("exclude") or []],
                "link": bool(raw.get("link", False)),
            }
            if raw.get("checksum"):
                args["checksum"] = raw["checksum"]
            return Step("copy", args, line, f"{verb.upper()} {' '.join(sources)} {raw['to']}")
    if "env" in raw:
        pairs = [[k, _canon(_scalar(v))] for k, v in raw["env"].items()]
        return Step(
            "env", {"pairs": pairs}, line, "ENV " + " ".join(f"{k}={v}" for k, v in raw["env"].items())
        )
    if "workdir" in raw:
        return Step("workdir", {"path": _canon(raw["workdir"])}, line, f"WORKDIR {raw['workdir']}")
    if "user" in raw:
        return Step("user", {"user": _canon(_scalar(raw["user"]))}, line, f"USER {raw['user']}")
    if "arg" in raw:
        return Step(
            "arg", {"args": [_arg(k, v) for k, v in raw["arg"].items()]}, line, "ARG " + " ".join(raw["arg"])
        )
    return Step("shell", {"argv": list(raw["shell"])}, line, f"SHELL {json.dumps(raw['shell'])}")


def _chmod(value: Any) -> str | None:
    if value is None:
        return None
    return oct(value)[2:] if isinstance(value, int) else str(value)


def _text(op: str, cmd: Any) -> str:
    return f"{op} {cmd if isinstance(cmd, str) else json.dumps(cmd)}"


def _config_steps(key: str, value: Any, line: int) -> list[Step]:
    if key in ("entrypoint", "cmd"):
        return [Step(key, {"command": value}, line, _text(key.upper(), value))]
    if key == "env":
        return [Step("env", {"pairs": [[k, _canon(_scalar(v))] for k, v in value.items()]}, line, "ENV")]
    if key == "labels":
        return [Step("label", {"pairs": [[k, _canon(_scalar(v))] for k, v in value.items()]}, line, "LABEL")]
    if key == "expose":
        return [Step("expose", {"ports": [_canon(_scalar(p)) for p in value]}, line, "EXPOSE")]
    if key == "volumes":
        return [Step("volume", {"paths": [_canon(p) for p in value]}, line, "VOLUME")]
    if key == "stopsignal":
        return [Step("stopsignal", {"signal": _canon(value)}, line, f"STOPSIGNAL {value}")]
    if key == "user":
        return [Step("user", {"user": _canon(_scalar(value))}, line, f"USER {value}")]
    if key == "workdir":
        return [Step("workdir", {"path": _canon(value)}, line, f"WORKDIR {value}")]
    if key == "onbuild":
        return [Step("onbuild", {"instruction": v}, line, f"ONBUILD {v}") for v in value]
    # healthcheck
    if value == "none":
        return [Step("healthcheck", {"test": ["NONE"]}, line, "HEALTHCHECK NONE")]
    from ._dockerfile import _duration

    test = value["test"]
    args: dict[str, Any] = {"test": ["CMD", *test] if isinstance(test, list) else ["CMD-SHELL", test]}
    for k in ("interval", "timeout", "start_period", "start_interval"):
        if k in value:
            args[k] = _duration(value[k], lambda m: BuildfileError("Bockfile", line, m))
    if "retries" in value:
        args["retries"] = value["retries"]
    return [Step("healthcheck", args, line, "HEALTHCHECK")]


# -- Dockerfile -> Bockfile ------------------------------------------------------------------------
def _go_duration(ns: int) -> str:
    for unit, size in (
        ("h", 3_600_000_000_000),
        ("m", 60_000_000_000),
        ("s", 1_000_000_000),
        ("ms", 1_000_000),
    ):
        if ns % size == 0:
            return f"{ns // size}{unit}"
    return f"{ns}ns"


def graph_to_bockfile(graph: BuildGraph) -> dict[str, Any]:
    out: dict[str, Any] = {"version": 1}
    gargs = {a["name"]: _opt(a["default"]) for s in graph.global_args for a in s.args["args"]}
    if gargs:
        out["args"] = gargs
    stages = []
    for stage in graph.stages:
        st: dict[str, Any] = {}
        if stage.name:
            st["name"] = stage.name
        st["from"] = _bock(stage.base)
        if stage.platform:
            st["platform"] = stage.platform
        steps: list[dict[str, Any]] = []
        config: dict[str, Any] = {}
        for step in stage.steps:
            a = step.args
            if step.op == "run":
                d: dict[str, Any] = {"run": a["command"]}
                if a["network"] != "default":
                    d["network"] = a["network"]
                if a["mounts"]:
                    d["mounts"] = [_mount_out(m) for m in a["mounts"]]
                steps.append(d)
            elif step.op == "copy":
                verb = "add" if a["add"] else "copy"
                srcs = [_bock(x) for x in a["sources"]]
                for name in srcs:
                    if name in a["inline"]:
                        steps.append({"copy": name, "to": _bock(a["dest"]), "content": a["inline"][name]})
                srcs = [x for x in srcs if x not in a["inline"]]
                if not srcs:
                    continue
                d = {verb: srcs[0] if len(srcs) == 1 else srcs, "to": _bock(a["dest"])}
                for k in ("from", "chown", "chmod"):
                    if a.get(k) is not None:
                        d[k] = _bock(a[k])
                if a.get("exclude"):
                    d["exclude"] = [_bock(x) for x in a["exclude"]]
                if a.get("link"):
                    d["link"] = True
                if a.get("checksum"):
                    d["checksum"] = a["checksum"]
                steps.append(d)
            elif step.op == "env":
                steps.append({"env": {k: _bock(v) for k, v in a["pairs"]}})
            elif step.op == "arg":
                steps.append({"arg": {x["name"]: _opt(x["default"]) for x in a["args"]}})
            elif step.op in ("workdir", "user"):
                steps.append({step.op: _bock(a["path" if step.op == "workdir" else "user"])})
            elif step.op == "shell":
                steps.append({"shell": a["argv"]})
            elif step.op in ("entrypoint", "cmd"):
                config[step.op] = a["command"]
            elif step.op == "label":
                config.setdefault("labels", {}).update({_bock(k): _bock(v) for k, v in a["pairs"]})
            elif step.op == "expose":
                config.setdefault("expose", []).extend(_bock(p) for p in a["ports"])
            elif step.op == "volume":
                config.setdefault("volumes", []).extend(_bock(p) for p in a["paths"])
            elif step.op == "stopsignal":
                config["stopsignal"] = _bock(a["signal"])
            elif step.op == "onbuild":
                config.setdefault("onbuild", []).append(a["instruction"])
            elif step.op == "healthcheck":
                if a["test"] == ["NONE"]:
                    config["healthcheck"] = "none"
                else:
                    hc: dict[str, Any] = {"test": a["test"][1:] if a["test"][0] == "CMD" else a["test"][1]}
                    for k in ("interval", "timeout", "start_period", "start_interval"):
                        if k in a:
                            hc[k] = _go_duration(a[k])
                    if "retries" in a:
                        hc["retries"] = a["retries"]
                    config["healthcheck"] = hc
        if steps:
            st["steps"] = steps
        if config:
            st["config"] = config
        stages.append(st)
    out["stages"] = stages
    return out


def _opt(value: str | None) -> str | None:
    return None if value is None else _bock(value)


def _mount_out(m: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in m.items():
        if k in ("uid", "gid") and v.isdigit():
            out[k] = int(v)
        elif k in ("rw", "ro", "required"):
            if k == "ro":
                out["rw"] = v != "true"
            else:
                out[k] = v == "true"
        else:
            out[k] = v
    return out


def dump_bockfile(graph: BuildGraph) -> str:
    class _Dumper(yaml.SafeDumper):
        pass

    def _str(dumper, data: str):
        style = "|" if "\n" in data else None
        return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)

    _Dumper.add_representer(str, _str)
    return yaml.dump(
        graph_to_bockfile(graph), Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=110
    )

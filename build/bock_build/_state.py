"""A stage's state while it is built (layers, snapshots, image config, args in scope) and the steps
that only change the image config (ARG, ENV, WORKDIR, USER, SHELL, LABEL, EXPOSE, VOLUME, STOPSIGNAL,
ENTRYPOINT/CMD with their interplay, HEALTHCHECK, ONBUILD)."""

from __future__ import annotations

import concurrent.futures
import os
from pathlib import Path
from typing import Any

import attrs

from ._expand import expand
from ._graph import Step
from .errors import BuildError


@attrs.define
class StageState:
    layers: list[concurrent.futures.Future]  # each -> (descriptor dict, diff_id)
    snaps: list[Path]
    config: dict[str, Any]  # full image config (os/arch/config/history...)
    history: list[dict[str, Any]]
    key: str
    args: dict[str, str]
    shell: list[str]
    cmd_set: bool = False
    onbuild: list[str] = attrs.Factory(list)

    @property
    def cfg(self) -> dict[str, Any]:
        return self.config.setdefault("config", {})

    def env(self) -> dict[str, str]:
        out = {}
        for e in self.cfg.get("Env") or []:
            k, _, v = e.partition("=")
            out[k] = v
        return out

    def scope(self) -> dict[str, str]:
        return {**self.args, **self.env()}


def _shellify(state: StageState, command: str | list[str]) -> list[str]:
    return list(command) if isinstance(command, list) else [*state.shell, command]


def apply_config_step(
    state: StageState, step: Step, build_args: dict[str, str], global_args: dict[str, str]
) -> bool:
    """Apply a non-layer step. Returns whether it gets a history entry (ARG does not)."""
    a = step.args
    op = step.op
    scope = state.scope()
    cfg = state.cfg
    if op == "arg":
        for x in a["args"]:
            name = x["name"]
            if name in build_args:
                value = build_args[name]
            elif x["default"] is not None:
                value = expand(x["default"], scope)
            elif name in global_args:
                value = global_args[name]
            else:
                continue  # declared without a value: not set
            state.args[name] = value
        return False
    if op == "env":
        env = state.env()
        for k, v in a["pairs"]:
            env[expand(k, scope)] = expand(v, scope)
        cfg["Env"] = [f"{k}={v}" for k, v in env.items()]
        return True
    if op == "workdir":
        path = expand(a["path"], scope)
        if not path.startswith("/"):
            path = os.path.join(cfg.get("WorkingDir") or "/", path)
        cfg["WorkingDir"] = os.path.normpath(path)
        return True
    if op == "user":
        cfg["User"] = expand(a["user"], scope)
    elif op == "shell":
        state.shell = list(a["argv"])
        cfg["Shell"] = list(a["argv"])
    elif op == "label":
        labels = dict(cfg.get("Labels") or {})
        for k, v in a["pairs"]:
            labels[expand(k, scope)] = expand(v, scope)
        cfg["Labels"] = labels
    elif op == "expose":
        ports = dict(cfg.get("ExposedPorts") or {})
        for p in a["ports"]:
            p = expand(p, scope)
            ports[p if "/" in p else f"{p}/tcp"] = {}
        cfg["ExposedPorts"] = ports
    elif op == "volume":
        vols = dict(cfg.get("Volumes") or {})
        for p in a["paths"]:
            vols[expand(p, scope)] = {}
        cfg["Volumes"] = vols
    elif op == "stopsignal":
        cfg["StopSignal"] = expand(a["signal"], scope)
    elif op == "entrypoint":
        cfg["Entrypoint"] = _shellify(state, a["command"])
        if not state.cmd_set:
            cfg.pop("Cmd", None)  # setting ENTRYPOINT resets an inherited CMD
    elif op == "cmd":
        cfg["Cmd"] = _shellify(state, a["command"])
        state.cmd_set = True
    elif op == "healthcheck":
        if a["test"] == ["NONE"]:
            cfg["Healthcheck"] = {"Test": ["NONE"]}
        else:
            hc: dict[str, Any] = {"Test": list(a["test"])}
            for k, name in (("interval", "Interval"), ("timeout", "Timeout"), ("start_period", "StartPeriod"),
                            ("start_interval", "StartInterval"), ("retries", "Retries")):  # fmt: skip
                if k in a:
                    hc[name] = a[k]
            cfg["Healthcheck"] = hc
    elif op == "onbuild":
        cfg["OnBuild"] = [*(cfg.get("OnBuild") or []), a["instruction"]]
    else:
        raise BuildError(f"unknown step {op!r}")
    return True

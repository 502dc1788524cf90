"""Writes the compose JSON Schema (bockrose's own, from the compose-spec text: chapters 03-15, build.md,
deploy.md, develop.md) to spec-schemas/compose-schema.json and the package copy.

Run: /usr/bin/python3 compose/tools/gen_schema.py   (from the repository root)"""

from __future__ import annotations

import json
import pathlib

X = {"^x-": {}}
STR = {"type": "string"}
INT = {"type": "integer"}
BOOL = {"type": ["boolean", "string"]}
NUM = {"type": ["number", "string"]}
NULL_OK = {"type": "null"}
STR_OR_LIST = {"oneOf": [STR, {"type": "array", "items": STR}]}
LIST_OR_DICT = {
    "oneOf": [
        {"type": "object", "additionalProperties": {"type": ["string", "number", "boolean", "null"]}},
        {"type": "array", "items": STR},
    ]
}
DURATION = {"type": ["string", "number"]}
ANY = {}


def obj(props: dict, required: list[str] | None = None, extra: bool = False) -> dict:
    out = {"type": "object", "properties": props, "patternProperties": X, "additionalProperties": extra}
    if required:
        out["required"] = required
    return out


def one(*alts):
    return {"oneOf": list(alts)}


HEALTHCHECK = obj(
    {
        "test": STR_OR_LIST,
        "interval": DURATION,
        "timeout": DURATION,
        "retries": NUM,
        "start_period": DURATION,
        "start_interval": DURATION,
        "disable": BOOL,
    }
)
BUILD = one(
    STR,
    obj(
        {
            k: ANY
            for k in [
                "context",
                "dockerfile",
                "dockerfile_inline",
                "args",
                "ssh",
                "cache_from",
                "cache_to",
                "additional_contexts",
                "entitlements",
                "extra_hosts",
                "isolation",
                "labels",
                "network",
                "no_cache",
                "platforms",
                "privileged",
                "provenance",
                "pull",
                "sbom",
                "secrets",
                "shm_size",
                "tags",
                "target",
                "ulimits",
            ]
        }
    ),
)
RESOURCES = obj(
    {
        "limits": obj({"cpus": NUM, "memory": STR, "pids": NUM}),
        "reservations": obj({"cpus": NUM, "memory": STR, "generic_resources": ANY, "devices": ANY}),
    }
)
DEPLOY = obj(
    {
        "mode": STR,
        "endpoint_mode": STR,
        "replicas": NUM,
        "labels": LIST_OR_DICT,
        "placement": ANY,
        "resources": RESOURCES,
        "restart_policy": obj({"condition": STR, "delay": DURATION, "max_attempts": NUM, "window": DURATION}),
        "rollback_config": ANY,
        "update_config": ANY,
    }
)
PORT_LONG = obj(
    {
        "name": STR,
        "mode": STR,
        "host_ip": STR,
        "target": NUM,
        "published": {"type": ["string", "integer"]},
        "protocol": STR,
        "app_protocol": STR,
    }
)
VOLUME_LONG = obj(
    {
        "type": {"enum": ["volume", "bind", "tmpfs", "image", "npipe", "cluster"]},
        "source": STR,
        "target": STR,
        "read_only": BOOL,
        "consistency": STR,
        "bind": obj({"propagation": STR, "create_host_path": BOOL, "recursive": STR, "selinux": STR}),
        "volume": obj({"nocopy": BOOL, "subpath": STR}),
        "tmpfs": obj({"size": {"type": ["integer", "string"]}, "mode": NUM}),
        "image": obj({"subpath": STR}),
    },
    ["type"],
)
SERVICE_NET = one(
    {"type": "array", "items": STR},
    {
        "type": "object",
        "additionalProperties": one(
            NULL_OK,
            obj(
                {
                    k: ANY
                    for k in [
                        "aliases",
                        "interface_name",
                        "ipv4_address",
                        "ipv6_address",
                        "link_local_ips",
                        "mac_address",
                        "driver_opts",
                        "priority",
                        "gw_priority",
                    ]
                }
            ),
        ),
    },
)
DEPENDS_ON = one(
    {"type": "array", "items": STR},
    {
        "type": "object",
        "additionalProperties": obj(
            {
                "condition": {
                    "enum": ["service_started", "service_healthy", "service_completed_successfully"]
                },
                "required": BOOL,
                "restart": BOOL,
            }
        ),
    },
)
SERVICE_KEYS = [
    "annotations",
    "attach",
    "blkio_config",
    "cpu_count",
    "cpu_percent",
    "cpu_shares",
    "cpu_period",
    "cpu_quota",
    "cpu_rt_runtime",
    "cpu_rt_period",
    "cpus",
    "cpuset",
    "cgroup",
    "cgroup_parent",
    "configs",
    "container_name",
    "credential_spec",
    "develop",
    "device_cgroup_rules",
    "devices",
    "dns",
    "dns_opt",
    "dns_search",
    "domainname",
    "env_file",
    "expose",
    "external_links",
    "extra_hosts",
    "gpus",
    "group_add",
    "hostname",
    "init",
    "ipc",
    "isolation",
    "label_file",
    "links",
    "logging",
    "mac_address",
    "mem_limit",
    "mem_reservation",
    "mem_swappiness",
    "memswap_limit",
    "models",
    "oom_kill_disable",
    "oom_score_adj",
    "pid",
    "pids_limit",
    "platform",
    "post_start",
    "pre_start",
    "pre_stop",
    "privileged",
    "provider",
    "pull_policy",
    "read_only",
    "runtime",
    "secrets",
    "security_opt",
    "shm_size",
    "stdin_open",
    "stop_grace_period",
    "stop_signal",
    "storage_opt",
    "sysctls",
    "tmpfs",
    "tty",
    "ulimits",
    "use_api_socket",
    "user",
    "userns_mode",
    "uts",
    "volumes_from",
    "working_dir",
]
SERVICE = obj(
    {
        **{k: ANY for k in SERVICE_KEYS},
        "image": STR,
        "build": BUILD,
        "command": one(NULL_OK, STR, {"type": "array", "items": STR}),
        "entrypoint": one(NULL_OK, STR, {"type": "array", "items": STR}),
        "environment": LIST_OR_DICT,
        "labels": LIST_OR_DICT,
        "cap_add": {"type": "array", "items": STR},
        "cap_drop": {"type": "array", "items": STR},
        "depends_on": DEPENDS_ON,
        "deploy": DEPLOY,
        "extends": one(STR, obj({"service": STR, "file": STR}, ["service"])),
        "healthcheck": HEALTHCHECK,
        "network_mode": STR,
        "networks": SERVICE_NET,
        "ports": {"type": "array", "items": one({"type": ["string", "number"]}, PORT_LONG)},
        "profiles": {"type": "array", "items": STR},
        "restart": STR,
        "scale": NUM,
        "volumes": {"type": "array", "items": one(STR, VOLUME_LONG)},
    }
)
IPAM = obj(
    {
        "driver": STR,
        "config": {
            "type": "array",
            "items": obj({"subnet": STR, "ip_range": STR, "gateway": STR, "aux_addresses": ANY}),
        },
        "options": ANY,
    }
)
NETWORK = one(
    NULL_OK,
    obj(
        {
            "name": STR,
            "driver": STR,
            "driver_opts": ANY,
            "ipam": IPAM,
            "external": BOOL,
            "internal": BOOL,
            "enable_ipv4": BOOL,
            "enable_ipv6": BOOL,
            "attachable": BOOL,
            "labels": LIST_OR_DICT,
        }
    ),
)
VOLUME = one(
    NULL_OK,
    obj({"name": STR, "driver": STR, "driver_opts": ANY, "external": BOOL, "labels": LIST_OR_DICT}),
)
CONFIG_OR_SECRET = obj(
    {
        "name": STR,
        "file": STR,
        "environment": STR,
        "content": STR,
        "external": BOOL,
        "labels": LIST_OR_DICT,
        "driver": STR,
        "driver_opts": ANY,
        "template_driver": STR,
    }
)
INCLUDE = {
    "type": "array",
    "items": one(
        STR, obj({"path": STR_OR_LIST, "project_directory": STR, "env_file": STR_OR_LIST}, ["path"])
    ),
}
SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "https://bock.invalid/spec-schemas/compose-schema.json",
    "title": "Compose file (bockrose), written from the compose-spec text",
    **obj(
        {
            "version": STR,
            "name": {"type": "string", "pattern": "^[a-z0-9][a-z0-9_-]*$"},
            "include": INCLUDE,
            "services": {
                "type": "object",
                "patternProperties": {"^[a-zA-Z0-9._-]+$": SERVICE},
                "additionalProperties": False,
            },
            "networks": {"type": "object", "additionalProperties": NETWORK},
            "volumes": {"type": "object", "additionalProperties": VOLUME},
            "configs": {"type": "object", "additionalProperties": CONFIG_OR_SECRET},
            "secrets": {"type": "object", "additionalProperties": CONFIG_OR_SECRET},
            "models": {"type": "object"},
        }
    ),
}

if __name__ == "__main__":
    text = json.dumps(SCHEMA, indent=1, sort_keys=True) + "\n"
    root = pathlib.Path(__file__).resolve().parents[2]
    for dest in (root / "spec-schemas/compose-schema.json", root / "compose/bockrose/compose-schema.json"):
        dest.write_text(text)
        print(dest)

"""config.json as typed objects, and the semantic checks after the schema (check_spec)."""

from __future__ import annotations

import copy
import json
import os

import pytest
from bock._lifecycle.config import check_spec, read_config
from bock._lifecycle.spec import default_spec, write_spec
from bock._spec.config import Spec
from bock.errors import BockError, ConfigError


def full_doc() -> dict:
    return {
        "ociVersion": "1.3.0",
        "process": {
            "terminal": True,
            "consoleSize": {"height": 24, "width": 80},
            "user": {"uid": 1000, "gid": 1000, "umask": 18, "additionalGids": [5, 6]},
            "args": ["sh", "-c", "true"],
            "env": ["PATH=/bin"],
            "cwd": "/home",
            "capabilities": {"bounding": ["CAP_KILL"], "effective": ["CAP_KILL"]},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 512}],
            "noNewPrivileges": True,
            "oomScoreAdj": 100,
            "ioPriority": {"class": "IOPRIO_CLASS_BE", "priority": 4},
            "execCPUAffinity": {"initial": "0", "final": "0-1"},
        },
        "root": {"path": "rootfs", "readonly": True},
        "hostname": "h",
        "domainname": "d",
        "mounts": [{"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid"]}],
        "hooks": {"createRuntime": [{"path": "/bin/true", "args": ["true"], "timeout": 5}]},
        "annotations": {"k": "v"},
        "linux": {
            "namespaces": [
                {"type": "pid"},
                {"type": "mount"},
                {"type": "uts"},
                {"type": "network", "path": "/proc/1/ns/net"},
            ],
            "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}],
            "timeOffsets": {"monotonic": {"secs": 10, "nanosecs": 5}},
            "devices": [{"type": "c", "path": "/dev/fuse", "major": 10, "minor": 229, "fileMode": 438}],
            "cgroupsPath": "/bock/x",
            "resources": {"pids": {"limit": 10}},
            "sysctl": {"net.ipv4.ip_forward": "1"},
            "rootfsPropagation": "rslave",
            "maskedPaths": ["/proc/kcore"],
            "readonlyPaths": ["/proc/sys"],
            "personality": {"domain": "LINUX32"},
        },
    }


def test_full_document():
    spec = Spec.from_json(full_doc())
    p = spec.process
    assert p.terminal and p.console_size.height == 24 and p.console_size.width == 80
    assert (p.user.uid, p.user.gid, p.user.umask, p.user.additional_gids) == (1000, 1000, 18, [5, 6])
    assert p.args == ["sh", "-c", "true"] and p.cwd == "/home" and p.no_new_privileges
    assert p.capabilities.bounding == ["CAP_KILL"] and p.capabilities.ambient == []
    assert (p.rlimits[0].type, p.rlimits[0].soft, p.rlimits[0].hard) == ("RLIMIT_NOFILE", 512, 1024)
    assert p.oom_score_adj == 100 and p.io_priority.class_ == "IOPRIO_CLASS_BE"
    assert p.exec_cpu_affinity.final == "0-1"
    assert spec.root.path == "rootfs" and spec.root.readonly
    assert spec.mounts[0].options == ["nosuid"] and spec.mounts[0].uid_mappings == []
    assert spec.hooks.create_runtime[0].timeout == 5 and spec.hooks.poststop == []
    linux = spec.linux
    assert linux.namespace("network").path == "/proc/1/ns/net" and linux.namespace("ipc") is None
    assert linux.uid_mappings[0].host_id == 1000
    assert linux.time_offsets["monotonic"].secs == 10
    assert linux.devices[0].file_mode == 438
    assert linux.resources == {"pids": {"limit": 10}}
    assert linux.rootfs_propagation == "rslave" and linux.masked_paths == ["/proc/kcore"]
    assert linux.personality.domain == "LINUX32"


def test_minimal_document_defaults():
    spec = Spec.from_json({"ociVersion": "1.0.0"})
    assert spec.process is None and spec.root is None and spec.mounts == [] and spec.annotations == {}
    assert spec.linux.namespaces == [] and spec.hooks.prestart == []


def test_model_does_not_alias_the_document():
    doc = full_doc()
    spec = Spec.from_json(doc)
    spec.annotations["new"] = "x"
    assert "new" not in doc["annotations"]


def _spec(**changes) -> Spec:
    doc = full_doc()
    for path, value in changes.items():
        node = doc
        keys = path.split("__")
        for k in keys[:-1]:
            node = node[k]
        if value is None:
            node.pop(keys[-1], None)
        else:
            node[keys[-1]] = value
    return Spec.from_json(doc)


def test_check_spec_accepts_the_full_document():
    check_spec(
        Spec.from_json(
            {
                **full_doc(),
                "linux": {
                    **full_doc()["linux"],
                    "namespaces": [{"type": t} for t in ("pid", "mount", "uts", "user", "time")],
                    "gidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}],
                },
            }
        )
    )


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"process": None}, "process property is required"),
        ({"process__args": []}, "args must not be empty"),
        ({"process__cwd": "relative"}, "must be an absolute path"),
        ({"root": None}, "root filesystem is required"),
        (
            {"linux__namespaces": [{"type": "pid"}, {"type": "pid"}, {"type": "mount"}]},
            "duplicate namespace pid",
        ),
        ({"linux__namespaces": [{"type": "pid"}]}, "a mount namespace is required"),
        (
            {
                "linux__namespaces": [{"type": "mount"}],
                "linux__uidMappings": None,
                "linux__timeOffsets": None,
            },
            "hostname",
        ),
        (
            {
                "hostname": None,
                "linux__namespaces": [{"type": "mount"}],
                "linux__uidMappings": None,
                "linux__timeOffsets": None,
            },
            "domainname",
        ),
        (
            {"linux__namespaces": [{"type": "mount"}, {"type": "uts"}], "linux__timeOffsets": None},
            "user namespace isn't enabled",
        ),
        (
            {
                "linux__namespaces": [{"type": "mount"}, {"type": "uts"}, {"type": "user"}],
                "linux__uidMappings": None,
                "linux__timeOffsets": None,
            },
            "no uid mappings found",
        ),
        (
            {"linux__namespaces": [{"type": "mount"}, {"type": "uts"}], "linux__uidMappings": None},
            "time namespace isn't enabled",
        ),
    ],
)
def test_check_spec_errors(changes, message):
    with pytest.raises(ConfigError, match=message):
        check_spec(_spec(**changes))


def test_read_config_errors(tmp_path):
    with pytest.raises(ConfigError, match=r"config\.json not found"):
        read_config(str(tmp_path))
    (tmp_path / "config.json").write_text("{nope")
    with pytest.raises(ConfigError, match="invalid JSON"):
        read_config(str(tmp_path))
    (tmp_path / "config.json").write_text("[]")
    with pytest.raises(BockError):
        read_config(str(tmp_path))


def test_read_config_of_the_default_spec(tmp_path):
    write_spec(str(tmp_path))
    doc, spec = read_config(str(tmp_path))
    assert doc == default_spec()
    assert spec.process.args == ["sh"] and spec.process.terminal


def test_default_spec_like_runc(tmp_path):
    doc = default_spec()
    assert doc["root"] == {"path": "rootfs", "readonly": True}
    assert [n["type"] for n in doc["linux"]["namespaces"]] == [
        "pid",
        "network",
        "ipc",
        "uts",
        "mount",
        "cgroup",
    ]
    assert [m["destination"] for m in doc["mounts"]] == [
        "/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys", "/sys/fs/cgroup"
    ]  # fmt: skip
    assert "/proc/kcore" in doc["linux"]["maskedPaths"] and "/proc/sys" in doc["linux"]["readonlyPaths"]


def test_default_rootless_spec():
    doc = default_spec(rootless=True)
    kinds = [n["type"] for n in doc["linux"]["namespaces"]]
    assert "user" in kinds and "network" not in kinds
    assert doc["linux"]["uidMappings"] == [{"containerID": 0, "hostID": os.geteuid(), "size": 1}]
    assert "resources" not in doc["linux"]
    sys_mount = [m for m in doc["mounts"] if m["destination"] == "/sys"]
    assert sys_mount == [
        {
            "destination": "/sys",
            "type": "none",
            "source": "/sys",
            "options": ["rbind", "nosuid", "noexec", "nodev", "ro"],
        }
    ]
    pts = next(m for m in doc["mounts"] if m["destination"] == "/dev/pts")
    assert "gid=5" not in pts["options"]
    assert "gid=5" in next(m for m in default_spec()["mounts"] if m["destination"] == "/dev/pts")["options"]


def test_write_spec_refuses_to_overwrite(tmp_path):
    (tmp_path / "config.json").write_text("mine")
    with pytest.raises(BockError, match="exists"):
        write_spec(str(tmp_path))
    assert (tmp_path / "config.json").read_text() == "mine"


def test_default_spec_is_fresh_each_time():
    a = default_spec()
    a["process"]["capabilities"]["bounding"].append("CAP_SYS_ADMIN")
    assert "CAP_SYS_ADMIN" not in default_spec()["process"]["capabilities"]["bounding"]
    assert json.loads(json.dumps(default_spec())) == copy.deepcopy(default_spec())


def test_check_spec_env_without_equals():
    with pytest.raises(ConfigError, match='invalid environment variable: "JUSTNAME"'):
        check_spec(_spec(process__env=["A=1", "JUSTNAME"]))

"""config.json as typed objects (runtime-spec v1.3.0: config.md and config-linux.md).

The document has already passed the schema (``bock._schema``) when it is structured
here; :func:`load_config` then applies the semantic checks the schema cannot express
(runc's ``validateProcessSpec`` and friends). Sub-trees owned by other modules
(``linux.resources``, ``linux.seccomp``) are typed by those modules' converters.
"""

from __future__ import annotations

from bock._spec.struct import Struct, field, list_of, struct_list


def _dict(value: dict) -> dict:
    return dict(value)


class Box(Struct):
    height: int = 0
    width: int = 0


class User(Struct):
    uid: int = 0
    gid: int = 0
    umask: int | None = None
    additional_gids: list[int] = field(factory=list)
    username: str | None = None


class Capabilities(Struct):
    bounding: list[str] = field(factory=list)
    effective: list[str] = field(factory=list)
    inheritable: list[str] = field(factory=list)
    permitted: list[str] = field(factory=list)
    ambient: list[str] = field(factory=list)


class Rlimit(Struct):
    type: str = field(required=True)
    soft: int = field(required=True)
    hard: int = field(required=True)


class IOPriority(Struct):
    class_: str = field(key="class", required=True)
    priority: int = 0


class Scheduler(Struct):
    policy: str = field(required=True)
    nice: int = 0
    priority: int = 0
    flags: list[str] = field(factory=list)
    runtime: int = 0
    deadline: int = 0
    period: int = 0


class CPUAffinity(Struct):
    initial: str | None = None
    final: str | None = None


class Process(Struct):
    terminal: bool = False
    console_size: Box | None = field(conv=Box.from_json)
    user: User = field(conv=User.from_json, factory=User)
    args: list[str] = field(factory=list)
    command_line: str | None = None
    env: list[str] = field(factory=list)
    cwd: str = "/"
    capabilities: Capabilities | None = field(conv=Capabilities.from_json)
    rlimits: list[Rlimit] = field(conv=struct_list(Rlimit), factory=list)
    no_new_privileges: bool = False
    apparmor_profile: str | None = None
    oom_score_adj: int | None = None
    selinux_label: str | None = None
    io_priority: IOPriority | None = field(conv=IOPriority.from_json)
    scheduler: Scheduler | None = field(conv=Scheduler.from_json)
    exec_cpu_affinity: CPUAffinity | None = field(key="execCPUAffinity", conv=CPUAffinity.from_json)


class Root(Struct):
    path: str = field(required=True)
    readonly: bool = False


class IDMapping(Struct):
    container_id: int = field(key="containerID", required=True)
    host_id: int = field(key="hostID", required=True)
    size: int = field(required=True)


class Mount(Struct):
    destination: str = field(required=True)
    source: str | None = None
    type: str | None = None
    options: list[str] = field(factory=list)
    uid_mappings: list[IDMapping] = field(conv=struct_list(IDMapping), factory=list)
    gid_mappings: list[IDMapping] = field(conv=struct_list(IDMapping), factory=list)


class Hook(Struct):
    path: str = field(required=True)
    args: list[str] = field(factory=list)
    env: list[str] = field(factory=list)
    timeout: int | None = None


_hooks = struct_list(Hook)


class Hooks(Struct):
    prestart: list[Hook] = field(conv=_hooks, factory=list)
    create_runtime: list[Hook] = field(conv=_hooks, factory=list)
    create_container: list[Hook] = field(conv=_hooks, factory=list)
    start_container: list[Hook] = field(conv=_hooks, factory=list)
    poststart: list[Hook] = field(conv=_hooks, factory=list)
    poststop: list[Hook] = field(conv=_hooks, factory=list)


class Namespace(Struct):
    type: str = field(required=True)
    path: str | None = None


class Device(Struct):
    type: str = field(required=True)
    path: str = field(required=True)
    major: int | None = None
    minor: int | None = None
    file_mode: int | None = None
    uid: int | None = None
    gid: int | None = None


class TimeOffset(Struct):
    secs: int = 0
    nanosecs: int = 0


class Personality(Struct):
    domain: str = field(required=True)
    flags: list[str] = field(factory=list)


class IntelRdt(Struct):
    clos_id: str | None = field(key="closID")
    l3_cache_schema: str | None = None
    mem_bw_schema: str | None = None
    schemata: list[str] = field(factory=list)
    enable_monitoring: bool = False


class MemoryPolicy(Struct):
    mode: str = field(required=True)
    nodes: str | None = None
    flags: list[str] = field(factory=list)


class Linux(Struct):
    namespaces: list[Namespace] = field(conv=struct_list(Namespace), factory=list)
    uid_mappings: list[IDMapping] = field(conv=struct_list(IDMapping), factory=list)
    gid_mappings: list[IDMapping] = field(conv=struct_list(IDMapping), factory=list)
    time_offsets: dict[str, TimeOffset] = field(
        conv=lambda d: {k: TimeOffset.from_json(v) for k, v in d.items()}, factory=dict
    )
    devices: list[Device] = field(conv=struct_list(Device), factory=list)
    net_devices: dict[str, dict] = field(conv=_dict, factory=dict)
    cgroups_path: str | None = None
    # Typed by bock._cgroups (LinuxResources) and bock._security.seccomp; raw JSON until then.
    resources: dict | None = field(conv=_dict)
    intel_rdt: IntelRdt | None = field(conv=IntelRdt.from_json)
    memory_policy: MemoryPolicy | None = field(conv=MemoryPolicy.from_json)
    sysctl: dict[str, str] = field(conv=_dict, factory=dict)
    seccomp: dict | None = field(conv=_dict)
    rootfs_propagation: str | None = None
    masked_paths: list[str] = field(factory=list)
    readonly_paths: list[str] = field(factory=list)
    mount_label: str | None = None
    personality: Personality | None = field(conv=Personality.from_json)

    def namespace(self, kind: str) -> Namespace | None:
        for ns in self.namespaces:
            if ns.type == kind:
                return ns
        return None


class Spec(Struct):
    oci_version: str = field(required=True)
    process: Process | None = field(conv=Process.from_json)
    root: Root | None = field(conv=Root.from_json)
    hostname: str | None = None
    domainname: str | None = None
    mounts: list[Mount] = field(conv=struct_list(Mount), factory=list)
    hooks: Hooks = field(conv=Hooks.from_json, factory=Hooks)
    annotations: dict[str, str] = field(conv=_dict, factory=dict)
    linux: Linux = field(conv=Linux.from_json, factory=Linux)


__all__ = [
    "Box",
    "Capabilities",
    "Device",
    "Hook",
    "Hooks",
    "IDMapping",
    "Linux",
    "Mount",
    "Namespace",
    "Process",
    "Rlimit",
    "Root",
    "Spec",
    "User",
    "list_of",
]

"""Write the hand-made documents of the corpus (run by hand; the output is committed).

Real documents (what runc, containerd, podman and buildah generated, runc's state and
features output) are captured separately, see README.md. This script writes:

- valid documents that exercise every part of config.md / config-linux.md, the state and
  the features structure (from the prose and its examples, with concrete values);
- invalid documents, each a valid base with ONE rule broken. ``expected-errors.json`` in
  each kind's directory records the JSON path and the keyword that the single error must
  have; tests/test_corpus.py checks it.

    /usr/bin/python3 spec-schemas/tests/build_corpus.py
"""

from __future__ import annotations

import json
import pathlib

HERE = pathlib.Path(__file__).resolve().parent
CORPUS = HERE / "corpus"
DELETE = object()

UINT32_MAX = 2**32 - 1
INT64_MAX = 2**63 - 1
UINT64_MAX = 2**64 - 1


def words(text: str) -> list[str]:
    return text.split()


CAPS = words("""
    CAP_CHOWN CAP_DAC_OVERRIDE CAP_DAC_READ_SEARCH CAP_FOWNER CAP_FSETID CAP_KILL CAP_SETGID
    CAP_SETUID CAP_SETPCAP CAP_LINUX_IMMUTABLE CAP_NET_BIND_SERVICE CAP_NET_BROADCAST CAP_NET_ADMIN
    CAP_NET_RAW CAP_IPC_LOCK CAP_IPC_OWNER CAP_SYS_MODULE CAP_SYS_RAWIO CAP_SYS_CHROOT
    CAP_SYS_PTRACE CAP_SYS_PACCT CAP_SYS_ADMIN CAP_SYS_BOOT CAP_SYS_NICE CAP_SYS_RESOURCE
    CAP_SYS_TIME CAP_SYS_TTY_CONFIG CAP_MKNOD CAP_LEASE CAP_AUDIT_WRITE CAP_AUDIT_CONTROL
    CAP_SETFCAP CAP_MAC_OVERRIDE CAP_MAC_ADMIN CAP_SYSLOG CAP_WAKE_ALARM CAP_BLOCK_SUSPEND
    CAP_AUDIT_READ CAP_PERFMON CAP_BPF CAP_CHECKPOINT_RESTORE
""")
SECCOMP_ACTIONS = words("""
    SCMP_ACT_KILL SCMP_ACT_KILL_PROCESS SCMP_ACT_KILL_THREAD SCMP_ACT_TRAP SCMP_ACT_ERRNO
    SCMP_ACT_TRACE SCMP_ACT_ALLOW SCMP_ACT_LOG SCMP_ACT_NOTIFY
""")
SECCOMP_OPS = words("""
    SCMP_CMP_NE SCMP_CMP_LT SCMP_CMP_LE SCMP_CMP_EQ SCMP_CMP_GE SCMP_CMP_GT SCMP_CMP_MASKED_EQ
""")
SECCOMP_ARCHS = words("""
    SCMP_ARCH_X86 SCMP_ARCH_X86_64 SCMP_ARCH_X32 SCMP_ARCH_ARM SCMP_ARCH_AARCH64 SCMP_ARCH_MIPS
    SCMP_ARCH_MIPS64 SCMP_ARCH_MIPS64N32 SCMP_ARCH_MIPSEL SCMP_ARCH_MIPSEL64 SCMP_ARCH_MIPSEL64N32
    SCMP_ARCH_PPC SCMP_ARCH_PPC64 SCMP_ARCH_PPC64LE SCMP_ARCH_S390 SCMP_ARCH_S390X SCMP_ARCH_PARISC
    SCMP_ARCH_PARISC64 SCMP_ARCH_RISCV64 SCMP_ARCH_LOONGARCH64 SCMP_ARCH_M68K SCMP_ARCH_SH
    SCMP_ARCH_SHEB
""")
SECCOMP_FLAGS = words("""
    SECCOMP_FILTER_FLAG_TSYNC SECCOMP_FILTER_FLAG_LOG SECCOMP_FILTER_FLAG_SPEC_ALLOW
    SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
""")
MPOL_MODES = words("""
    MPOL_DEFAULT MPOL_BIND MPOL_INTERLEAVE MPOL_WEIGHTED_INTERLEAVE MPOL_PREFERRED
    MPOL_PREFERRED_MANY MPOL_LOCAL
""")
MPOL_FLAGS = words("""
    MPOL_F_NUMA_BALANCING MPOL_F_RELATIVE_NODES MPOL_F_STATIC_NODES
""")
MOUNT_OPTIONS = words("""
    acl async atime bind defaults dev diratime dirsync exec idmap iversion lazytime loud mand noacl
    noatime nodev nodiratime noexec noiversion nolazytime nomand norelatime nostrictatime nosuid
    nosymfollow private ratime rbind rdev rdiratime relatime remount rexec ridmap rnoatime rnodev
    rnodiratime rnoexec rnorelatime rnostrictatime rnosuid rnosymfollow ro rprivate rrelatime rro
    rrw rshared rslave rstrictatime rsuid rsymfollow runbindable rw shared silent slave strictatime
    suid symfollow sync tmpcopyup unbindable
""")


def minimal_process() -> dict:
    return {"user": {"uid": 0, "gid": 0}, "args": ["sh"], "cwd": "/"}


def process_everything() -> dict:
    """config.md Process / POSIX process / Linux Process / User: every property."""
    return {
        "ociVersion": "1.3.0",
        "root": {"path": "rootfs", "readonly": True},
        "process": {
            "terminal": True,
            "consoleSize": {"height": 25, "width": 80},
            "user": {"uid": 1, "gid": 1, "umask": 63, "additionalGids": [5, 6]},
            "env": [
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "TERM=xterm",
                "EMPTY=",
            ],
            "cwd": "/root",
            "args": ["sh", "-c", "echo hello"],
            "commandLine": "sh -c 'echo hello'",
            "rlimits": [
                {"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024},
                {"type": "RLIMIT_CORE", "hard": UINT64_MAX, "soft": 0},
                {"type": "RLIMIT_MSGQUEUE", "hard": 819200, "soft": 819200},
            ],
            "apparmorProfile": "acme_secure_profile",
            "capabilities": {
                "bounding": CAPS,
                "effective": ["CAP_AUDIT_WRITE", "CAP_KILL"],
                "inheritable": [],
                "permitted": CAPS,
                "ambient": ["CAP_NET_BIND_SERVICE"],
            },
            "noNewPrivileges": True,
            "oomScoreAdj": -999,
            "scheduler": {
                "policy": "SCHED_DEADLINE",
                "nice": -20,
                "priority": 0,
                "flags": [
                    "SCHED_FLAG_RESET_ON_FORK",
                    "SCHED_FLAG_RECLAIM",
                    "SCHED_FLAG_DL_OVERRUN",
                    "SCHED_FLAG_KEEP_POLICY",
                    "SCHED_FLAG_KEEP_PARAMS",
                    "SCHED_FLAG_UTIL_CLAMP_MIN",
                    "SCHED_FLAG_UTIL_CLAMP_MAX",
                ],
                "runtime": 10000000,
                "deadline": 30000000,
                "period": 30000000,
            },
            "selinuxLabel": "system_u:system_r:svirt_lxc_net_t:s0:c124,c675",
            "ioPriority": {"class": "IOPRIO_CLASS_IDLE", "priority": 4},
            "execCPUAffinity": {"initial": "7", "final": "0-3,7"},
        },
        "hostname": "slartibartfast",
        "domainname": "foobarbaz.test",
    }


def linux_everything() -> dict:
    """config-linux.md: every property of the linux object, every enum value at least once."""
    mpol = {"mode": "MPOL_INTERLEAVE", "nodes": "0-3,7", "flags": MPOL_FLAGS}
    return {
        "ociVersion": "1.3.0",
        "root": {"path": "/var/lib/bock/bundles/b1/rootfs"},
        "process": minimal_process(),
        "linux": {
            "namespaces": [
                {"type": "pid", "path": "/proc/1234/ns/pid"},
                {"type": "network", "path": "/var/run/netns/neta"},
                {"type": "mount"},
                {"type": "ipc"},
                {"type": "uts"},
                {"type": "user"},
                {"type": "cgroup"},
                {"type": "time"},
            ],
            "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 32000}],
            "gidMappings": [{"containerID": 0, "hostID": 1000, "size": 32000}],
            "timeOffsets": {
                "monotonic": {"secs": 172800, "nanosecs": 0},
                "boottime": {"secs": -604800, "nanosecs": 999999999},
            },
            "devices": [
                {
                    "path": "/dev/fuse",
                    "type": "c",
                    "major": 10,
                    "minor": 229,
                    "fileMode": 438,
                    "uid": 0,
                    "gid": 0,
                },
                {
                    "path": "/dev/sda",
                    "type": "b",
                    "major": 8,
                    "minor": 0,
                    "fileMode": 432,
                    "uid": 0,
                    "gid": 0,
                },
                {"path": "/dev/xuu", "type": "u", "major": 4, "minor": 64},
                {"path": "/run/fifo0", "type": "p", "fileMode": 511},
            ],
            "netDevices": {"eth1": {"name": "container_eth1"}, "dummy0": {}, "ens4": {"name": "net%d"}},
            "cgroupsPath": "/myRuntime/myContainer",
            "resources": {
                "devices": [
                    {"allow": False, "access": "rwm"},
                    {"allow": True, "type": "c", "major": 10, "minor": 229, "access": "rw"},
                    {"allow": True, "type": "b", "major": 8, "minor": 0, "access": "r"},
                    {"allow": True, "type": "a"},
                ],
                "memory": {
                    "limit": 536870912,
                    "reservation": 536870912,
                    "swap": -1,
                    "kernel": -1,
                    "kernelTCP": -1,
                    "swappiness": 0,
                    "disableOOMKiller": False,
                    "useHierarchy": True,
                    "checkBeforeUpdate": True,
                },
                "cpu": {
                    "shares": 1024,
                    "quota": 1000000,
                    "burst": 1000000,
                    "period": 500000,
                    "realtimeRuntime": 950000,
                    "realtimePeriod": 1000000,
                    "cpus": "2-3",
                    "mems": "0-7",
                    "idle": 1,
                },
                "blockIO": {
                    "weight": 10,
                    "leafWeight": 10,
                    "weightDevice": [
                        {"major": 8, "minor": 0, "weight": 500, "leafWeight": 300},
                        {"major": 8, "minor": 16, "weight": 500},
                    ],
                    "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 600}],
                    "throttleWriteBpsDevice": [{"major": 8, "minor": 0, "rate": 700}],
                    "throttleReadIOPSDevice": [{"major": 8, "minor": 16, "rate": 200}],
                    "throttleWriteIOPSDevice": [{"major": 8, "minor": 16, "rate": 300}],
                },
                "hugepageLimits": [
                    {"pageSize": "2MB", "limit": 209715200},
                    {"pageSize": "64KB", "limit": 1000000},
                    {"pageSize": "1GB", "limit": 0},
                ],
                "network": {
                    "classID": 1048577,
                    "priorities": [{"name": "eth0", "priority": 500}, {"name": "eth1", "priority": 1000}],
                },
                "pids": {"limit": 32771},
                "rdma": {
                    "mlx5_1": {"hcaHandles": 3, "hcaObjects": 10000},
                    "mlx4_0": {"hcaObjects": 1000},
                    "rxe3": {"hcaObjects": 10000},
                },
                "unified": {
                    "io.max": "259:0 rbps=2097152 wiops=120\n253:0 rbps=2097152 wiops=120",
                    "hugetlb.1GB.max": "1073741824",
                },
            },
            "intelRdt": {
                "closID": "guaranteed_group",
                "l3CacheSchema": "L3:0=7f0;1=1f",
                "memBwSchema": "MB:0=20;1=70",
                "schemata": ["L3:0=7f0;1=1f", "L2:0=f;1=f;2=f;3=f", "MB:0=20;1=70"],
                "enableMonitoring": True,
            },
            "memoryPolicy": mpol,
            "sysctl": {"net.ipv4.ip_forward": "1", "net.core.somaxconn": "256"},
            "seccomp": {
                "defaultAction": "SCMP_ACT_ERRNO",
                "defaultErrnoRet": 1,
                "architectures": SECCOMP_ARCHS,
                "flags": SECCOMP_FLAGS,
                "listenerPath": "/run/seccomp-agent.socket",
                "listenerMetadata": "metadata for the agent",
                "syscalls": [
                    {
                        "names": ["getcwd", "chmod"],
                        "action": action,
                        "errnoRet": 38,
                        "args": [{"index": 0, "value": 1, "valueTwo": 2, "op": op}],
                    }
                    for action, op in zip(SECCOMP_ACTIONS, SECCOMP_OPS + SECCOMP_OPS[:2], strict=True)
                ],
            },
            "rootfsPropagation": "slave",
            "maskedPaths": ["/proc/kcore", "/proc/latency_stats", "/proc/timer_stats", "/proc/sched_debug"],
            "readonlyPaths": [
                "/proc/asound",
                "/proc/bus",
                "/proc/fs",
                "/proc/irq",
                "/proc/sys",
                "/proc/sysrq-trigger",
            ],
            "mountLabel": "system_u:object_r:svirt_sandbox_file_t:s0:c715,c811",
            "personality": {"domain": "LINUX32", "flags": []},
        },
    }


def hooks_and_mounts() -> dict:
    hook = {
        "path": "/usr/bin/fix-mounts",
        "args": ["fix-mounts", "arg1", "arg2"],
        "env": ["key1=value1"],
        "timeout": 1,
    }
    return {
        "ociVersion": "1.3.0",
        "root": {"path": "rootfs"},
        "process": minimal_process(),
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {
                "destination": "/tmp",
                "type": "tmpfs",
                "source": "tmpfs",
                "options": ["nosuid", "strictatime", "mode=755", "size=65536k"],
            },
            {
                "destination": "/data",
                "type": "none",
                "source": "/volumes/testing",
                "options": ["rbind", "rw"],
            },
            {
                "destination": "/shared",
                "type": "bind",
                "source": "/srv/shared",
                "options": ["bind", "idmap"],
                "uidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}],
                "gidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}],
            },
            {"destination": "relative/deprecated", "source": "tmpfs", "type": "tmpfs"},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": MOUNT_OPTIONS},
        ],
        "hooks": {
            "prestart": [hook, {"path": "/usr/bin/setup-network"}],
            "createRuntime": [hook],
            "createContainer": [
                {"path": "/usr/bin/mount-hook", "args": ["-mount", "arg1", "arg2"], "env": ["key1=value1"]}
            ],
            "startContainer": [{"path": "/usr/bin/refresh-ldcache"}],
            "poststart": [{"path": "/usr/bin/notify-start", "timeout": 5}],
            "poststop": [{"path": "/usr/sbin/cleanup.sh", "args": ["cleanup.sh", "-f"]}],
        },
        "annotations": {
            "com.example.key1": "value1",
            "com.example.empty": "",
            "org.opencontainers.image.os": "linux",
        },
    }


def boundaries() -> dict:
    """The edges of every integer width the prose names."""
    return {
        "ociVersion": "1.0.0",
        "process": {
            "user": {"uid": UINT32_MAX, "gid": 0, "umask": 0, "additionalGids": [0, UINT32_MAX]},
            "cwd": "/",
            "args": ["true"],
            "consoleSize": {"height": 0, "width": UINT64_MAX},
            "rlimits": [{"type": "RLIMIT_STACK", "hard": UINT64_MAX, "soft": UINT64_MAX}],
            "oomScoreAdj": -1000,
            "scheduler": {
                "policy": "SCHED_OTHER",
                "nice": -(2**31),
                "priority": 2**31 - 1,
                "runtime": 0,
                "deadline": UINT64_MAX,
                "period": 0,
            },
            "ioPriority": {"class": "IOPRIO_CLASS_RT", "priority": 0},
        },
        "hooks": {"poststop": [{"path": "/bin/true", "timeout": 2**31 - 1}]},
        "linux": {
            "uidMappings": [{"containerID": UINT32_MAX, "hostID": UINT32_MAX, "size": 0}],
            "timeOffsets": {
                "monotonic": {"secs": -(2**63), "nanosecs": UINT32_MAX},
                "boottime": {"secs": INT64_MAX},
            },
            "devices": [
                {
                    "path": "/dev/x",
                    "type": "c",
                    "major": -(2**63),
                    "minor": INT64_MAX,
                    "fileMode": 0,
                    "uid": UINT32_MAX,
                }
            ],
            "resources": {
                "memory": {"limit": INT64_MAX, "reservation": -(2**63), "swappiness": UINT64_MAX},
                "cpu": {
                    "shares": UINT64_MAX,
                    "quota": -1,
                    "period": 0,
                    "realtimeRuntime": -(2**63),
                    "idle": 0,
                },
                "blockIO": {
                    "weight": 65535,
                    "leafWeight": 0,
                    "weightDevice": [{"major": 0, "minor": 0}],
                    "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": UINT64_MAX}],
                },
                "hugepageLimits": [{"pageSize": "1024KB", "limit": UINT64_MAX}],
                "network": {"classID": UINT32_MAX, "priorities": [{"name": "", "priority": 0}]},
                "pids": {"limit": -1},
                "rdma": {"mlx5_1": {"hcaHandles": UINT32_MAX, "hcaObjects": 0}},
            },
            "seccomp": {
                "defaultAction": "SCMP_ACT_ALLOW",
                "defaultErrnoRet": UINT32_MAX,
                "syscalls": [
                    {
                        "names": ["x"],
                        "action": "SCMP_ACT_ERRNO",
                        "errnoRet": 0,
                        "args": [
                            {
                                "index": UINT32_MAX,
                                "value": UINT64_MAX,
                                "valueTwo": 0,
                                "op": "SCMP_CMP_MASKED_EQ",
                            }
                        ],
                    }
                ],
            },
        },
    }


def extensible() -> dict:
    """config.md Extensibility: unknown properties anywhere are ignored, not errors."""
    return {
        "ociVersion": "1.3.0",
        "com.example.extension": {"anything": [1, 2, 3]},
        "root": {"path": "rootfs", "x-bock": True},
        "process": dict(minimal_process(), futureField=42),
        "linux": {
            "futureSection": {},
            "namespaces": [{"type": "uts", "flags": 0}],
            "resources": {"futureController": {"x": 1}},
        },
        "solaris": {},
        "zos": {},
        "freebsd": {},
    }


CONFIG_VALID = {
    "minimal-oci-version-only": {"ociVersion": "1.3.0"},
    "minimal-runnable": {"ociVersion": "1.3.0", "root": {"path": "rootfs"}, "process": minimal_process()},
    "process-everything": process_everything(),
    "linux-everything": linux_everything(),
    "hooks-and-mounts": hooks_and_mounts(),
    "integer-boundaries": boundaries(),
    "unknown-properties": extensible(),
    "empty-collections": {
        "ociVersion": "1.3.0",
        "process": {
            "cwd": "/",
            "args": [],
            "env": [],
            "user": {"uid": 0, "gid": 0, "additionalGids": []},
            "rlimits": [],
        },
        "mounts": [],
        "hooks": {},
        "annotations": {},
        "linux": {
            "namespaces": [],
            "devices": [],
            "resources": {},
            "sysctl": {},
            "maskedPaths": [],
            "netDevices": {},
            "seccomp": {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [], "architectures": [], "flags": []},
        },
    },
    # Allowed by the schemas although the prose forbids it: bock's semantic checks reject these (README).
    "prose-only-rules": {
        "ociVersion": "not-semver",
        "root": {"path": ""},
        "process": {"cwd": "relative/dir", "args": []},
        "hooks": {"prestart": [{"path": "relative-hook"}]},
        "linux": {
            "namespaces": [{"type": "pid"}, {"type": "pid"}],
            "resources": {"rdma": {"mlx5_0": {}}},
            "seccomp": {"defaultAction": "SCMP_ACT_ALLOW", "listenerMetadata": "no listenerPath"},
        },
    },
    "time-namespace": {
        "ociVersion": "1.3.0",
        "process": minimal_process(),
        "linux": {
            "namespaces": [{"type": "time"}, {"type": "mount"}],
            "timeOffsets": {"monotonic": {"secs": 86400}},
        },
    },
    "personality-linux": {"ociVersion": "1.2.0", "linux": {"personality": {"domain": "LINUX"}}},
    "memory-policy-default": {"ociVersion": "1.3.0", "linux": {"memoryPolicy": {"mode": "MPOL_DEFAULT"}}},
    "seccomp-notify": {
        "ociVersion": "1.3.0",
        "linux": {
            "seccomp": {
                "defaultAction": "SCMP_ACT_ALLOW",
                "listenerPath": "/run/agent.sock",
                "flags": ["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],
                "syscalls": [{"names": ["mount", "umount2"], "action": "SCMP_ACT_NOTIFY"}],
            }
        },
    },
    # DIVERGENCE (see test_corpus.py): config-linux.md makes pids.limit OPTIONAL; upstream requires it.
    "divergent-pids-without-limit": {"ociVersion": "1.3.0", "linux": {"resources": {"pids": {}}}},
    # DIVERGENCE: the windows, vm, solaris, zos and freebsd sections are only type-checked.
    "divergent-other-platform-sections-type-only": {
        "ociVersion": "1.3.0",
        "windows": {"layerFolders": []},
        "vm": {},
    },
}

# Invalid documents: name -> (valid base, path to change, new value or DELETE, expected keyword).
# A path is "a.b[0].c", or a tuple of keys when a key holds a dot. The single expected error
# is at that path (at its parent for a DELETE, which breaks "required").
P, L, H, M = "process-everything", "linux-everything", "hooks-and-mounts", "minimal-runnable"
SPEC, RUNC = "spec-example", "runc-1.5.0-features"
CONFIG_INVALID = {
    "root-not-object": (M, "root", "rootfs", "type"),
    "missing-ociVersion": (M, "ociVersion", DELETE, "required"),
    "ociVersion-number": (M, "ociVersion", 1.0, "type"),
    "root-missing-path": (M, "root.path", DELETE, "required"),
    "root-readonly-int": (P, "root.readonly", 1, "type"),
    "mounts-not-array": (H, "mounts", {"destination": "/proc"}, "type"),
    "mount-missing-destination": (H, "mounts[1].destination", DELETE, "required"),
    "mount-destination-number": (H, "mounts[2].destination", 5, "type"),
    "mount-options-string": (H, "mounts[1].options", "nosuid,nodev", "type"),
    "mount-option-number": (H, "mounts[2].options[1]", 0, "type"),
    "mount-source-null": (H, "mounts[0].source", None, "type"),
    "mount-uidMapping-missing-containerID": (H, "mounts[3].uidMappings[0].containerID", DELETE, "required"),
    "process-missing-cwd": (M, "process.cwd", DELETE, "required"),
    "process-not-object": (M, "process", ["sh"], "type"),
    "process-args-string": (M, "process.args", "sh -c true", "type"),
    "process-env-item-number": (P, "process.env[1]", 7, "type"),
    "process-terminal-string": (P, "process.terminal", "true", "type"),
    "process-consoleSize-missing-width": (P, "process.consoleSize.width", DELETE, "required"),
    "process-consoleSize-negative": (P, "process.consoleSize.height", -25, "minimum"),
    "process-uid-negative": (M, "process.user.uid", -1, "minimum"),
    "process-uid-bool": (M, "process.user.uid", True, "type"),
    "process-uid-fraction": (M, "process.user.uid", 0.5, "type"),
    "process-gid-over-uint32": (M, "process.user.gid", UINT32_MAX + 1, "maximum"),
    "process-umask-string": (P, "process.user.umask", "0022", "type"),
    "process-additionalGids-item-string": (P, "process.user.additionalGids[0]", "5", "type"),
    "process-user-username-number": (M, "process.user.username", 0, "type"),
    "rlimit-type-lowercase": (P, "process.rlimits[0].type", "RLIMIT_nofile", "pattern"),
    "rlimit-type-no-prefix": (P, "process.rlimits[1].type", "NOFILE", "pattern"),
    "rlimit-missing-soft": (P, "process.rlimits[0].soft", DELETE, "required"),
    "rlimit-hard-negative": (P, "process.rlimits[2].hard", -1, "minimum"),
    "rlimit-soft-over-uint64": (P, "process.rlimits[1].soft", UINT64_MAX + 1, "maximum"),
    "rlimit-soft-fraction": (P, "process.rlimits[0].soft", 1.5, "type"),
    "capabilities-bounding-string": (P, "process.capabilities.bounding", "CAP_KILL", "type"),
    "capabilities-ambient-item-null": (P, "process.capabilities.ambient[0]", None, "type"),
    "noNewPrivileges-string": (P, "process.noNewPrivileges", "yes", "type"),
    "oomScoreAdj-string": (P, "process.oomScoreAdj", "-999", "type"),
    "scheduler-bad-policy": (P, "process.scheduler.policy", "SCHED_NORMAL", "enum"),
    "scheduler-missing-policy": (P, "process.scheduler.policy", DELETE, "required"),
    "scheduler-bad-flag": (P, "process.scheduler.flags[2]", "SCHED_FLAG_DL_OVERRUNS", "enum"),
    "scheduler-nice-over-int32": (P, "process.scheduler.nice", 2147483648, "maximum"),
    "scheduler-runtime-negative": (P, "process.scheduler.runtime", -1, "minimum"),
    "ioPriority-bad-class": (P, "process.ioPriority.class", "IOPRIO_CLASS_NONE", "enum"),
    "ioPriority-missing-class": (P, "process.ioPriority.class", DELETE, "required"),
    "ioPriority-priority-string": (P, "process.ioPriority.priority", "4", "type"),
    "execCPUAffinity-bad-list": (P, "process.execCPUAffinity.final", "0-3;7", "pattern"),
    "execCPUAffinity-word": (P, "process.execCPUAffinity.initial", "all", "pattern"),
    "hostname-number": (P, "hostname", 42, "type"),
    "domainname-null": (P, "domainname", None, "type"),
    "hooks-not-object": (H, "hooks", [], "type"),
    "hooks-prestart-object": (H, "hooks.prestart", {"path": "/bin/true"}, "type"),
    "hook-missing-path": (H, "hooks.poststop[0].path", DELETE, "required"),
    "hook-timeout-zero": (H, "hooks.poststart[0].timeout", 0, "minimum"),
    "hook-timeout-string": (H, "hooks.createRuntime[0].timeout", "5s", "type"),
    "hook-args-string": (H, "hooks.startContainer[0].args", "ldconfig", "type"),
    "annotations-value-number": (H, ("annotations", "com.example.key1"), 1, "type"),
    "annotations-not-object": (H, "annotations", ["a=b"], "type"),
    "linux-not-object": (L, "linux", [], "type"),
    "namespace-bad-type": (L, "linux.namespaces[1].type", "net", "enum"),
    "namespace-missing-type": (L, "linux.namespaces[0].type", DELETE, "required"),
    "namespace-path-number": (L, "linux.namespaces[0].path", 1234, "type"),
    "namespace-entry-string": (L, "linux.namespaces[2]", "mount", "type"),
    "uidMapping-missing-size": (L, "linux.uidMappings[0].size", DELETE, "required"),
    "gidMapping-hostID-negative": (L, "linux.gidMappings[0].hostID", -1000, "minimum"),
    "timeOffsets-nanosecs-negative": (L, "linux.timeOffsets.boottime.nanosecs", -1, "minimum"),
    "timeOffsets-secs-string": (L, "linux.timeOffsets.monotonic.secs", "172800", "type"),
    "device-bad-type": (L, "linux.devices[0].type", "x", "pattern"),
    "device-type-two-letters": (L, "linux.devices[1].type", "cb", "pattern"),
    "device-missing-path": (L, "linux.devices[0].path", DELETE, "required"),
    "device-fileMode-over-0777": (L, "linux.devices[1].fileMode", 512, "maximum"),
    "device-major-string": (L, "linux.devices[0].major", "10", "type"),
    "device-uid-negative": (L, "linux.devices[0].uid", -1, "minimum"),
    "netDevices-not-object": (L, "linux.netDevices", ["eth1"], "type"),
    "netDevices-entry-string": (L, "linux.netDevices.eth1", "container_eth1", "type"),
    "netDevices-name-number": (L, "linux.netDevices.dummy0.name", 0, "type"),
    "cgroupsPath-number": (L, "linux.cgroupsPath", 7, "type"),
    "resources-devices-missing-allow": (L, "linux.resources.devices[0].allow", DELETE, "required"),
    "resources-devices-allow-string": (L, "linux.resources.devices[1].allow", "true", "type"),
    "memory-limit-string": (L, "linux.resources.memory.limit", "512M", "type"),
    "memory-limit-over-int64": (L, "linux.resources.memory.limit", INT64_MAX + 1, "maximum"),
    "memory-swappiness-negative": (L, "linux.resources.memory.swappiness", -1, "minimum"),
    "memory-disableOOMKiller-int": (L, "linux.resources.memory.disableOOMKiller", 0, "type"),
    "cpu-shares-negative": (L, "linux.resources.cpu.shares", -2, "minimum"),
    "cpu-cpus-number": (L, "linux.resources.cpu.cpus", 2, "type"),
    "cpu-burst-negative": (L, "linux.resources.cpu.burst", -1, "minimum"),
    "blockIO-weight-over-uint16": (L, "linux.resources.blockIO.weight", 65536, "maximum"),
    "blockIO-weightDevice-missing-minor": (
        L,
        "linux.resources.blockIO.weightDevice[1].minor",
        DELETE,
        "required",
    ),
    "blockIO-weightDevice-leafWeight-negative": (
        L,
        "linux.resources.blockIO.weightDevice[0].leafWeight",
        -300,
        "minimum",
    ),
    "blockIO-throttle-missing-major": (
        L,
        "linux.resources.blockIO.throttleReadIOPSDevice[0].major",
        DELETE,
        "required",
    ),
    "blockIO-throttle-rate-negative": (
        L,
        "linux.resources.blockIO.throttleWriteBpsDevice[0].rate",
        -700,
        "minimum",
    ),
    "hugepage-pageSize-lowercase": (L, "linux.resources.hugepageLimits[0].pageSize", "2mb", "pattern"),
    "hugepage-pageSize-leading-zero": (L, "linux.resources.hugepageLimits[1].pageSize", "064KB", "pattern"),
    "hugepage-missing-limit": (L, "linux.resources.hugepageLimits[0].limit", DELETE, "required"),
    "network-classID-negative": (L, "linux.resources.network.classID", -1, "minimum"),
    "network-priority-missing-name": (L, "linux.resources.network.priorities[1].name", DELETE, "required"),
    "pids-limit-string": (L, "linux.resources.pids.limit", "max", "type"),
    "rdma-hcaHandles-negative": (L, "linux.resources.rdma.mlx5_1.hcaHandles", -3, "minimum"),
    "rdma-entry-number": (L, "linux.resources.rdma.rxe3", 10000, "type"),
    "unified-value-number": (L, ("linux", "resources", "unified", "hugetlb.1GB.max"), 1073741824, "type"),
    "seccomp-missing-defaultAction": (L, "linux.seccomp.defaultAction", DELETE, "required"),
    "seccomp-bad-defaultAction": (L, "linux.seccomp.defaultAction", "SCMP_ACT_DENY", "enum"),
    "seccomp-bad-syscall-action": (L, "linux.seccomp.syscalls[3].action", "scmp_act_errno", "enum"),
    "seccomp-bad-arch": (L, "linux.seccomp.architectures[4]", "SCMP_ARCH_ARM64", "enum"),
    "seccomp-bad-flag": (L, "linux.seccomp.flags[0]", "SECCOMP_FILTER_FLAG_NEW_LISTENER", "enum"),
    "seccomp-syscall-empty-names": (L, "linux.seccomp.syscalls[0].names", [], "minItems"),
    "seccomp-syscall-missing-action": (L, "linux.seccomp.syscalls[2].action", DELETE, "required"),
    "seccomp-syscall-missing-names": (L, "linux.seccomp.syscalls[2].names", DELETE, "required"),
    "seccomp-arg-bad-op": (L, "linux.seccomp.syscalls[1].args[0].op", "SCMP_CMP_MASKED_NE", "enum"),
    "seccomp-arg-missing-value": (L, "linux.seccomp.syscalls[4].args[0].value", DELETE, "required"),
    "seccomp-arg-index-negative": (L, "linux.seccomp.syscalls[5].args[0].index", -1, "minimum"),
    "seccomp-errnoRet-negative": (L, "linux.seccomp.syscalls[0].errnoRet", -38, "minimum"),
    "seccomp-listenerPath-number": (L, "linux.seccomp.listenerPath", 3, "type"),
    "rootfsPropagation-rshared": (L, "linux.rootfsPropagation", "rshared", "enum"),
    "maskedPaths-string": (L, "linux.maskedPaths", "/proc/kcore", "type"),
    "readonlyPaths-item-number": (L, "linux.readonlyPaths[0]", 0, "type"),
    "sysctl-value-number": (L, ("linux", "sysctl", "net.core.somaxconn"), 256, "type"),
    "mountLabel-number": (L, "linux.mountLabel", 0, "type"),
    "intelRdt-memBwSchema-no-prefix": (L, "linux.intelRdt.memBwSchema", "0=20;1=70", "pattern"),
    "intelRdt-memBwSchema-newline": (L, "linux.intelRdt.memBwSchema", "MB:0=20\nL3:0=7f0", "pattern"),
    "intelRdt-enableMonitoring-string": (L, "linux.intelRdt.enableMonitoring", "true", "type"),
    "memoryPolicy-bad-mode": (L, "linux.memoryPolicy.mode", "MPOL_WEIGHTED", "enum"),
    "memoryPolicy-bad-flag": (L, "linux.memoryPolicy.flags[1]", "MPOL_F_NODES", "enum"),
    "personality-bad-domain": (L, "linux.personality.domain", "LINUX64", "enum"),
    "personality-flags-string": (L, "linux.personality.flags", "", "type"),
    "document-is-array": (M, "", [{"ociVersion": "1.3.0"}], "type"),
}


PROCESS_VALID = {
    "process-everything": process_everything()["process"],
    "minimal": {"cwd": "/"},
}

PROCESS_INVALID = {
    "missing-cwd": ("process-everything", "cwd", DELETE, "required"),
    "args-string": ("process-everything", "args", "sh -c true", "type"),
    "env-not-array": ("minimal", "env", {"PATH": "/bin"}, "type"),
    "terminal-string": ("process-everything", "terminal", "false", "type"),
    "user-uid-negative": ("process-everything", "user.uid", -1, "minimum"),
    "rlimit-type-bad": ("process-everything", "rlimits[1].type", "CORE", "pattern"),
    "capabilities-not-object": ("process-everything", "capabilities", ["CAP_KILL"], "type"),
    "scheduler-bad-policy": ("process-everything", "scheduler.policy", "SCHED_NORMAL", "enum"),
    "document-is-array": ("minimal", "", ["sh"], "type"),
}

STATE_VALID = {
    "spec-example": {
        "ociVersion": "0.2.0",
        "id": "oci-container1",
        "status": "running",
        "pid": 4422,
        "bundle": "/containers/redis",
        "annotations": {"myKey": "myValue"},
    },
    "creating-without-pid": {"ociVersion": "1.3.0", "id": "c1", "status": "creating", "bundle": "/run/b"},
    "stopped-no-annotations": {
        "ociVersion": "1.3.0",
        "id": "c1",
        "status": "stopped",
        "pid": 0,
        "bundle": "/run/b",
    },
    "hook-state-created": {
        "ociVersion": "1.3.0",
        "id": "t-0123456789ab",
        "status": "created",
        "pid": 4242,
        "bundle": "/var/lib/bock/b",
        "annotations": {},
    },
}

STATE_INVALID = {
    "missing-id": (SPEC, "id", DELETE, "required"),
    "missing-status": (SPEC, "status", DELETE, "required"),
    "missing-bundle": (SPEC, "bundle", DELETE, "required"),
    "missing-ociVersion": (SPEC, "ociVersion", DELETE, "required"),
    "status-exited": (SPEC, "status", "exited", "enum"),
    "status-uppercase": (SPEC, "status", "RUNNING", "enum"),
    "pid-negative": (SPEC, "pid", -1, "minimum"),
    "pid-string": (SPEC, "pid", "4422", "type"),
    "id-number": (SPEC, "id", 1, "type"),
    "bundle-null": (SPEC, "bundle", None, "type"),
    "annotations-value-bool": (SPEC, "annotations.myKey", True, "type"),
    "document-is-string": (SPEC, "", "running", "type"),
}


def runc_150_features() -> dict:
    """runtime-spec-lifecycle.md section 5 (runc v1.5.0 `features`), with its lists written out."""
    return {
        "ociVersionMin": "1.0.0",
        "ociVersionMax": "1.3.0",
        "hooks": ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
        "mountOptions": MOUNT_OPTIONS,
        "linux": {
            "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"],
            "capabilities": CAPS,
            "cgroup": {"v1": True, "v2": True, "systemd": True, "systemdUser": True, "rdma": True},
            "seccomp": {
                "enabled": True,
                "actions": sorted(SECCOMP_ACTIONS),
                "operators": sorted(SECCOMP_OPS),
                "archs": sorted(SECCOMP_ARCHS),
                "knownFlags": [
                    "SECCOMP_FILTER_FLAG_TSYNC",
                    "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
                    "SECCOMP_FILTER_FLAG_LOG",
                    "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
                ],
                "supportedFlags": [
                    "SECCOMP_FILTER_FLAG_TSYNC",
                    "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
                    "SECCOMP_FILTER_FLAG_LOG",
                ],
            },
            "apparmor": {"enabled": True},
            "selinux": {"enabled": True},
            "intelRdt": {"enabled": True, "schemata": True, "monitoring": True},
            "memoryPolicy": {"modes": sorted(MPOL_MODES), "flags": MPOL_FLAGS},
            "mountExtensions": {"idmap": {"enabled": True}},
            "netDevices": {"enabled": True},
        },
        "annotations": {
            "io.github.seccomp.libseccomp.version": "2.5.6",
            "org.opencontainers.runc.checkpoint.enabled": "true",
            "org.opencontainers.runc.commit": "v1.5.0-0-gc4bb595",
            "org.opencontainers.runc.version": "1.5.0",
        },
        "potentiallyUnsafeConfigAnnotations": ["bundle", "org.systemd.property.", "org.criu.config"],
    }


FEATURES_VALID = {
    "runc-1.5.0-features": runc_150_features(),
    "minimal": {"ociVersionMin": "1.0.0", "ociVersionMax": "1.1.0"},
    "empty-lists": {
        "ociVersionMin": "1.0.0",
        "ociVersionMax": "1.3.0",
        "hooks": [],
        "mountOptions": [],
        "linux": {"namespaces": [], "capabilities": [], "seccomp": {"enabled": False}},
    },
    # DIVERGENCE (see test_corpus.py): features.md lets every optional property be null.
    "divergent-null-properties": {
        "ociVersionMin": "1.0.0",
        "ociVersionMax": "1.3.0",
        "hooks": None,
        "mountOptions": None,
        "annotations": None,
        "potentiallyUnsafeConfigAnnotations": None,
        "linux": {
            "namespaces": None,
            "cgroup": None,
            "seccomp": {"enabled": None, "actions": None},
            "apparmor": None,
            "mountExtensions": {"idmap": None},
        },
    },
}

FEATURES_INVALID = {
    "missing-ociVersionMax": ("minimal", "ociVersionMax", DELETE, "required"),
    "missing-ociVersionMin": ("minimal", "ociVersionMin", DELETE, "required"),
    "ociVersionMin-number": ("minimal", "ociVersionMin", 1, "type"),
    "hooks-string": (RUNC, "hooks", "prestart", "type"),
    "mountOptions-item-number": (RUNC, "mountOptions[3]", 3, "type"),
    "namespace-bad": (RUNC, "linux.namespaces[3]", "net", "enum"),
    "capability-lowercase": (RUNC, "linux.capabilities[0]", "cap_chown", "pattern"),
    "capability-no-prefix": (RUNC, "linux.capabilities[5]", "KILL", "pattern"),
    "cgroup-v2-string": (RUNC, "linux.cgroup.v2", "yes", "type"),
    "seccomp-enabled-int": (RUNC, "linux.seccomp.enabled", 1, "type"),
    "seccomp-bad-action": (RUNC, "linux.seccomp.actions[0]", "SCMP_ACT_DENY", "enum"),
    "seccomp-bad-operator": (RUNC, "linux.seccomp.operators[0]", "SCMP_CMP_IN", "enum"),
    "seccomp-bad-arch": (RUNC, "linux.seccomp.archs[0]", "SCMP_ARCH_ARM64", "enum"),
    "seccomp-bad-knownFlag": (
        RUNC,
        "linux.seccomp.knownFlags[1]",
        "SECCOMP_FILTER_FLAG_NEW_LISTENER",
        "enum",
    ),
    "seccomp-supportedFlags-string": (
        RUNC,
        "linux.seccomp.supportedFlags",
        "SECCOMP_FILTER_FLAG_LOG",
        "type",
    ),
    "apparmor-enabled-string": (RUNC, "linux.apparmor.enabled", "true", "type"),
    "selinux-not-object": (RUNC, "linux.selinux", True, "type"),
    "idmap-enabled-string": (RUNC, "linux.mountExtensions.idmap.enabled", "true", "type"),
    "netDevices-enabled-int": (RUNC, "linux.netDevices.enabled", 1, "type"),
    "intelRdt-enabled-string": (RUNC, "linux.intelRdt.enabled", "true", "type"),
    "annotations-value-bool": (
        RUNC,
        ("annotations", "org.opencontainers.runc.checkpoint.enabled"),
        True,
        "type",
    ),
    "potentiallyUnsafe-item-number": (RUNC, "potentiallyUnsafeConfigAnnotations[0]", 0, "type"),
    "linux-array": (RUNC, "linux", [], "type"),
    "divergent-memoryPolicy-bad-mode": (RUNC, "linux.memoryPolicy.modes[0]", "MPOL_ANY", "enum"),
    "divergent-intelRdt-schemata-string": (RUNC, "linux.intelRdt.schemata", "yes", "type"),
}


def parse_path(path: str | tuple) -> tuple:
    if isinstance(path, tuple):
        return path
    keys: list = []
    for part in path.replace("[", ".[").split(".") if path else []:
        keys.append(int(part[1:-1]) if part.startswith("[") else part)
    return tuple(keys)


def json_path(keys: tuple) -> str:
    out = "$"
    for key in keys:
        if isinstance(key, int):
            out += f"[{key}]"
        else:
            out += "." + key if key.isidentifier() else "[" + json.dumps(key) + "]"
    return out


def mutate(doc: object, keys: tuple, value: object) -> object:
    doc = json.loads(json.dumps(doc))  # a tree: no shared sub-objects
    if not keys:
        return value
    parent = doc
    for key in keys[:-1]:
        parent = parent[key]
    if value is DELETE:
        del parent[keys[-1]]
    else:
        parent[keys[-1]] = value
    return doc


def write(path: pathlib.Path, doc: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2) + "\n")


def build(kind: str, valid: dict, invalid: dict) -> int:
    root = CORPUS / kind
    for name, doc in valid.items():
        write(root / "valid" / f"{name}.json", doc)
    expected = {}
    for name, (base, path, value, rule) in invalid.items():
        keys = parse_path(path)
        write(root / "invalid" / f"{name}.json", mutate(valid[base], keys, value))
        where = keys[:-1] if value is DELETE else keys
        expected[f"{name}.json"] = {"path": json_path(where), "rule": rule}
    write(root / "expected-errors.json", expected)
    return len(valid) + len(invalid)


def main() -> None:
    n = build("config", CONFIG_VALID, CONFIG_INVALID)
    n += build("process", PROCESS_VALID, PROCESS_INVALID)
    n += build("state", STATE_VALID, STATE_INVALID)
    n += build("features", FEATURES_VALID, FEATURES_INVALID)
    print(f"wrote {n} documents under {CORPUS}")


if __name__ == "__main__":
    main()

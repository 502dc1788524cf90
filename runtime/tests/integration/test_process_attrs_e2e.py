"""Process attributes, sysctls, LSMs, user namespaces, idmapped mounts and time offsets through
``bock run``, checked from inside the container (and from the host where a user would look)."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import pytest

# One busybox-bundle helper for the end-to-end tests (test_hooks_e2e.py defines it).
_spec = importlib.util.spec_from_file_location(
    "_bock_e2e_bundle", Path(__file__).with_name("test_hooks_e2e.py")
)
_e2e = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_e2e)
Bundle = _e2e.Bundle
bundle = _e2e.bundle  # the fixture

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(not os.path.exists("/bin/busybox"), reason="needs busybox"),
]

USERNS_MAP = [{"containerID": 0, "hostID": 100000, "size": 65536}]


@pytest.fixture
def userns_bundle():
    """A bundle the container's root (host uid 100000) can reach: pytest's tmp dirs are 0700."""
    base = Path(tempfile.mkdtemp(prefix="bock-t-"))
    os.chmod(base, 0o711)
    b = Bundle(base)
    try:
        yield b
    finally:
        b.delete_all()
        # the container's mounts lived in its own mount namespace; refuse to cross any that remain
        assert not any(os.path.ismount(os.path.join(d, n)) for d, ns, _ in os.walk(base) for n in ns)
        shutil.rmtree(base)


def nothing_left(bundle: Bundle) -> bool:
    return not bundle.root.exists() or not any(bundle.root.iterdir())


def run(bundle: Bundle, script: str, check: bool = True):
    bundle.config["process"]["args"] = ["sh", "-c", script]
    bundle.write()
    return bundle.bock("run", bundle.new_id(), check=check)


def host_has_cap(bit: int) -> bool:
    with open("/proc/self/status") as f:
        return bool(int(next(line for line in f if line.startswith("CapEff")).split()[1], 16) & (1 << bit))


def test_process_attributes_seen_from_inside(bundle):
    p = bundle.config["process"]
    p["rlimits"] = [
        {"type": "RLIMIT_NOFILE", "soft": 321, "hard": 654},
        {"type": "RLIMIT_CORE", "soft": 0, "hard": 0},
    ]
    p["oomScoreAdj"] = 123
    p["noNewPrivileges"] = True
    p["scheduler"] = {"policy": "SCHED_BATCH", "nice": 3}
    p["ioPriority"] = {"class": "IOPRIO_CLASS_BE", "priority": 2}
    bundle.config["linux"]["personality"] = {"domain": "LINUX32"}
    out = run(
        bundle,
        "ulimit -n; ulimit -H -n; ulimit -c; cat /proc/self/oom_score_adj; uname -m;"
        " grep NoNewPrivs /proc/self/status; ionice; cut -d' ' -f19 /proc/self/stat;"
        " grep -E '^policy' /proc/self/sched || true",
    ).stdout.split("\n")
    assert out[:5] == ["321", "654", "0", "123", "i686" if os.uname().machine == "x86_64" else out[4]]
    assert out[5].split() == ["NoNewPrivs:", "1"]
    assert out[6] == "best-effort: prio 2"
    assert out[7] == "3"  # nice
    assert out[8].split()[-1] == "3"  # SCHED_BATCH


@pytest.mark.skipif(host_has_cap(24), reason="this host grants CAP_SYS_RESOURCE")
def test_raising_a_hard_rlimit_is_a_clear_error(bundle):
    bundle.config["process"]["rlimits"] = [{"type": "RLIMIT_NOFILE", "soft": 1024, "hard": 99999999}]
    out = run(bundle, "true", check=False)
    assert out.returncode != 0
    assert "error setting rlimit type RLIMIT_NOFILE: operation not permitted" in out.stderr
    assert "needs CAP_SYS_RESOURCE" in out.stderr
    assert nothing_left(bundle)


def test_namespaced_sysctls_in_proc_sys(bundle):
    bundle.config["linux"]["sysctl"] = {
        "kernel.shmmax": "7654321",
        "kernel.domainname": "bock.example",
        "net.ipv4.ip_forward": "1",
        "fs/mqueue/msg_max": "17",
    }
    host = Path("/proc/sys/kernel/shmmax").read_text()
    out = run(
        bundle,
        "cat /proc/sys/kernel/shmmax /proc/sys/kernel/domainname /proc/sys/net/ipv4/ip_forward"
        " /proc/sys/fs/mqueue/msg_max",
    )
    assert out.stdout.split() == ["7654321", "bock.example", "1", "17"]
    assert Path("/proc/sys/kernel/shmmax").read_text() == host


@pytest.mark.parametrize(
    ("sysctl", "message"),
    [
        ({"kernel.pid_max": "1000"}, 'sysctl \\"kernel.pid_max\\" is not in a separate kernel namespace'),
        ({"vm.swappiness": "1"}, 'sysctl \\"vm.swappiness\\" is not in a separate kernel namespace'),
    ],
)
def test_non_namespaced_sysctl_is_refused(bundle, sysctl, message):
    bundle.config["linux"]["sysctl"] = sysctl
    out = run(bundle, "true", check=False)
    assert out.returncode != 0 and message in out.stderr
    assert nothing_left(bundle)


def test_mapping_without_user_namespace_is_refused(bundle):
    bundle.config["linux"]["uidMappings"] = USERNS_MAP
    bundle.config["linux"]["gidMappings"] = USERNS_MAP
    out = run(bundle, "true", check=False)
    assert out.returncode != 0
    assert "user namespace mappings specified, but user namespace isn't enabled in the config" in out.stderr


def test_apparmor_and_selinux_on_a_host_without_them_behave_as_runc(bundle):
    bundle.config["process"]["apparmorProfile"] = "bock-test"
    out = run(bundle, "true", check=False)
    assert out.returncode != 0
    assert (
        "unable to apply apparmor profile: apparmor failed to apply profile: write /proc/self/attr/exec:"
        " invalid argument" in out.stderr
    )
    assert nothing_left(bundle)
    del bundle.config["process"]["apparmorProfile"]
    bundle.config["process"]["selinuxLabel"] = "system_u:system_r:container_t:s0"
    out = run(bundle, "true", check=False)
    assert out.returncode != 0
    assert "selinux label is specified in config, but selinux is disabled or not supported" in out.stderr


def _userns(bundle: Bundle) -> None:
    bundle.config["linux"]["namespaces"].append({"type": "user"})
    bundle.config["linux"]["uidMappings"] = USERNS_MAP
    bundle.config["linux"]["gidMappings"] = USERNS_MAP
    # a rootfs owned by the container's root, as users prepare it
    for dirpath, dirnames, filenames in os.walk(bundle.path / "rootfs"):
        for name in dirnames + filenames:
            os.lchown(os.path.join(dirpath, name), 100000, 100000)
    os.chown(bundle.path / "rootfs", 100000, 100000)
    os.chmod(bundle.rec, 0o777)


def test_user_namespace_maps_seen_from_host_and_container(userns_bundle):
    bundle = userns_bundle
    _userns(bundle)
    bundle.config["process"]["args"] = [
        "sh",
        "-c",
        "id -u > /rec/id; cat /proc/self/uid_map > /rec/map; sleep 30",
    ]
    bundle.write()
    cid = bundle.new_id()
    bundle.bock("create", cid)
    pid = json.loads(bundle.bock("state", cid).stdout)["pid"]
    assert Path(f"/proc/{pid}/uid_map").read_text().split() == ["0", "100000", "65536"]
    assert Path(f"/proc/{pid}/gid_map").read_text().split() == ["0", "100000", "65536"]
    status = Path(f"/proc/{pid}/status").read_text()
    assert next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1] == "100000"
    bundle.bock("start", cid)
    for _ in range(100):
        if (bundle.rec / "map").exists() and (bundle.rec / "map").read_text():
            break
        time.sleep(0.05)
    assert (bundle.rec / "id").read_text().strip() == "0"
    assert (bundle.rec / "map").read_text().split() == ["0", "100000", "65536"]


def test_idmapped_bind_mount_and_time_offsets(userns_bundle):
    bundle = userns_bundle
    _userns(bundle)
    data = bundle.path / "data"
    data.mkdir()
    (data / "owned-by-host-root").write_text("x")
    (data / "owned-by-7").write_text("y")
    os.chown(data / "owned-by-7", 7, 7)
    os.chmod(data, 0o777)
    bundle.config["mounts"] += [
        {"destination": "/data", "source": str(data), "type": "bind", "options": ["rbind", "idmap"]},
        {"destination": "/raw", "source": str(data), "type": "bind", "options": ["rbind"]},
        {
            "destination": "/explicit",
            "source": str(data),
            "type": "bind",
            "options": ["rbind"],
            "uidMappings": [{"containerID": 0, "hostID": 100007, "size": 1}],
            "gidMappings": [{"containerID": 0, "hostID": 100007, "size": 1}],
        },
    ]
    bundle.config["linux"]["namespaces"].append({"type": "time"})
    bundle.config["linux"]["timeOffsets"] = {"boottime": {"secs": 86400 * 3, "nanosecs": 0}}
    host_uptime = float(Path("/proc/uptime").read_text().split()[0])
    out = run(
        bundle,
        "stat -c '%n %u %g' /data/owned-by-host-root /data/owned-by-7 /raw/owned-by-host-root"
        " /explicit/owned-by-host-root; cut -d' ' -f1 /proc/uptime; echo new > /data/created",
    )
    lines = out.stdout.splitlines()
    assert lines[:4] == [
        "/data/owned-by-host-root 0 0",  # idmapped with the container's maps: host 0 is the container's 0
        "/data/owned-by-7 7 7",
        "/raw/owned-by-host-root 65534 65534",  # a plain bind: host root is unmapped in the container
        "/explicit/owned-by-host-root 7 7",  # explicit mount maps: host 0 -> 100007 -> container 7
    ]
    assert abs(float(lines[4]) - host_uptime - 3 * 86400) < 30
    created = os.stat(data / "created")
    assert (created.st_uid, created.st_gid) == (0, 0)  # written as container root through the idmap


def test_personality_flags_are_ignored_with_a_warning_as_runc(bundle):
    bundle.config["linux"]["personality"] = {"domain": "LINUX", "flags": ["ADDR_NO_RANDOMIZE"]}
    out = run(bundle, "uname -m")
    assert out.stdout.strip() == os.uname().machine
    assert "level=warning" in out.stderr and "ignoring unsupported personality flags" in out.stderr


def test_idmapped_mount_without_a_user_namespace(bundle):
    data = bundle.path / "plain-data"
    data.mkdir()
    (data / "f").write_text("x")
    bundle.config["mounts"].append(
        {
            "destination": "/data",
            "source": str(data),
            "type": "bind",
            "options": ["bind", "ro"],
            "uidMappings": [{"containerID": 0, "hostID": 4000, "size": 10}],
            "gidMappings": [{"containerID": 0, "hostID": 5000, "size": 10}],
        }
    )
    out = run(bundle, "stat -c '%u %g' /data/f; touch /data/g 2>&1 || echo read-only")
    assert out.stdout.splitlines()[0] == "4000 5000"
    assert out.stdout.splitlines()[-1] == "read-only"
    assert os.stat(data / "f").st_uid == 0 and not (data / "g").exists()


def test_rlimits_and_oom_score_adj_in_a_user_namespace(userns_bundle):
    # set by the runtime on the init (runc's way), not from inside the user namespace
    bundle = userns_bundle
    _userns(bundle)
    bundle.config["process"]["rlimits"] = [{"type": "RLIMIT_NOFILE", "soft": 100, "hard": 200}]
    bundle.config["process"]["oomScoreAdj"] = 300
    out = run(bundle, "ulimit -n; ulimit -H -n; cat /proc/self/oom_score_adj; id -u")
    assert out.stdout.split() == ["100", "200", "300", "0"]


def test_rlimits_for_a_non_root_user(bundle):
    # set while the init is still root: a prlimit on a process of another uid would need
    # CAP_SYS_RESOURCE, which this host's root lacks
    bundle.config["process"]["user"] = {"uid": 1000, "gid": 1000}
    bundle.config["process"]["rlimits"] = [{"type": "RLIMIT_NOFILE", "soft": 50, "hard": 60}]
    out = run(bundle, "ulimit -n; ulimit -H -n; id -u")
    assert out.stdout.split() == ["50", "60", "1000"]

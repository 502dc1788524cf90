"""Every namespace type, new (its inode differs from the host's) or joined by path (the
inode equals the other container's)."""

from __future__ import annotations

import os
import time

import pytest

pytestmark = pytest.mark.root

NS_FILES = {
    "pid": "pid",
    "network": "net",
    "ipc": "ipc",
    "uts": "uts",
    "mount": "mnt",
    "cgroup": "cgroup",
    "user": "user",
    "time": "time",
}
SCRIPT = "for n in pid net ipc uts mnt cgroup user time; do echo $n=$(readlink /proc/self/ns/$n); done"


def host_ns(name: str) -> str:
    return os.readlink(f"/proc/self/ns/{name}")


def inside_ns(out: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def test_default_spec_namespaces_are_new(runtime, bundle):
    b = bundle("sh", "-c", SCRIPT)
    res = runtime.run(b).ok()
    got = inside_ns(res.out)
    for kind in ("pid", "network", "ipc", "uts", "mount", "cgroup"):
        f = NS_FILES[kind]
        assert got[f] != host_ns(f), kind
    for f in ("user", "time"):  # not asked for: shared with the host
        assert got[f] == host_ns(f), f


@pytest.mark.parametrize("kind", ["pid", "network", "ipc", "uts", "cgroup", "time"])
def test_each_namespace_alone(runtime, bundle, kind):
    b = bundle("sh", "-c", SCRIPT)
    b.config["linux"]["namespaces"] = [{"type": "mount"}, {"type": kind}]
    if kind != "uts":
        b.config.pop("hostname", None)
    b.save()
    got = inside_ns(runtime.run(b).ok().out)
    for k, f in NS_FILES.items():
        if k in (kind, "mount"):
            assert got[f] != host_ns(f), k
        else:
            assert got[f] == host_ns(f), k


def test_user_namespace_with_mappings(runtime, bundle, open_tmp):
    b = bundle(
        "sh",
        "-c",
        SCRIPT + "; cat /proc/self/uid_map /proc/self/gid_map; id -u; echo x > /dev/null",
        base=open_tmp,
    )
    b.config["linux"]["namespaces"].append({"type": "user"})
    b.config["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 200000, "size": 65536}]
    b.config["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 200000, "size": 65536}]
    b.save()
    res = runtime.run(b).ok()
    got = inside_ns(res.out)
    assert got["user"] != host_ns("user")
    maps = [line.split() for line in res.out.splitlines() if "=" not in line]
    assert ["0", "200000", "65536"] in maps
    assert maps[-1] == ["0"]  # root inside


def test_time_namespace_offsets(runtime, bundle):
    b = bundle("cat", "/proc/uptime")
    b.config["linux"]["namespaces"].append({"type": "time"})
    b.config["linux"]["timeOffsets"] = {"boottime": {"secs": 1000000, "nanosecs": 0}}
    b.save()
    res = runtime.run(b).ok()
    with open("/proc/uptime") as f:
        host = float(f.read().split()[0])
    inside = float(res.out.split()[0])
    assert 1000000 - 5 < inside - host < 1000000 + 60


def test_hostname_and_uts_namespace(runtime, bundle):
    b = bundle("hostname")
    b.config["hostname"] = "inside-bock"
    b.save()
    assert runtime.run(b).ok().out == "inside-bock\n"
    assert os.uname().nodename != "inside-bock"


def test_join_another_containers_namespaces_by_path(runtime, bundle):
    a = bundle("sleep", "60", name="a")
    a.config["hostname"] = "first"
    a.save()
    first = runtime.create(a)
    runtime.start(first)
    pid = runtime.state(first)["pid"]
    b = bundle("sh", "-c", SCRIPT + "; hostname", name="b")
    for kind in ("network", "ipc", "uts"):
        b.set_namespace(kind, f"/proc/{pid}/ns/{NS_FILES[kind]}")
    b.config.pop("hostname", None)
    b.save()
    res = runtime.run(b).ok()
    got = inside_ns(res.out)
    for kind in ("network", "ipc", "uts"):
        f = NS_FILES[kind]
        assert got[f] == os.readlink(f"/proc/{pid}/ns/{f}"), kind
        assert got[f] != host_ns(f)
    for f in ("pid", "mnt", "cgroup"):  # new ones, not the first container's
        assert got[f] != os.readlink(f"/proc/{pid}/ns/{f}")
    assert res.out.splitlines()[-1] == "first"


def test_join_pid_namespace_sees_the_first_init(runtime, bundle):
    a = bundle("sleep", "60", name="a")
    first = runtime.create(a)
    runtime.start(first)
    pid = runtime.state(first)["pid"]
    b = bundle("sh", "-c", "cat /proc/1/cmdline | tr '\\0' ' '; echo; readlink /proc/self/ns/pid", name="b")
    b.set_namespace("pid", f"/proc/{pid}/ns/pid")
    res = runtime.run(b).ok()
    lines = res.out.splitlines()
    assert lines[0].strip() == "sleep 60"
    assert lines[1] == os.readlink(f"/proc/{pid}/ns/pid")


def test_join_a_missing_namespace_path_fails_cleanly(runtime, bundle):
    b = bundle("true")
    b.set_namespace("network", "/proc/999999999/ns/net")
    assert "/proc/999999999/ns/net" in runtime.create_fails(b).err


def test_join_a_namespace_of_the_wrong_type_fails(runtime, bundle, tmp_path):
    a = bundle("sleep", "60", name="a")
    first = runtime.create(a)
    pid = runtime.state(first)["pid"]
    b = bundle("true", name="b")
    b.set_namespace("network", f"/proc/{pid}/ns/ipc")
    runtime.create_fails(b)


def test_network_namespace_has_only_loopback(runtime, bundle):
    res = runtime.run(bundle("ls", "/sys/class/net")).ok()
    assert res.out.split() == ["lo"]


def test_pid_namespace_init_is_pid_1(runtime, bundle):
    res = runtime.run(bundle("sh", "-c", "echo $$; ps -o pid,comm")).ok()
    lines = res.out.splitlines()
    assert lines[0] == "1"
    assert len(lines) == 3  # header, sh, ps: nothing of the host


def test_created_container_namespaces_exist_before_start(runtime, bundle):
    cid = runtime.create(bundle("sleep", "60"))
    pid = runtime.state(cid)["pid"]
    time.sleep(0.05)
    for f in ("net", "uts", "ipc", "mnt"):
        assert os.readlink(f"/proc/{pid}/ns/{f}") != host_ns(f)


def test_join_time_and_cgroup_namespaces_by_path(runtime, bundle):
    a = bundle("sleep", "60", name="a")
    a.config["linux"]["namespaces"].append({"type": "time"})
    a.config["linux"]["timeOffsets"] = {"boottime": {"secs": 500000, "nanosecs": 0}}
    a.save()
    first = runtime.create(a)
    pid = runtime.state(first)["pid"]
    b = bundle("sh", "-c", SCRIPT + "; cat /proc/uptime", name="b")
    b.set_namespace("time", f"/proc/{pid}/ns/time")
    b.set_namespace("cgroup", f"/proc/{pid}/ns/cgroup")
    out = runtime.run(b).ok().out
    got = inside_ns(out)
    assert got["time"] == os.readlink(f"/proc/{pid}/ns/time") != host_ns("time")
    assert got["cgroup"] == os.readlink(f"/proc/{pid}/ns/cgroup")
    with open("/proc/uptime") as f:
        host = float(f.read().split()[0])
    assert float(out.splitlines()[-1].split()[0]) - host > 400000


def test_join_user_namespace_by_path(runtime, bundle, open_tmp):
    a = bundle("sleep", "60", name="a", base=open_tmp)
    a.config["linux"]["namespaces"].append({"type": "user"})
    a.config["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 300000, "size": 65536}]
    a.config["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 300000, "size": 65536}]
    a.save()
    first = runtime.create(a)
    pid = runtime.state(first)["pid"]
    b = bundle("sh", "-c", SCRIPT + "; cat /proc/self/uid_map; id -u", name="b", base=open_tmp)
    b.set_namespace("user", f"/proc/{pid}/ns/user")
    out = runtime.run(b).ok().out
    got = inside_ns(out)
    assert got["user"] == os.readlink(f"/proc/{pid}/ns/user") != host_ns("user")
    assert out.splitlines()[-2].split() == ["0", "300000", "65536"]
    assert out.splitlines()[-1] == "0"

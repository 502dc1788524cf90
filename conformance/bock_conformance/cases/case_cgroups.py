"""config-linux.md "cgroups" and "resources", checked in the host's own cgroup files (v1, v2 or hybrid),
and "sysctl"."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bock_conformance import _host

CG = pytest.mark.section("cgroups")
SYSCTL = pytest.mark.section("sysctl")
MiB = 1024 * 1024


def resources(**res):
    def mutate(cfg):
        cfg["linux"]["resources"].update(res)

    return mutate


def host_cgroup_file(kit, mutate, controller, v1_name, v2_name=None):
    """Create a container with *mutate* applied and read the resource file on the host."""
    cfg = kit.config("sleep 300")
    mutate(cfg)
    ctr = kit.create(cfg)
    path = cfg["linux"]["cgroupsPath"]
    if controller in _host.cgroup_mounts():
        f = _host.v1_dir(controller, path) / v1_name
    elif v2_name and controller in _host.v2_controllers():
        f = _host.v2_dir(path) / v2_name
    else:
        kit.skip_host(f"no {controller} controller on this host")
    if not f.exists():
        kit.skip_host(f"{f.name} does not exist on this host")
    text = kit.host_read(f)
    return ctr, (text or "").strip()


def need_file(kit, controller, name):
    mnt = _host.cgroup_mounts().get(controller)
    if mnt is None:
        kit.skip_host(f"no cgroup v1 {controller} controller on this host")
    if not (mnt / name).exists():
        kit.skip_host(f"{controller} has no {name} on this host")


@CG
def test_memory_limit(kit):
    _, text = host_cgroup_file(
        kit, resources(memory={"limit": 64 * MiB}), "memory", "memory.limit_in_bytes", "memory.max"
    )
    assert int(text) == 64 * MiB


@CG
def test_memory_reservation(kit):
    _, text = host_cgroup_file(
        kit, resources(memory={"reservation": 32 * MiB}), "memory", "memory.soft_limit_in_bytes", "memory.low"
    )
    assert int(text) == 32 * MiB


@CG
def test_memory_swap(kit):
    need_file(kit, "memory", "memory.memsw.limit_in_bytes")
    _, text = host_cgroup_file(
        kit, resources(memory={"limit": 64 * MiB, "swap": 128 * MiB}), "memory", "memory.memsw.limit_in_bytes"
    )
    assert int(text) == 128 * MiB


@CG
def test_memory_swappiness(kit):
    need_file(kit, "memory", "memory.swappiness")
    _, text = host_cgroup_file(kit, resources(memory={"swappiness": 10}), "memory", "memory.swappiness")
    assert text == "10"


@CG
def test_memory_disable_oom_killer(kit):
    need_file(kit, "memory", "memory.oom_control")
    _, text = host_cgroup_file(
        kit, resources(memory={"disableOOMKiller": True}), "memory", "memory.oom_control"
    )
    assert "oom_kill_disable 1" in text


@CG
def test_memory_limit_enforced(kit):
    def limit(cfg):
        cfg["linux"]["resources"]["memory"] = {"limit": 16 * MiB, "swap": 16 * MiB}
        cfg["mounts"].append(
            {"destination": "/big", "type": "tmpfs", "source": "tmpfs", "options": ["size=256m"]}
        )

    script = (
        "dd if=/dev/zero of=/big/f bs=1M count=64 2>/dev/null; [ $(wc -c </big/f) -lt 67108864 ] && echo ok"
    )
    res = kit.sh(script, limit)
    assert res.rc != 0 or res.out.strip() == "ok", res


@CG
def test_memory_update_below_usage_applied_or_rejected(kit):
    kit.require_subcommand("update")
    ctr = kit.started("x=$(head -c 8000000 /dev/zero | tr '\\0' a); echo ready; sleep 300")
    ctr.wait_output("ready")
    res = kit.cli("update", "--memory", "1048576", ctr.id)
    d = _host.cgroup_dir("memory", ctr.config["linux"]["cgroupsPath"])
    if res.rc == 0 and d is not None:
        v1 = "memory" in _host.cgroup_mounts()
        limit, usage = (
            ("memory.limit_in_bytes", "memory.usage_in_bytes") if v1 else ("memory.max", "memory.current")
        )
        assert int((d / limit).read_text()) == 1048576
        assert int((d / usage).read_text()) <= 1048576


@CG
def test_cpu_shares(kit):
    _, text = host_cgroup_file(kit, resources(cpu={"shares": 512}), "cpu", "cpu.shares", "cpu.weight")
    assert text in ("512", "20")


@CG
def test_cpu_quota(kit):
    _, text = host_cgroup_file(
        kit, resources(cpu={"quota": 50000, "period": 100000}), "cpu", "cpu.cfs_quota_us", "cpu.max"
    )
    assert text.split()[0] == "50000"


@CG
def test_cpu_period(kit):
    _, text = host_cgroup_file(
        kit, resources(cpu={"quota": 20000, "period": 200000}), "cpu", "cpu.cfs_period_us", "cpu.max"
    )
    assert text.split()[-1] == "200000"


@CG
def test_cpu_realtime(kit):
    need_file(kit, "cpu", "cpu.rt_runtime_us")
    _, text = host_cgroup_file(
        kit, resources(cpu={"realtimeRuntime": 1000, "realtimePeriod": 1000000}), "cpu", "cpu.rt_runtime_us"
    )
    assert text == "1000"


@CG
def test_cpu_idle(kit):
    _, text = host_cgroup_file(kit, resources(cpu={"idle": 1}), "cpu", "cpu.idle", "cpu.idle")
    assert text == "1"


@CG
def test_cpu_burst(kit):
    need_file(kit, "cpu", "cpu.cfs_burst_us")
    _, text = host_cgroup_file(
        kit,
        resources(cpu={"quota": 50000, "period": 100000, "burst": 10000}),
        "cpu",
        "cpu.cfs_burst_us",
        "cpu.max.burst",
    )
    assert text == "10000"


@CG
def test_cpuset_cpus(kit):
    _, text = host_cgroup_file(kit, resources(cpu={"cpus": "0"}), "cpuset", "cpuset.cpus", "cpuset.cpus")
    assert text == "0"


@CG
def test_cpuset_mems(kit):
    _, text = host_cgroup_file(kit, resources(cpu={"mems": "0"}), "cpuset", "cpuset.mems", "cpuset.mems")
    assert text == "0"


@CG
def test_cpuset_enforced_inside(kit):
    res = kit.sh("grep Cpus_allowed_list /proc/self/status", resources(cpu={"cpus": "0"}))
    assert res.out.split()[-1] == "0"


@CG
def test_pids_limit(kit):
    _, text = host_cgroup_file(kit, resources(pids={"limit": 100}), "pids", "pids.max", "pids.max")
    assert text == "100"


@CG
def test_pids_limit_enforced(kit):
    script = "for i in 1 2 3 4 5 6 7 8 9 10; do sleep 5 & done 2>&1; wait"
    res = kit.sh(script, resources(pids={"limit": 4}))
    assert "fork" in res.out + res.err or "Resource temporarily unavailable" in res.out + res.err, res


@CG
def test_blkio_weight(kit):
    need_file(kit, "blkio", "blkio.weight")
    _, text = host_cgroup_file(kit, resources(blockIO={"weight": 300}), "blkio", "blkio.weight")
    assert text == "300"


@CG
def test_blkio_weight_device(kit):
    need_file(kit, "blkio", "blkio.weight_device")
    major, minor = map(int, _host.root_block_device().split(":"))
    res = resources(blockIO={"weightDevice": [{"major": major, "minor": minor, "weight": 200}]})
    _, text = host_cgroup_file(kit, res, "blkio", "blkio.weight_device")
    assert f"{major}:{minor} 200" in text


THROTTLE = [
    ("throttleReadBpsDevice", "blkio.throttle.read_bps_device", 1048576),
    ("throttleWriteBpsDevice", "blkio.throttle.write_bps_device", 2097152),
    ("throttleReadIOPSDevice", "blkio.throttle.read_iops_device", 100),
    ("throttleWriteIOPSDevice", "blkio.throttle.write_iops_device", 200),
]


@CG
@pytest.mark.parametrize("key,fname,rate", THROTTLE, ids=[t[0] for t in THROTTLE])
def test_blkio_throttle(kit, key, fname, rate):
    need_file(kit, "blkio", fname)
    major, minor = map(int, _host.root_block_device().split(":"))
    res = resources(blockIO={key: [{"major": major, "minor": minor, "rate": rate}]})
    _, text = host_cgroup_file(kit, res, "blkio", fname)
    assert f"{major}:{minor} {rate}" in text


@CG
def test_hugepage_limit_applied_or_rejected(kit):
    sizes = [
        p.name.removeprefix("hugepages-").removesuffix("kB")
        for p in Path("/sys/kernel/mm/hugepages").glob("*")
    ]
    if "2048" not in sizes:
        kit.skip_host("no 2MB huge pages")
    cfg = kit.config("sleep 300")
    cfg["linux"]["resources"]["hugepageLimits"] = [{"pageSize": "2MB", "limit": 4 * 2 * MiB}]
    _, res = kit.try_create(cfg)
    if res.rc != 0:
        return  # refused clearly: acceptable
    path = cfg["linux"]["cgroupsPath"]
    candidates = []
    if "hugetlb" in _host.cgroup_mounts():
        candidates.append(_host.v1_dir("hugetlb", path) / "hugetlb.2MB.limit_in_bytes")
    if "hugetlb" in _host.v2_controllers():
        candidates.append(_host.v2_dir(path) / "hugetlb.2MB.max")
    values = [kit.host_read(c) for c in candidates]
    assert any(v and int(v) == 8 * MiB for v in values), (
        f"hugetlb limit silently dropped: {candidates} {values}"
    )


@CG
def test_network_class_id(kit):
    need_file(kit, "net_cls", "net_cls.classid")
    _, text = host_cgroup_file(kit, resources(network={"classID": 1048577}), "net_cls", "net_cls.classid")
    assert text == "1048577"


@CG
def test_network_priorities(kit):
    need_file(kit, "net_prio", "net_prio.ifpriomap")
    _, text = host_cgroup_file(
        kit,
        resources(network={"priorities": [{"name": "lo", "priority": 7}]}),
        "net_prio",
        "net_prio.ifpriomap",
    )
    assert "lo 7" in text


@CG
def test_rdma_limit(kit):
    if "rdma" not in _host.cgroup_mounts() and "rdma" not in _host.v2_controllers():
        kit.skip_host("no rdma controller on this host")
    devices = os.listdir("/sys/class/infiniband") if os.path.isdir("/sys/class/infiniband") else []
    if not devices:
        kit.skip_host("no RDMA device on this host")
    limit = {devices[0]: {"hcaHandles": 3, "hcaObjects": 100}}
    _, text = host_cgroup_file(kit, resources(rdma=limit), "rdma", "rdma.max", "rdma.max")
    assert f"{devices[0]} hca_handle=3 hca_object=100" in text


@CG
def test_unified_applied_or_rejected(kit):
    cfg = kit.config("sleep 300")
    cfg["linux"]["resources"]["unified"] = {"pids.max": "42"}
    _, res = kit.try_create(cfg)
    if res.rc != 0:
        assert res.err.strip(), "refused without a message"
        return
    path = cfg["linux"]["cgroupsPath"]
    v2 = _host.v2_dir(path)
    values = [kit.host_read(v2 / "pids.max") if v2 else None]
    if "pids" in _host.cgroup_mounts():
        values.append(kit.host_read(_host.v1_dir("pids", path) / "pids.max"))
    assert any(v and v.strip() == "42" for v in values), f"unified value silently dropped: {values}"


V1_CONTROLLERS = ["cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "pids", "blkio"]


@CG
@pytest.mark.parametrize("controller", V1_CONTROLLERS)
def test_init_placed_in_cgroup(kit, controller):
    if _host.layout() == "v2":
        kit.skip_host("cgroup v2 only host (no per-controller hierarchies)")
    if controller not in _host.cgroup_mounts():
        kit.skip_host(f"no {controller} controller")
    ctr = kit.create(kit.config("sleep 300"))
    want = ctr.config["linux"]["cgroupsPath"]
    lines = Path(f"/proc/{ctr.pid}/cgroup").read_text().splitlines()
    paths = {c: p for line in lines for _, cs, p in [line.split(":", 2)] for c in cs.split(",")}
    assert paths.get(controller) == want, lines


@CG
def test_init_placed_in_unified_cgroup(kit):
    if "unified" not in _host.cgroup_mounts():
        kit.skip_host("no cgroup2 hierarchy")
    if _host.layout() == "hybrid" and not _host.v2_controllers():
        kit.skip_host("hybrid host whose cgroup2 hierarchy has no controllers")
    ctr = kit.create(kit.config("sleep 300"))
    lines = Path(f"/proc/{ctr.pid}/cgroup").read_text().splitlines()
    assert any(
        line.startswith("0::") and line.endswith(ctr.config["linux"]["cgroupsPath"]) for line in lines
    ), lines


@CG
def test_relative_cgroups_path(kit):
    cfg = kit.config("sleep 300")
    rel = cfg["linux"]["cgroupsPath"].lstrip("/")
    cfg["linux"]["cgroupsPath"] = rel
    kit.cgroups.append(rel)
    ctr = kit.create(cfg)
    lines = Path(f"/proc/{ctr.pid}/cgroup").read_text().splitlines()
    assert any(line.endswith("/" + rel) for line in lines), lines


@CG
def test_cgroup_contains_all_container_processes(kit):
    ctr = kit.started("sleep 300 & sleep 300 & echo ready; wait")
    ctr.wait_output("ready")
    procs = (
        (_host.cgroup_dir("pids", ctr.config["linux"]["cgroupsPath"]) / "cgroup.procs").read_text().split()
    )
    assert len(procs) == 3, procs


# -- sysctl ----------------------------------------------------------------------------------------------


def sysctl(**values):
    def mutate(cfg):
        cfg["linux"]["sysctl"] = values

    return mutate


@SYSCTL
def test_sysctl_net(kit):
    res = kit.sh("cat /proc/sys/net/ipv4/ip_forward", sysctl(**{"net.ipv4.ip_forward": "1"}))
    assert res.out.strip() == "1"


@SYSCTL
def test_sysctl_net_core(kit):
    res = kit.sh("cat /proc/sys/net/core/somaxconn", sysctl(**{"net.core.somaxconn": "1234"}))
    assert res.out.strip() == "1234"


@SYSCTL
def test_sysctl_ipc(kit):
    res = kit.sh("cat /proc/sys/kernel/msgmax", sysctl(**{"kernel.msgmax": "4096"}))
    assert res.out.strip() == "4096"


@SYSCTL
def test_sysctl_mqueue(kit):
    res = kit.sh("cat /proc/sys/fs/mqueue/queues_max", sysctl(**{"fs.mqueue.queues_max": "77"}))
    assert res.out.strip() == "77"


@SYSCTL
def test_sysctl_does_not_change_host(kit):
    before = Path("/proc/sys/net/core/somaxconn").read_text()
    kit.sh("true", sysctl(**{"net.core.somaxconn": "1111"})).expect_ok()
    assert Path("/proc/sys/net/core/somaxconn").read_text() == before


@SYSCTL
def test_sysctl_non_namespaced_rejected(kit):
    kit.sh("true", sysctl(**{"vm.swappiness": "10"})).expect_fail()


@SYSCTL
def test_sysctl_net_without_netns_rejected(kit):
    def mutate(cfg):
        cfg["linux"]["namespaces"] = [n for n in cfg["linux"]["namespaces"] if n["type"] != "network"]
        cfg["linux"]["sysctl"] = {"net.ipv4.ip_forward": "1"}

    kit.sh("true", mutate).expect_fail()


@SYSCTL
def test_sysctl_ipc_without_ipcns_rejected(kit):
    def mutate(cfg):
        cfg["linux"]["namespaces"] = [n for n in cfg["linux"]["namespaces"] if n["type"] != "ipc"]
        cfg["linux"]["sysctl"] = {"kernel.msgmax": "4096"}

    kit.sh("true", mutate).expect_fail()


@SYSCTL
def test_sysctl_unknown_key_fails(kit):
    kit.sh("true", sysctl(**{"net.bock.no_such_key": "1"})).expect_fail()

"""config-linux.md "devices" (default and configured), the device cgroup, masked and readonly paths."""

from __future__ import annotations

import os

import pytest

from bock_conformance import _host

DEV = pytest.mark.section("devices")
MASK = pytest.mark.section("masked")

DEFAULT_DEVICES = [
    ("/dev/null", 1, 3),
    ("/dev/zero", 1, 5),
    ("/dev/full", 1, 7),
    ("/dev/random", 1, 8),
    ("/dev/urandom", 1, 9),
    ("/dev/tty", 5, 0),
]


@DEV
@pytest.mark.parametrize("path,major,minor", DEFAULT_DEVICES, ids=[d[0] for d in DEFAULT_DEVICES])
def test_default_device(kit, path, major, minor):
    out = kit.sh(f"stat -c '%F %t %T' {path}").out.strip()
    assert out == f"character special file {major:x} {minor:x}", out


@DEV
@pytest.mark.parametrize(
    "link,target",
    [
        ("/dev/fd", "/proc/self/fd"),
        ("/dev/stdin", "/proc/self/fd/0"),
        ("/dev/stdout", "/proc/self/fd/1"),
        ("/dev/stderr", "/proc/self/fd/2"),
    ],
)
def test_default_dev_symlink(kit, link, target):
    assert kit.sh(f"readlink {link}").out.strip() == target


@DEV
def test_dev_ptmx_usable(kit):
    out = kit.sh("readlink /dev/ptmx || stat -c '%t %T' /dev/ptmx").out.strip()
    assert out in ("pts/ptmx", "/dev/pts/ptmx", "5 2"), out


@DEV
def test_dev_null_discards_writes(kit):
    assert kit.sh("echo x > /dev/null && wc -c < /dev/null").out.strip() == "0"


@DEV
def test_dev_zero_reads_zeros(kit):
    assert kit.sh("head -c 4 /dev/zero | od -An -tx1").out.split() == ["00"] * 4


@DEV
def test_dev_full_gives_enospc(kit):
    assert "No space left" in kit.sh("(echo x > /dev/full) 2>&1; true").out


@DEV
def test_no_host_devices_leak(kit):
    names = set(kit.sh("ls -A /dev").out.split())
    allowed = {
        "null",
        "zero",
        "full",
        "random",
        "urandom",
        "tty",
        "ptmx",
        "pts",
        "shm",
        "mqueue",
        "fd",
        "stdin",
        "stdout",
        "stderr",
        "console",
        "core",
    }
    assert names <= allowed, names - allowed


def with_device(**dev):
    def mutate(cfg):
        entry = {"path": "/dev/mydev", "type": "c", "major": 1, "minor": 3}
        entry.update(dev)
        cfg["linux"]["devices"] = [entry]
        cfg["linux"]["resources"]["devices"].append(
            {
                "allow": True,
                "type": entry["type"],
                "major": entry["major"],
                "minor": entry["minor"],
                "access": "rwm",
            }
        )

    return mutate


@DEV
def test_configured_device_node(kit):
    assert kit.sh("stat -c '%F %t %T' /dev/mydev", with_device()).out.strip() == "character special file 1 3"


@DEV
def test_configured_device_mode(kit):
    assert kit.sh("stat -c %a /dev/mydev", with_device(fileMode=0o640)).out.strip() == "640"


@DEV
def test_configured_device_owner(kit):
    assert kit.sh("stat -c '%u %g' /dev/mydev", with_device(uid=1000, gid=29)).out.strip() == "1000 29"


@DEV
def test_configured_block_device(kit):
    assert kit.sh("stat -c '%F %t %T' /dev/mydev", with_device(type="b", major=7, minor=0)).out.strip() == (
        "block special file 7 0"
    )


@DEV
def test_configured_device_usable_when_allowed(kit):
    assert kit.sh("echo x > /dev/mydev && echo written", with_device()).out.strip() == "written"


@DEV
def test_device_cgroup_denies_unlisted_device(kit):
    def mutate(cfg):
        cfg["linux"]["devices"] = [{"path": "/dev/mymem", "type": "c", "major": 1, "minor": 1}]

    res = kit.sh("head -c1 /dev/mymem >/dev/null 2>&1 && echo opened || echo denied", mutate)
    assert res.out.strip() == "denied"


@DEV
def test_device_cgroup_denies_mknod_node(kit):
    def mutate(cfg):
        for s in ("bounding", "effective", "permitted"):
            cfg["process"]["capabilities"][s].append("CAP_MKNOD")

    res = kit.sh(
        "mknod /tmp/mem c 1 1 2>/dev/null; head -c1 /tmp/mem >/dev/null 2>&1 && echo opened || echo denied",
        mutate,
    )
    assert res.out.strip() == "denied"


@DEV
def test_device_cgroup_host_rules(kit):
    if "devices" not in _host.cgroup_mounts():
        kit.skip_host("no cgroup v1 devices controller (v2 uses an eBPF program)")
    ctr = kit.started("sleep 300")
    rules = kit.host_read(_host.v1_dir("devices", ctr.config["linux"]["cgroupsPath"]) / "devices.list")
    assert rules is not None and "c 1:3 rwm" in rules and "a *:* rwm" not in rules, rules


@DEV
def test_device_cgroup_allows_pts(kit):
    if "devices" not in _host.cgroup_mounts():
        kit.skip_host("no cgroup v1 devices controller")
    ctr = kit.started("sleep 300")
    rules = _host.v1_dir("devices", ctr.config["linux"]["cgroupsPath"]) / "devices.list"
    assert "c 136:* rwm" in rules.read_text()


# -- masked and readonly paths ---------------------------------------------------------------------------


@MASK
@pytest.mark.parametrize("path", ["/proc/kcore", "/proc/keys", "/proc/timer_list"])
def test_masked_file_reads_empty(kit, path):
    if not os.path.exists(path):
        kit.skip_host(f"{path} does not exist on this kernel")
    assert kit.sh(f"wc -c < {path}").out.strip() == "0"


@MASK
@pytest.mark.parametrize("path", ["/sys/firmware", "/proc/acpi", "/proc/scsi"])
def test_masked_directory_is_empty(kit, path):
    if not os.path.isdir(path) or not os.listdir(path):
        kit.skip_host(f"{path} is missing or empty on this host")
    res = kit.sh(f"ls -A {path} 2>/dev/null | wc -l")
    assert res.out.strip() == "0"


@MASK
def test_masked_directory_not_writable(kit):
    res = kit.sh("touch /sys/firmware/x 2>&1; echo rc=$?")
    assert "rc=0" not in res.out


@MASK
def test_configured_masked_path(kit):
    def mask(cfg):
        cfg["linux"]["maskedPaths"].append("/etc/passwd")

    assert kit.sh("wc -c < /etc/passwd", mask).out.strip() == "0"


@MASK
def test_masked_path_missing_is_ignored(kit):
    def mask(cfg):
        cfg["linux"]["maskedPaths"].append("/no/such/path")

    kit.sh("true", mask).expect_ok()


@MASK
def test_readonly_proc_sys(kit):
    res = kit.sh("echo 1 > /proc/sys/kernel/ns_last_pid 2>&1; echo rc=$?")
    assert "rc=0" not in res.out


@MASK
def test_readonly_sysrq_trigger(kit):
    res = kit.sh("echo h > /proc/sysrq-trigger 2>&1; echo rc=$?")
    assert "rc=0" not in res.out


@MASK
def test_readonly_path_shows_ro_mount(kit):
    out = kit.sh("cat /proc/self/mountinfo").out
    line = [ln.split() for ln in out.splitlines() if ln.split()[4] == "/proc/sys"]
    assert line and "ro" in line[-1][5].split(",")


@MASK
def test_configured_readonly_path(kit):
    def ro(cfg):
        cfg["linux"]["readonlyPaths"].append("/etc")

    res = kit.sh("touch /etc/x 2>&1; echo rc=$?; cat /etc/hostname", ro)
    assert "rc=0" not in res.out and "rootfs" in res.out


@MASK
def test_readonly_path_missing_is_ignored(kit):
    def ro(cfg):
        cfg["linux"]["readonlyPaths"].append("/no/such/path")

    kit.sh("true", ro).expect_ok()

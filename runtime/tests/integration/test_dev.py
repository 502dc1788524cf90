"""/dev: runc's default devices and symlinks, linux.devices, maskedPaths, readonlyPaths."""

from __future__ import annotations

import os

import pytest

pytestmark = pytest.mark.root

DEFAULTS = {
    "null": (1, 3),
    "zero": (1, 5),
    "full": (1, 7),
    "random": (1, 8),
    "urandom": (1, 9),
    "tty": (5, 0),
}


def stat_lines(out: str) -> dict[str, list[str]]:
    rows = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0].startswith("/dev/"):
            rows[parts[0]] = parts[1:]
    return rows


def test_default_devices(runtime, bundle):
    names = " ".join(f"/dev/{n}" for n in DEFAULTS)
    b = bundle("sh", "-c", f"stat -c '%n %F %t %T %a %u %g' {names}")
    rows = stat_lines(runtime.run(b).ok().out)
    for name, (major, minor) in DEFAULTS.items():
        kind, *rest = rows[f"/dev/{name}"][:-5], *rows[f"/dev/{name}"][-5:]
        t, tt, mode, uid, gid = rest
        assert " ".join(kind) == "character special file", name
        assert (int(t, 16), int(tt, 16)) == (major, minor), name
        assert mode == "666" and uid == "0" and gid == "0", name


def test_default_devices_work(runtime, bundle):
    b = bundle(
        "sh",
        "-c",
        "echo x > /dev/null && echo null-ok; head -c 4 /dev/zero | od -An -tx1; "
        "head -c 8 /dev/urandom | wc -c; echo y > /dev/full 2>&1 || echo full-enospc",
    )
    out = runtime.run(b).ok().out
    assert "null-ok" in out and "00 00 00 00" in out and "8" in out.split() and "full-enospc" in out


def test_dev_symlinks(runtime, bundle):
    b = bundle("sh", "-c", "for l in fd stdin stdout stderr ptmx; do echo /dev/$l $(readlink /dev/$l); done")
    rows = stat_lines(runtime.run(b).ok().out)
    assert rows["/dev/fd"] == ["/proc/self/fd"]
    assert rows["/dev/stdin"] == ["/proc/self/fd/0"]
    assert rows["/dev/stdout"] == ["/proc/self/fd/1"]
    assert rows["/dev/stderr"] == ["/proc/self/fd/2"]
    assert rows["/dev/ptmx"] == ["pts/ptmx"]


def test_no_console_without_a_terminal(runtime, bundle):
    out = runtime.run(bundle("sh", "-c", "ls /dev")).ok().out.split()
    assert "console" not in out
    assert {"null", "zero", "full", "random", "urandom", "tty", "ptmx", "fd", "pts", "shm", "mqueue"} <= set(
        out
    )


def test_no_host_devices_leak(runtime, bundle):
    out = runtime.run(bundle("ls", "/dev")).ok().out.split()
    for host_only in ("sda", "vda", "kmsg", "mem", "kvm", "loop0"):
        assert host_only not in out


def test_linux_devices(runtime, bundle):
    b = bundle("sh", "-c", "stat -c '%n %F %t %T %a %u %g' /dev/fuse /dev/sub/myloop /dev/myfifo")
    b.config["linux"]["devices"] = [
        {
            "type": "c",
            "path": "/dev/fuse",
            "major": 10,
            "minor": 229,
            "fileMode": 0o600,
            "uid": 1000,
            "gid": 1000,
        },
        {
            "type": "b",
            "path": "/dev/sub/myloop",
            "major": 7,
            "minor": 200,
            "fileMode": 0o640,
            "uid": 0,
            "gid": 6,
        },
        {"type": "p", "path": "/dev/myfifo", "fileMode": 0o644},
    ]
    b.save()
    out = runtime.run(b).ok().out
    lines = {line.split()[0]: line for line in out.splitlines()}
    assert lines["/dev/fuse"].endswith("character special file a e5 600 1000 1000")
    assert lines["/dev/sub/myloop"].endswith("block special file 7 c8 640 0 6")
    assert "fifo" in lines["/dev/myfifo"] and lines["/dev/myfifo"].split()[-3:] == ["644", "0", "0"]


def test_linux_devices_override_a_default(runtime, bundle):
    b = bundle("stat", "-c", "%a %u", "/dev/null")
    b.config["linux"]["devices"] = [
        {"type": "c", "path": "/dev/null", "major": 1, "minor": 3, "fileMode": 0o600, "uid": 1000}
    ]
    b.save()
    assert runtime.run(b).ok().out.split() == ["600", "1000"]


def test_device_outside_dev_is_refused(runtime, bundle):
    b = bundle("true")
    b.config["linux"]["devices"] = [{"type": "c", "path": "/etc/evil", "major": 1, "minor": 3}]
    b.save()
    res = runtime.run(b)
    assert res.rc == 1 and "/etc/evil" in res.err
    assert not os.path.exists(os.path.join(b.rootfs, "etc", "evil"))


def test_masked_paths(runtime, bundle):
    b = bundle(
        "sh",
        "-c",
        "echo kcore=$(wc -c < /proc/kcore); echo keys=$(cat /proc/keys | wc -c); "
        "echo dir=$(ls -A /etc/secretdir | wc -l); echo file=$(cat /etc/secretfile | wc -c); "
        "echo hack > /etc/secretfile; cat /proc/self/mountinfo",
    )
    os.mkdir(os.path.join(b.rootfs, "etc", "secretdir"))
    with open(os.path.join(b.rootfs, "etc", "secretdir", "s"), "w") as f:
        f.write("secret\n")
    with open(os.path.join(b.rootfs, "etc", "secretfile"), "w") as f:
        f.write("secret\n")
    b.config["root"]["readonly"] = False
    b.config["linux"]["maskedPaths"] += ["/etc/secretdir", "/etc/secretfile", "/does/not/exist"]
    b.save()
    out = runtime.run(b).ok().out
    expected = ["kcore=0" if os.path.exists("/proc/kcore") else "kcore=", "keys=0", "dir=0", "file=0"]
    assert out.splitlines()[:4] == expected, out
    from _support.mounts import mountinfo_entries

    by_point = {e["point"]: e for e in mountinfo_entries(out)}
    assert by_point["/etc/secretdir"]["fstype"] == "tmpfs" and "ro" in by_point["/etc/secretdir"]["options"]
    assert by_point["/etc/secretfile"]["root"] == "/null" and by_point["/proc/keys"]["root"] == "/null"
    assert "/does/not/exist" not in by_point
    if os.path.isdir("/sys/firmware"):
        assert by_point["/sys/firmware"]["fstype"] == "tmpfs"
    with open(os.path.join(b.rootfs, "etc", "secretfile")) as f:
        assert f.read() == "secret\n"  # /dev/null took the write, not the file


def test_readonly_paths(runtime, bundle):
    b = bundle(
        "sh",
        "-c",
        "echo 1 > /proc/sys/kernel/domainname 2>&1; echo rc=$?; "
        "touch /data/x 2>&1; echo rc=$?; cat /proc/self/mountinfo",
    )
    os.mkdir(os.path.join(b.rootfs, "data"))
    b.config["root"]["readonly"] = False
    b.config["linux"]["readonlyPaths"] += ["/data", "/no/such/path"]
    b.save()
    out = runtime.run(b).ok().out
    assert out.count("rc=1") == 2, out
    assert "Read-only file system" in out
    from _support.mounts import mountinfo_entries

    by_point = {e["point"]: e for e in mountinfo_entries(out)}
    for p in ("/proc/sys", "/proc/bus", "/proc/irq", "/data"):
        assert "ro" in by_point[p]["options"], p


def test_masked_and_readonly_paths_empty(runtime, bundle):
    b = bundle("cat", "/proc/self/mountinfo")
    b.config["linux"]["maskedPaths"] = []
    b.config["linux"]["readonlyPaths"] = []
    b.save()
    from _support.mounts import mountinfo_entries

    points = {e["point"] for e in mountinfo_entries(runtime.run(b).ok().out)}
    assert not points & {"/proc/keys", "/proc/sys", "/proc/bus", "/sys/firmware", "/proc/acpi"}

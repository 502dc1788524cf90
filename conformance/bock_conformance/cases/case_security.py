"""Security regressions as cases: CVE-2019-5736 (runtime overwrite through /proc/self/exe), CVE-2024-21626
(leaked host fd/cwd), CVE-2021-30465-style symlink swaps in mount destinations, `..`/symlink rootfs escapes,
and masked paths reached through another name.

None of these cases writes a byte to a host binary: the overwrite case only *opens* for writing (O_APPEND,
nothing written), which is exactly the step the CVE needs and the step a runtime must make impossible.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.section("security")

MARKER = "host-marker-7f3a"


def host_marker(kit):
    path = kit.path("marker")
    path.write_text(MARKER + "\n")
    return path


def up(path) -> str:
    """A relative path from any cwd to the host *path* (enough ``..`` to reach /)."""
    return "../" * 24 + str(path).lstrip("/")


def sha256(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


OVERWRITE_SCRIPT = r"""
end=$(( $(date +%s) + 6 ))
while [ $(date +%s) -lt $end ]; do
  for p in /proc/[0-9]*; do
    [ "$p" = "/proc/$$" ] && continue
    t=$(readlink $p/exe 2>/dev/null) || continue
    case "$t" in /bin/busybox) continue;; esac
    exec 7<$p/exe 2>/dev/null || continue
    echo "OPENED $t"
    sleep 0.3
    if timeout 2 sh -c ': 2>/dev/null >>/proc/self/fd/7'; then echo "WROTE $t"; fi
    exec 7<&-
  done
done
echo finished
"""


def test_cve_2019_5736_runtime_not_writable_through_proc_exe(kit):
    before = sha256(kit.runtime)
    cfg = kit.config(OVERWRITE_SCRIPT)
    cfg["process"]["capabilities"] = {
        s: ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_DAC_OVERRIDE", "CAP_SYS_PTRACE"]
        for s in ("bounding", "effective", "permitted")
    }
    ctr = kit.create(cfg)
    ctr.start().expect_ok()
    deadline = time.monotonic() + 6
    while time.monotonic() < deadline:
        kit.cli("exec", ctr.id, "sleep", "0.2", record=False, timeout=20)
    out = ctr.wait_output("finished", timeout=20)
    assert "finished" in out, out
    wrote = [line for line in out.splitlines() if line.startswith("WROTE")]
    assert not wrote, f"a container process got a writable handle on a host executable: {wrote}"
    assert sha256(kit.runtime) == before


def test_cve_2019_5736_proc_self_exe_entrypoint(kit):
    before = sha256(kit.runtime)
    res = kit.run(kit.config(args=["/proc/self/exe", "--version"]))
    kit.observe("rc-only", res.rc)
    assert sha256(kit.runtime) == before and MARKER not in res.out


def test_cve_2024_21626_process_cwd_leaked_fd(kit):
    marker = host_marker(kit)
    for fd in range(3, 10):
        cfg = kit.config(f"cat {up(marker)} 2>/dev/null; echo done")
        cfg["process"]["cwd"] = f"/proc/self/fd/{fd}"
        res = kit.run(cfg)
        assert MARKER not in res.out, f"cwd /proc/self/fd/{fd} reached the host: {res}"


def test_cve_2024_21626_exec_cwd_leaked_fd(kit):
    marker = host_marker(kit)
    ctr = kit.started("sleep 300")
    for fd in range(3, 10):
        res = kit.cli(
            "exec", "--cwd", f"/proc/self/fd/{fd}", ctr.id, "sh", "-c", f"cat {up(marker)} 2>/dev/null"
        )
        assert MARKER not in res.out, f"exec --cwd /proc/self/fd/{fd} reached the host: {res}"


def test_container_init_has_only_stdio_fds(kit):
    ctr = kit.started("sleep 300")
    res = ctr.exec(["ls", "/proc/1/fd"])
    assert sorted(int(x) for x in res.out.split()) == [0, 1, 2], res


def test_process_cwd_symlink_escape(kit):
    marker = host_marker(kit)
    cfg = kit.config("cat marker 2>/dev/null; pwd")
    cfg["process"]["cwd"] = "/escape"
    bdir = kit.bundle(None)
    os.symlink("../" * 12 + str(kit.dir).lstrip("/"), bdir / "rootfs" / "escape")
    res = kit.run(cfg, bundle=bdir)
    assert MARKER not in res.out, res
    assert marker.read_text() == MARKER + "\n"


def victim(kit, name="victim"):
    d = kit.path(name)
    d.mkdir()
    (d / "keep").write_text("keep\n")
    return d


def assert_untouched(d):
    assert sorted(os.listdir(d)) == ["keep"], f"host directory {d} was written: {os.listdir(d)}"
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        assert line.split()[4] != str(d), f"host directory {d} got a mount"


def test_mount_destination_absolute_symlink_stays_in_rootfs(kit):
    v = victim(kit)
    cfg = kit.config("echo pwned > /mnt/vol/pwned; echo ok")
    cfg["mounts"].append({"destination": "/mnt/vol", "type": "tmpfs", "source": "tmpfs"})
    bdir = kit.bundle(None)
    os.symlink(str(v), bdir / "rootfs" / "mnt" / "vol")
    kit.run(cfg, bundle=bdir)
    assert_untouched(v)


def test_mount_destination_relative_symlink_escape(kit):
    v = victim(kit)
    cfg = kit.config("echo pwned > /mnt/vol/pwned; echo ok")
    cfg["mounts"].append(
        {"destination": "/mnt/vol", "type": "bind", "source": str(victim(kit, "src")), "options": ["rbind"]}
    )
    bdir = kit.bundle(None)
    os.symlink("../" * 12 + str(v).lstrip("/"), bdir / "rootfs" / "mnt" / "vol")
    kit.run(cfg, bundle=bdir)
    assert_untouched(v)


def test_mount_destination_dotdot_escape(kit):
    v = victim(kit)
    cfg = kit.config("echo ok")
    cfg["mounts"].append(
        {"destination": "/" + "../" * 12 + str(v).lstrip("/"), "type": "tmpfs", "source": "tmpfs"}
    )
    res = kit.run(cfg)
    assert_untouched(v)
    kit.observe("rc-only", res.rc)


def test_cve_2021_30465_symlink_swap_race(kit):
    v = victim(kit)
    cfg = kit.config("echo pwned > /mnt/vol/pwned 2>/dev/null; true")
    cfg["mounts"].append({"destination": "/mnt/vol", "type": "tmpfs", "source": "tmpfs"})
    bdir = kit.bundle(None)
    vol = bdir / "rootfs" / "mnt" / "vol"
    stop = threading.Event()

    def swapper():
        tmp_link = bdir / "rootfs" / "mnt" / "link.tmp"
        tmp_dir = bdir / "rootfs" / "mnt" / "dir.tmp"
        while not stop.is_set():
            try:
                if tmp_link.is_symlink():
                    os.unlink(tmp_link)
                os.symlink("../" * 12 + str(v).lstrip("/"), tmp_link)
                os.replace(tmp_link, vol) if not vol.is_dir() or vol.is_symlink() else None
                if vol.is_symlink():
                    os.makedirs(tmp_dir, exist_ok=True)
                    os.unlink(vol)
                    os.rename(tmp_dir, vol)
                else:
                    if not os.listdir(vol):
                        os.rmdir(vol)
                    os.symlink("../" * 12 + str(v).lstrip("/"), vol)
            except OSError:
                pass

    thread = threading.Thread(target=swapper, daemon=True)
    thread.start()
    try:
        for _ in range(15):  # racy by design: single runs may fail, so only the host side is observed
            kit.run(cfg, bundle=bdir, timeout=30, record=False)
    finally:
        stop.set()
        thread.join(timeout=5)
    kit.observe("victim", sorted(os.listdir(v)))
    assert_untouched(v)


@pytest.mark.parametrize(
    "path", ["/proc/1/root/proc/keys", "/proc/self/root/proc/keys", "/proc/../proc/./keys"]
)
def test_masked_path_via_other_name(kit, path):
    if not os.path.exists("/proc/keys") or (
        os.path.getsize("/proc/keys") == 0 and not Path("/proc/keys").read_text()
    ):
        kit.skip_host("/proc/keys is missing or empty on this host")
    res = kit.sh(f"wc -c < {path}")
    assert res.out.strip() == "0", res


def test_masked_path_not_revealed_by_fresh_proc_mount(kit):
    res = kit.sh(
        "mkdir -p /mnt/p; mount -t proc proc /mnt/p 2>/dev/null && wc -c < /mnt/p/keys || echo refused"
    )
    assert res.out.strip() in ("refused", "0"), res


def test_runtime_state_dir_not_visible(kit):
    ctr = kit.started("sleep 300")
    res = ctr.exec(["sh", "-c", f"ls {kit.root} 2>/dev/null | wc -l"])
    assert res.out.strip() == "0"

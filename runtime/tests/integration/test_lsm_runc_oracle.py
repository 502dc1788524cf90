"""runc 1.1 as the oracle: bock's LSM and sysctl errors on this host must say what runc says.

Each case runs ``runc run`` on a busybox bundle and compares runc's error text (after
its "error during container init: " or "runc run failed: " prefix) with the error bock
raises for the same config.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid

import pytest
from bock._security import lsm
from bock._security import sysctl as S
from bock._spec.config import Linux, Process
from bock.errors import BockError

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(
        shutil.which("runc") is None or not os.path.exists("/bin/busybox"), reason="needs runc, busybox"
    ),
]


@pytest.fixture
def bundle(tmp_path):
    rootfs = tmp_path / "rootfs"
    (rootfs / "bin").mkdir(parents=True)
    for d in ("proc", "sys", "dev", "tmp", "etc"):
        (rootfs / d).mkdir()
    shutil.copy("/bin/busybox", rootfs / "bin" / "busybox")
    for applet in ("sh", "true", "cat"):
        os.symlink("busybox", rootfs / "bin" / applet)
    subprocess.run(["runc", "spec"], cwd=tmp_path, check=True)
    base = json.loads((tmp_path / "config.json").read_text())
    base["process"]["terminal"] = False
    base["process"]["args"] = ["true"]
    return tmp_path, base


def runc_error(bundle, edit) -> str:
    path, base = bundle
    config = json.loads(json.dumps(base))
    edit(config)
    (path / "config.json").write_text(json.dumps(config))
    cid = "t-" + uuid.uuid4().hex[:12]
    root = path / "runc-root"
    try:
        out = subprocess.run(
            ["runc", "--root", str(root), "run", cid], cwd=path, capture_output=True, text=True, timeout=30
        )
    finally:
        subprocess.run(["runc", "--root", str(root), "delete", "-f", cid], capture_output=True)
    if out.returncode == 0:
        return ""
    msg = out.stderr  # logrus: msg="..." with inner quotes escaped
    for prefix in ("error during container init: ", "runc run failed: "):
        if prefix in msg:
            msg = msg.split(prefix, 1)[1]
            break
    return msg.rsplit('"', 1)[0].encode().decode("unicode_escape")


@pytest.mark.skipif(lsm.apparmor_enabled(), reason="this host has AppArmor")
def test_apparmor_profile_on_a_host_without_apparmor(bundle):
    expected = runc_error(bundle, lambda c: c["process"].__setitem__("apparmorProfile", "bock-test"))
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # as the container init does: in the child, never in the runtime
        try:
            os.close(r)
            try:
                lsm.apply_apparmor("bock-test")
                os.write(w, b"")
            except BockError as exc:
                os.write(w, str(exc).encode())
        finally:
            os._exit(0)
    os.close(w)
    ours = os.read(r, 4096).decode()
    os.close(r)
    os.waitpid(pid, 0)
    assert expected and ours == expected


@pytest.mark.skipif(lsm.selinux_enabled(), reason="this host has SELinux")
def test_selinux_label_on_a_host_without_selinux(bundle):
    label = "system_u:system_r:container_t:s0"
    expected = runc_error(bundle, lambda c: c["process"].__setitem__("selinuxLabel", label))
    with pytest.raises(BockError) as err:
        lsm.validate(Process.from_json({"selinuxLabel": label}))
    assert expected and str(err.value) == expected


SYSCTL_CASES = [
    ({"kernel.pid_max": "1000"}, ["pid", "ipc", "uts", "mount", "network"]),
    ({"kernel.shmmax": "1000"}, ["pid", "uts", "mount", "network"]),
    ({"net.ipv4.ip_forward": "1"}, ["pid", "ipc", "uts", "mount"]),
    ({"kernel.hostname": "x"}, ["pid", "ipc", "uts", "mount", "network"]),
    ({"vm/swappiness": "10"}, ["pid", "ipc", "uts", "mount", "network"]),
    ({"fs.mqueue.msg_max": "10"}, ["pid", "uts", "mount"]),
    ({"kernel.shmmax": "100000", "net.ipv4.ip_forward": "1"}, ["pid", "ipc", "uts", "mount", "network"]),
]


@pytest.mark.parametrize(("sysctl", "namespaces"), SYSCTL_CASES)
def test_sysctl_verdicts_match_runc(bundle, sysctl, namespaces):
    def edit(c):
        c["linux"]["sysctl"] = sysctl
        c["linux"]["namespaces"] = [{"type": t} for t in namespaces]

    expected = runc_error(bundle, edit)
    linux = Linux.from_json({"namespaces": [{"type": t} for t in namespaces], "sysctl": sysctl})
    try:
        S.validate(linux.sysctl, linux)
        ours = ""
    except BockError as exc:
        ours = str(exc)
    assert ours == expected

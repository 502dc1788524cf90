"""Unit tests of bock._security.lsm: runc's behaviour when the host lacks AppArmor/SELinux."""

from __future__ import annotations

import os

import pytest
from bock._security import lsm
from bock._spec.config import Process
from bock.errors import ConfigError, SystemError_

NO_LSM = not os.path.exists("/sys/kernel/security/apparmor") and not os.path.exists("/sys/fs/selinux")


def test_format_mount_label_is_go_selinux_formatting():
    assert lsm.format_mount_label("", None) == ""
    assert lsm.format_mount_label("mode=755", "") == "mode=755"
    assert lsm.format_mount_label("", "system_u:object_r:container_file_t:s0") == (
        'context="system_u:object_r:container_file_t:s0"'
    )
    assert lsm.format_mount_label("mode=755,size=65536k", "a:b:c:s0", "fscontext") == (
        'mode=755,size=65536k,fscontext="a:b:c:s0"'
    )


def test_empty_profile_and_label_are_no_ops():
    lsm.apply_apparmor(None)
    lsm.apply_apparmor("")
    lsm.apply_selinux_label("")
    lsm.validate(Process.from_json({"selinuxLabel": ""}))
    lsm.validate(None)


@pytest.mark.skipif(not NO_LSM, reason="this host has an LSM")
def test_detection_on_this_host():
    assert lsm.apparmor_enabled() is False
    assert lsm.selinux_enabled() is False


@pytest.mark.skipif(not NO_LSM, reason="this host has SELinux")
def test_selinux_label_without_selinux_is_refused_like_runc():
    with pytest.raises(ConfigError) as err:
        lsm.validate(Process.from_json({"selinuxLabel": "system_u:system_r:container_t:s0"}))
    assert str(err.value) == "selinux label is specified in config, but selinux is disabled or not supported"


@pytest.mark.skipif(not NO_LSM, reason="this host has AppArmor")
def test_apparmor_profile_without_apparmor_fails_like_runc():
    # runc 1.1.5 on this host: "unable to apply apparmor profile: apparmor failed to apply profile:
    # write /proc/self/attr/exec: invalid argument" -- measured, see lsm.py
    with pytest.raises(SystemError_) as err:
        lsm.apply_apparmor("bock-test-profile")
    assert str(err.value) == (
        "unable to apply apparmor profile: apparmor failed to apply profile: "
        "write /proc/self/attr/exec: invalid argument"
    )

"""Capability names, masks and the parsing of process.capabilities (no process state touched)."""

from __future__ import annotations

import pytest
from bock._security import caps as capmod
from bock._security.caps import CAP_NAMES, CAP_NUMBERS, CapSets, mask_to_names, names_to_mask
from bock._spec.config import Capabilities, Process
from bock.errors import ConfigError


def test_names_match_linux_header():
    # Spot checks against linux/capability.h, plus the full range 0..40.
    assert len(CAP_NAMES) == 41
    assert CAP_NUMBERS["CAP_CHOWN"] == 0
    assert CAP_NUMBERS["CAP_SETPCAP"] == 8
    assert CAP_NUMBERS["CAP_SYS_ADMIN"] == 21
    assert CAP_NUMBERS["CAP_SYS_RESOURCE"] == 24
    assert CAP_NUMBERS["CAP_SETFCAP"] == 31
    assert CAP_NUMBERS["CAP_AUDIT_READ"] == 37
    assert CAP_NUMBERS["CAP_BPF"] == 39
    assert CAP_NUMBERS["CAP_CHECKPOINT_RESTORE"] == 40


def test_names_match_installed_header():
    header = "/usr/include/linux/capability.h"
    try:
        with open(header) as f:
            text = f.read()
    except OSError:
        pytest.skip("linux/capability.h not installed")
    found = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == "#define" and parts[1].startswith("CAP_") and parts[2].isdigit():
            found[parts[1]] = int(parts[2])
    for name, num in found.items():
        if num <= 40:
            assert CAP_NUMBERS[name] == num, name


def test_mask_roundtrip_and_ignored():
    ignored: list[str] = []
    mask = names_to_mask(["CAP_KILL", "CAP_BPF", "CAP_NOPE", "CAP_KILL"], 40, ignored)
    assert mask == (1 << 5) | (1 << 39)
    assert ignored == ["CAP_NOPE"]
    assert mask_to_names(mask) == ["CAP_KILL", "CAP_BPF"]


def test_unavailable_above_kernel_last_cap_is_ignored():
    # A kernel older than 5.9 has cap_last_cap 37: CAP_PERFMON/BPF/CHECKPOINT_RESTORE are unavailable.
    ignored: list[str] = []
    assert names_to_mask(["CAP_BPF", "CAP_AUDIT_READ"], 37, ignored) == 1 << 37
    assert ignored == ["CAP_BPF"]


def podman_caps() -> Capabilities:
    names = ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_SETUID", "CAP_SETGID"]
    return Capabilities.from_json({"bounding": names, "effective": names, "permitted": names})


def test_from_spec_masks():
    sets = CapSets.from_spec(podman_caps(), last=40)
    expect = (1 << 0) | (1 << 5) | (1 << 10) | (1 << 7) | (1 << 6)
    assert sets.configured
    assert sets.bounding == sets.effective == sets.permitted == expect
    assert sets.inheritable == sets.ambient == 0
    assert sets.warning() is None


def test_from_spec_none_leaves_caps_alone():
    sets = CapSets.from_spec(None, last=40)
    assert not sets.configured


def test_from_spec_through_process_model():
    proc = Process.from_json({"capabilities": {"bounding": ["CAP_KILL"], "ambient": ["CAP_KILL"]}})
    sets = CapSets.from_spec(proc.capabilities, last=40)
    assert sets.bounding == sets.ambient == 1 << 5


def test_unknown_and_unavailable_warn_like_runc():
    spec = Capabilities.from_json(
        {"bounding": ["CAP_KILL", "CAP_WAKE_UP", "CAP_BPF"], "permitted": ["CAP_ZZZ", "CAP_WAKE_UP"]}
    )
    sets = CapSets.from_spec(spec, last=38)
    assert sets.bounding == 1 << 5
    assert sets.ignored == ("CAP_BPF", "CAP_WAKE_UP", "CAP_ZZZ")
    # runc: logrus.Warn("ignoring unknown or unavailable capabilities: ", []string{...})
    assert sets.warning() == "ignoring unknown or unavailable capabilities: [CAP_BPF CAP_WAKE_UP CAP_ZZZ]"


def test_effective_not_in_permitted_is_a_config_error():
    spec = Capabilities.from_json({"effective": ["CAP_KILL", "CAP_CHOWN"], "permitted": ["CAP_CHOWN"]})
    with pytest.raises(ConfigError, match="CAP_KILL not in permitted"):
        CapSets.from_spec(spec, last=40)


def test_last_cap_reads_the_kernel():
    with open("/proc/sys/kernel/cap_last_cap") as f:
        assert capmod.last_cap() == min(int(f.read()), 40)


def test_features_lists_all_known():
    assert capmod.features()[0] == "CAP_CHOWN"
    assert capmod.features()[-1] == "CAP_CHECKPOINT_RESTORE"

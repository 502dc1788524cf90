"""Unit tests of bock._security.process_attrs: validation (runc's wording), CPU lists, sched_attr."""

from __future__ import annotations

import ctypes

import pytest
from bock._security import process_attrs as P
from bock._spec.config import Linux, Process
from bock.errors import ConfigError


def proc(**kw) -> Process:
    return Process.from_json({"args": ["true"], **kw})


@pytest.mark.parametrize(
    ("process", "message"),
    [
        ({"rlimits": [{"type": "RLIMIT_FOO", "soft": 1, "hard": 1}]}, "wrong rlimit value: RLIMIT_FOO"),
        (
            {"rlimits": [{"type": "RLIMIT_NOFILE", "soft": 10, "hard": 5}]},
            "invalid rlimit RLIMIT_NOFILE: soft limit 10 exceeds hard limit 5",
        ),
        ({"oomScoreAdj": 1001}, "invalid oomScoreAdj 1001: must be in [-1000, 1000]"),
        ({"scheduler": {"policy": "SCHED_FOO"}}, "invalid scheduler policy: SCHED_FOO"),
        ({"scheduler": {"policy": ""}}, "scheduler policy is required"),
        (
            {"scheduler": {"policy": "SCHED_OTHER", "nice": 20}},
            "invalid scheduler.nice: 20 when scheduler.policy is SCHED_OTHER",
        ),
        (
            {"scheduler": {"policy": "SCHED_BATCH", "priority": 3}},
            "scheduler.priority can only be specified for SchedFIFO or SchedRR policy",
        ),
        (
            {"scheduler": {"policy": "SCHED_RR", "priority": 3, "runtime": 5}},
            "scheduler runtime/deadline/period can only be specified for SchedDeadline policy",
        ),
        (
            {"scheduler": {"policy": "SCHED_OTHER", "flags": ["SCHED_FLAG_NOPE"]}},
            "invalid scheduler flag: SCHED_FLAG_NOPE",
        ),
        (
            {"ioPriority": {"class": "IOPRIO_CLASS_XX", "priority": 1}},
            'invalid ioPriority.Class: "IOPRIO_CLASS_XX"',
        ),
        ({"ioPriority": {"class": "IOPRIO_CLASS_BE", "priority": 8}}, "invalid ioPriority.Priority: 8"),
        ({"execCPUAffinity": {"initial": "3-1"}}, "bad CPUAffinity.Initial: invalid range: 3-1"),
        ({"execCPUAffinity": {"final": "0,x"}}, "bad CPUAffinity.Final: invalid CPU number 'x'"),
        ({"execCPUAffinity": {"final": ","}}, "bad CPUAffinity.Final: no members found in set ','"),
    ],
)
def test_validate_refuses(process, message):
    with pytest.raises(ConfigError) as err:
        P.validate(proc(**process), Linux())
    assert str(err.value) == message


def test_validate_personality():
    with pytest.raises(ConfigError, match=r"^invalid personality domain LINUX64$"):
        P.validate(None, Linux.from_json({"personality": {"domain": "LINUX64"}}))
    warnings = P.validate(
        None, Linux.from_json({"personality": {"domain": "LINUX32", "flags": ["ADDR_NO_RANDOMIZE"]}})
    )
    assert warnings == [
        "ignoring unsupported personality flags: ['ADDR_NO_RANDOMIZE'] (runtime-spec defines none)"
    ]
    assert P.validate(None, Linux.from_json({"personality": {"domain": "LINUX"}})) == []


def test_validate_accepts_a_full_good_process():
    p = proc(
        rlimits=[
            {"type": "RLIMIT_NOFILE", "soft": 1024, "hard": 1024},
            {"type": "RLIMIT_CORE", "soft": 0, "hard": 0},
        ],
        oomScoreAdj=-1000,
        scheduler={"policy": "SCHED_DEADLINE", "runtime": 1000000, "deadline": 2000000, "period": 2000000},
        ioPriority={"class": "IOPRIO_CLASS_IDLE", "priority": 7},
        execCPUAffinity={"initial": " 0 , 1-1 ,", "final": "0"},
    )
    assert P.validate(p, Linux()) == []


@pytest.mark.parametrize(
    ("text", "cpus"),
    [("0", {0}), ("0-3,7", {0, 1, 2, 3, 7}), (" 1 ,, 2-2 ", {1, 2}), ("5,1-2", {1, 2, 5})],
)
def test_cpu_list_round_trip(text, cpus):
    assert P.parse_cpu_list(text) == cpus
    assert P.parse_cpu_list(P.format_cpu_list(cpus)) == cpus


def test_format_cpu_list():
    assert P.format_cpu_list({0, 1, 2, 7, 9, 10}) == "0-2,7,9-10"
    assert P.format_cpu_list([]) == ""


def test_cpu_list_limits():
    with pytest.raises(ValueError, match="values larger than 65536 are not supported"):
        P.parse_cpu_list("0-70000")
    with pytest.raises(ValueError, match="invalid CPU number ''"):
        P.parse_cpu_list("-1")


def test_sched_attr_layout():
    assert ctypes.sizeof(P.SchedAttr) == 56  # SCHED_ATTR_SIZE_VER1
    s = proc(
        scheduler={
            "policy": "SCHED_RR",
            "priority": 20,
            "flags": ["SCHED_FLAG_RESET_ON_FORK", "SCHED_FLAG_KEEP_PARAMS"],
        }
    )
    attr = P.sched_attr(s.scheduler)
    assert (attr.size, attr.sched_policy, attr.sched_flags, attr.sched_priority) == (56, 2, 0x11, 20)
    raw = bytes(attr)
    assert raw[:4] == (56).to_bytes(4, "little") and raw[4:8] == (2).to_bytes(4, "little")


def test_ioprio_value():
    p = proc(ioPriority={"class": "IOPRIO_CLASS_RT", "priority": 3})
    assert P.ioprio_value(p.io_priority) == (1 << 13) | 3

"""The typed ``linux.resources`` model: every spec key in, the same JSON out."""

from __future__ import annotations

import json
import pathlib

import pytest
from bock._spec.resources import LinuxResources

FULL = {
    "devices": [
        {"allow": False, "access": "rwm"},
        {"allow": True, "type": "c", "major": 10, "minor": 229, "access": "rw"},
    ],
    "memory": {
        "limit": 536870912,
        "reservation": 536870912,
        "swap": 536870912,
        "kernel": -1,
        "kernelTCP": -1,
        "swappiness": 0,
        "disableOOMKiller": False,
        "useHierarchy": True,
        "checkBeforeUpdate": True,
    },
    "cpu": {
        "shares": 1024,
        "quota": 1000000,
        "burst": 1000000,
        "period": 500000,
        "realtimeRuntime": 950000,
        "realtimePeriod": 1000000,
        "cpus": "2-3",
        "mems": "0-7",
        "idle": 0,
    },
    "pids": {"limit": 32771},
    "blockIO": {
        "weight": 10,
        "leafWeight": 10,
        "weightDevice": [
            {"major": 8, "minor": 0, "weight": 500, "leafWeight": 300},
            {"major": 8, "minor": 16},
        ],
        "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 600}],
        "throttleWriteBpsDevice": [{"major": 8, "minor": 0, "rate": 700}],
        "throttleReadIOPSDevice": [{"major": 8, "minor": 0, "rate": 300}],
        "throttleWriteIOPSDevice": [{"major": 8, "minor": 16, "rate": 300}],
    },
    "hugepageLimits": [{"pageSize": "2MB", "limit": 9223372036854772000}],
    "network": {"classID": 1048577, "priorities": [{"name": "eth0", "priority": 500}]},
    "rdma": {"mlx5_1": {"hcaHandles": 3, "hcaObjects": 10000}, "mlx4_0": {"hcaObjects": 1000}},
    "unified": {"io.weight": "10", "memory.high": "max"},
}


def test_every_key_round_trips():
    r = LinuxResources.from_json(FULL)
    assert r.memory.disable_oom_killer is False
    assert r.memory.kernel_tcp == -1
    assert r.block_io.throttle_read_iops_device[0].rate == 300
    assert r.network.class_id == 1048577
    assert r.rdma["mlx4_0"].hca_handles is None
    assert r.hugepage_limits[0].page_size == "2MB"
    assert r.to_json() == FULL


def test_empty_and_missing():
    r = LinuxResources.from_json({})
    assert r.devices == [] and r.memory is None and r.unified == {}
    assert r.to_json() == {"devices": [], "hugepageLimits": [], "rdma": {}, "unified": {}}
    with pytest.raises(KeyError):
        LinuxResources.from_json({"pids": {}})
    with pytest.raises(KeyError):
        LinuxResources.from_json({"devices": [{"access": "rwm"}]})


def test_output_passes_the_upstream_schema():
    """The upstream schema (an oracle only) accepts what to_json() gives back."""
    jsonschema = pytest.importorskip("jsonschema")
    referencing = pytest.importorskip("referencing")
    from referencing.jsonschema import DRAFT4

    base = pathlib.Path("/work/shared/oci-spec/runtime-spec-schema")
    if not base.is_dir():
        pytest.skip("no upstream schema here")
    docs = {name: json.loads((base / name).read_text()) for name in ("defs.json", "defs-linux.json")}
    registry = referencing.Registry().with_resources(
        (name, DRAFT4.create_resource(doc)) for name, doc in docs.items()
    )
    schema = json.loads((base / "config-linux.json").read_text())["linux"]["properties"]["resources"]
    validator = jsonschema.Draft4Validator(schema, registry=registry)
    validator.validate(LinuxResources.from_json(FULL).to_json())
    bad = LinuxResources.from_json({**FULL, "pids": {"limit": "many"}}).to_json()
    assert not validator.is_valid(bad)

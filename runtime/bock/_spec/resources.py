"""``linux.resources`` as typed objects (runtime-spec config-linux.md, "Control groups").

Attribute names are the spec keys in snake_case; keys whose camelCase is not the
plain one (``blockIO``, ``disableOOMKiller``, ``classID``, ``throttleReadIOPSDevice``
...) are given explicitly. Values are kept as the spec gives them (``None`` = unset):
the cgroup drivers in :mod:`bock._cgroups` decide what each one means on each layout.
"""

from __future__ import annotations

from bock._spec.struct import Struct, field, struct_list


class DeviceRule(Struct):
    """One ``linux.resources.devices`` entry; ``type`` "a" (or unset) means all devices."""

    allow: bool = field(required=True)
    type: str | None = None
    major: int | None = None
    minor: int | None = None
    access: str | None = None


class Memory(Struct):
    limit: int | None = None
    reservation: int | None = None
    swap: int | None = None
    kernel: int | None = None
    kernel_tcp: int | None = field(key="kernelTCP")
    swappiness: int | None = None
    disable_oom_killer: bool | None = field(key="disableOOMKiller")
    use_hierarchy: bool | None = None
    check_before_update: bool | None = None


class CPU(Struct):
    shares: int | None = None
    quota: int | None = None
    burst: int | None = None
    period: int | None = None
    realtime_runtime: int | None = None
    realtime_period: int | None = None
    cpus: str | None = None
    mems: str | None = None
    idle: int | None = None


class Pids(Struct):
    limit: int = field(required=True)


class WeightDevice(Struct):
    major: int = field(required=True)
    minor: int = field(required=True)
    weight: int | None = None
    leaf_weight: int | None = None


class ThrottleDevice(Struct):
    major: int = field(required=True)
    minor: int = field(required=True)
    rate: int = field(required=True)


_throttle = struct_list(ThrottleDevice)


class BlockIO(Struct):
    weight: int | None = None
    leaf_weight: int | None = None
    weight_device: list[WeightDevice] = field(conv=struct_list(WeightDevice), factory=list)
    throttle_read_bps_device: list[ThrottleDevice] = field(conv=_throttle, factory=list)
    throttle_write_bps_device: list[ThrottleDevice] = field(conv=_throttle, factory=list)
    throttle_read_iops_device: list[ThrottleDevice] = field(
        key="throttleReadIOPSDevice", conv=_throttle, factory=list
    )
    throttle_write_iops_device: list[ThrottleDevice] = field(
        key="throttleWriteIOPSDevice", conv=_throttle, factory=list
    )

    def is_set(self) -> bool:
        return bool(
            self.weight
            or self.leaf_weight
            or self.weight_device
            or self.throttle_read_bps_device
            or self.throttle_write_bps_device
            or self.throttle_read_iops_device
            or self.throttle_write_iops_device
        )


class HugepageLimit(Struct):
    page_size: str = field(required=True)
    limit: int = field(required=True)


class InterfacePriority(Struct):
    name: str = field(required=True)
    priority: int = field(required=True)


class Network(Struct):
    class_id: int | None = field(key="classID")
    priorities: list[InterfacePriority] = field(conv=struct_list(InterfacePriority), factory=list)


class Rdma(Struct):
    hca_handles: int | None = None
    hca_objects: int | None = None


def _rdma(value: dict) -> dict[str, Rdma]:
    return {name: Rdma.from_json(limits) for name, limits in value.items()}


def _unified(value: dict) -> dict[str, str]:
    return dict(value)


class LinuxResources(Struct):
    devices: list[DeviceRule] = field(conv=struct_list(DeviceRule), factory=list)
    memory: Memory | None = field(conv=Memory.from_json)
    cpu: CPU | None = field(conv=CPU.from_json)
    pids: Pids | None = field(conv=Pids.from_json)
    block_io: BlockIO | None = field(key="blockIO", conv=BlockIO.from_json)
    hugepage_limits: list[HugepageLimit] = field(conv=struct_list(HugepageLimit), factory=list)
    network: Network | None = field(conv=Network.from_json)
    rdma: dict[str, Rdma] = field(conv=_rdma, factory=dict)
    unified: dict[str, str] = field(conv=_unified, factory=dict)


__all__ = [
    "CPU",
    "BlockIO",
    "DeviceRule",
    "HugepageLimit",
    "InterfacePriority",
    "LinuxResources",
    "Memory",
    "Network",
    "Pids",
    "Rdma",
    "ThrottleDevice",
    "WeightDevice",
]

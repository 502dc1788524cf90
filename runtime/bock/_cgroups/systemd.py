"""The systemd cgroup driver (``--systemd-cgroup``), as runc 1.1 does it.

- :meth:`create` checks the config, computes the unit's properties (errors come before any
  process exists) and connects to systemd;
- :meth:`apply` asks systemd for a transient scope ``<prefix>-<name>.scope`` in the slice
  (StartTransientUnit with the init's pid, ``Delegate=yes``, accounting and the resource
  properties systemd knows), waits for the job, joins the hierarchies systemd does not
  manage (cpuset, freezer ...), then writes every limit to the cgroup files as well, like
  runc's fs manager after systemd (limits systemd has no property for, exact values);
- :meth:`destroy` stops the unit (waiting for the job), then removes what is left;
- :meth:`set` (``bock update``) sets the unit's properties, then the files.

A failure anywhere in create/apply leaves no unit: the caller's cleanup calls :meth:`destroy`.
Only imported with ``--systemd-cgroup``.
"""

from __future__ import annotations

import os

from bock._cgroups import layout, systemd_props, v2
from bock._cgroups.errors import CgroupConfigError, CgroupError, SystemdNotRunning
from bock._cgroups.manager import CgroupManager

TYPE_CHECKING = False
if TYPE_CHECKING:
    from bock._spec.resources import LinuxResources


def systemd_running() -> bool:
    """sd_booted(): systemd is PID 1 of this mount namespace's world."""
    return os.path.isdir("/run/systemd/system")


def _join(*parts: str) -> str:
    return os.path.normpath("/".join(p for p in parts if p and p != "/"))


def _init_relative(init_cgroup: str, root: str) -> str:
    """runc's getSubsystemPath: systemd's own cgroup (PID 1's, ``init.scope`` dropped), from the mount."""
    init = os.path.normpath(init_cgroup or "/")
    if init.endswith("init.scope"):
        init = init[: -len("init.scope")].rstrip("/") or "/"
    if root != "/" and (init == root or init.startswith(root + "/")):
        init = init[len(root) :] or "/"
    return init


def unit_paths(
    lay: layout.Layout, init_cgroups: dict[str, str], cgroup: str
) -> tuple[dict[str, str], str | None]:
    """The unit's directory in every v1 hierarchy and in the cgroup2 one."""
    found = {}
    for name in layout.V1_SUBSYSTEMS:
        mount = lay.mounts.get(name)
        if mount is None:
            continue
        mountpoint, root = mount
        found[name] = _join(mountpoint, _init_relative(init_cgroups.get(name, "/"), root), cgroup)
    unified = None
    if lay.unified is not None:
        unified = _join(lay.unified, _init_relative(init_cgroups.get("", "/"), lay.unified_root), cgroup)
    return found, unified


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


class SystemdCgroupManager(CgroupManager):
    __slots__ = ("_bus", "_description", "_pending", "_version", "slice", "unit")

    def __init__(self, mode, paths_, unified, *, unit: str, slice_: str, **kw) -> None:
        super().__init__(mode, paths_, unified, **kw)
        self.unit = unit
        self.slice = slice_
        self._bus = None
        self._description = ""
        self._version = 0
        #: (resources, properties) between create() and apply()
        self._pending: tuple | None = None

    # --- construction --------------------------------------------------------------

    @classmethod
    def for_container(  # type: ignore[override]
        cls,
        cid: str,
        cgroups_path: str | None,
        *,
        systemd: bool = True,
        rootless: bool = False,
        layout_: layout.Layout | None = None,
        init_cgroup_text: str | None = None,
    ) -> SystemdCgroupManager:
        slice_, prefix, name = systemd_props.parse_cgroups_path(cid, cgroups_path)
        if not systemd_running():
            raise SystemdNotRunning()
        if rootless:
            raise CgroupError("the rootless systemd cgroup driver (systemd --user) is not supported by bock")
        unit = systemd_props.unit_name(prefix, name)
        cgroup = systemd_props.unit_cgroup(slice_, unit)  # checks the slice name
        lay = layout_ or layout.current()
        if not lay.mode:
            raise CgroupError("no cgroup filesystem is mounted (see /proc/self/mountinfo)")
        if init_cgroup_text is None:
            init_cgroup_text = _read("/proc/1/cgroup")
        init = layout.Layout.parse("", init_cgroup_text).own
        found, unified = unit_paths(lay, init, cgroup)
        if lay.mode != layout.V2 and "devices" not in found:
            raise CgroupError("mountpoint for devices not found")
        if lay.mode == layout.V2:
            found = {}
        elif lay.mode == layout.V1:
            unified = None
        m = cls(lay.mode, found, unified, unit=unit, slice_=slice_, unified_root=lay.unified)
        m._description = name
        return m

    def to_state(self) -> dict:
        d = super().to_state()
        d["systemd"] = {"unit": self.unit, "slice": self.slice}
        return d

    @classmethod
    def from_state(cls, d: dict) -> SystemdCgroupManager:
        sd = d["systemd"]
        m = cls(
            d["mode"],
            dict(d.get("paths") or {}),
            d.get("unified"),
            unit=sd["unit"],
            slice_=sd.get("slice", ""),
            unified_root=d.get("unified_root"),
        )
        m.device_paths = list(d.get("device_paths") or [])
        return m

    def __repr__(self) -> str:
        return f"SystemdCgroupManager(unit={self.unit!r}, mode={self.mode!r}, paths={self.paths!r})"

    # --- systemd -----------------------------------------------------------------------

    def _connect(self):
        if self._bus is None:
            from bock._cgroups.systemd_bus import SystemdBus

            self._bus = SystemdBus.connect()
            self._version = self._bus.version()
        return self._bus

    def _close(self) -> None:
        if self._bus is not None:
            self._bus.close()
            self._bus = None

    def properties(self, r: LinuxResources, *, devices: bool = True) -> list:
        """The resource properties for this host's layout (runc's genV1/genV2ResourcesProperties)."""
        gen = systemd_props.v2_properties if self.mode == layout.V2 else systemd_props.v1_properties
        return gen(
            r,
            self.device_paths,
            version=self._version,
            proc_devices=_read("/proc/devices"),
            devices=devices,
        )

    # --- lifecycle ---------------------------------------------------------------------

    def _check_usable(self, r: LinuxResources) -> None:
        if self.mode != layout.V2 and r.unified:
            # runc's legacy systemd manager (v1 and hybrid hosts) refuses them outright
            raise CgroupConfigError("invalid configuration: cannot use unified on cgroup v1")
        super()._check_usable(r)

    def create(self, resources: LinuxResources | None, *, device_paths=()) -> None:
        """Check the config and compute the unit's properties; the unit starts in :meth:`apply`."""
        if resources is None:
            from bock._spec.resources import LinuxResources

            resources = LinuxResources()
        self.device_paths = list(device_paths)
        self._check_usable(resources)
        try:
            self._connect()
            props = self.properties(resources)
        except BaseException:
            self._close()
            raise
        self._pending = (resources, props)

    def apply(self, pid: int) -> None:
        """Start the scope with ``pid`` in it, join the other hierarchies, write the files."""
        if self._pending is None:
            raise CgroupError("internal error: apply() before create()")
        r, props = self._pending
        self._pending = None
        self._created = []
        try:
            bus = self._connect()
            base = systemd_props.base_properties(self._description or self.unit, self.slice, self.unit, pid)
            bus.start_transient_unit(self.unit, base + props)
            self._close()
            for name, p in self.paths.items():
                if name == "cpuset":
                    self._mkdir_cpuset(p)
                else:
                    self._mkdir(p)
            if self.unified:
                self._mkdir(self.unified)
                if self.unified_root:
                    # v2: every controller from the root down (runc's CreateCgroupPath after the
                    # unit starts); hybrid: those only cgroup2 has that this config uses
                    wanted = None if self.mode == layout.V2 else self._hybrid_v2_controllers(r)
                    if wanted is None or wanted:
                        v2.enable_controllers(self.unified_root, self.unified, wanted)
            super().apply(pid)
            self._set(r, creating=True, devices=True)
        except OSError as e:
            from bock._cgroups.manager import _oserror

            raise _oserror(e) from None
        finally:
            self._close()

    def set(self, resources: LinuxResources, *, devices: bool = False) -> None:
        self._check_usable(resources)
        try:
            bus = self._connect()
            bus.set_unit_properties(self.unit, self.properties(resources, devices=devices))
        finally:
            self._close()
        super().set(resources, devices=devices)

    def destroy(self) -> None:
        """Stop the unit (systemd removes its cgroups), then remove what is left, like runc."""
        self._pending = None
        stop_error = None
        try:
            self._connect().stop_unit(self.unit)
        except CgroupError as e:
            stop_error = e
        finally:
            self._close()
        try:
            super().destroy()
        except CgroupError:
            if stop_error is None:
                raise
        if stop_error is not None:
            raise stop_error

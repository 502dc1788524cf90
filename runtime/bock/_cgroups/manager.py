"""The cgroup manager: one container's cgroups on whatever layout the host has.

The lead's create/delete/kill/ps/pause/update/events paths use only this class::

    m = CgroupManager.for_container(cid, spec.linux.cgroups_path)
    m.create(resources)     # mkdir + limits; removes what it made if anything fails
    m.apply(init_pid)       # before the user process runs
    state["cgroups"] = m.to_state()
    ...
    CgroupManager.from_state(state["cgroups"]).destroy()

v1 and hybrid: one directory per mounted hierarchy (in runc's order), plus the
cgroup2 directory on a hybrid host (runc joins it too; the config's ``unified``
keys and the limits of controllers only the cgroup2 hierarchy has go there).
v2: one directory; devices through an eBPF program.
"""

from __future__ import annotations

import errno
import os
import time

from bock._cgroups import fsio, layout, paths, v1, v2
from bock._cgroups.errors import CgroupConfigError, CgroupError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from bock._spec.resources import LinuxResources

_IGNORABLE = (errno.EPERM, errno.EACCES, errno.EROFS)


def _oserror(e: OSError) -> CgroupError:
    return CgroupError(e.strerror if isinstance(e, fsio.CgroupFileError) else str(e))


class CgroupManager:
    __slots__ = (
        "_created",
        "device_paths",
        "mode",
        "paths",
        "rootless",
        "tolerant",
        "unified",
        "unified_root",
        "warnings",
    )

    def __init__(
        self,
        mode: str,
        paths_: dict[str, str],
        unified: str | None,
        *,
        rootless: bool = False,
        unified_root: str | None = None,
    ) -> None:
        self.mode = mode
        #: v1 subsystem -> directory (v1/hybrid); empty on v2
        self.paths = paths_
        #: the cgroup2 directory (v2: the container's cgroup; hybrid: its cgroup2 twin)
        self.unified = unified
        self.unified_root = unified_root
        self.rootless = rootless
        #: rootless without an explicit cgroupsPath: a cgroup we may not make or join is
        #: skipped (runc's isIgnorableError); a limit that needs it still fails in set()
        self.tolerant = False
        #: paths of the spec's linux.devices: their default allow rules give way (runc)
        self.device_paths: list[str] = []
        #: things runc would log as warnings (e.g. kernel memory limits are ignored)
        self.warnings: list[str] = []
        self._created: list[str] = []

    # --- construction --------------------------------------------------------------

    @classmethod
    def for_container(
        cls,
        cid: str,
        cgroups_path: str | None,
        *,
        systemd: bool = False,
        rootless: bool = False,
        layout_: layout.Layout | None = None,
    ) -> CgroupManager:
        if systemd:
            from bock._cgroups.systemd import SystemdCgroupManager

            return SystemdCgroupManager.for_container(cid, cgroups_path, rootless=rootless, layout_=layout_)
        lay = layout_ or layout.current()
        inner = paths.inner_path(cid, cgroups_path)
        if lay.mode == layout.V2:
            m = cls(lay.mode, {}, paths.unified_path(lay, inner), rootless=rootless, unified_root=lay.unified)
            m.tolerant = rootless and not cgroups_path
            return m
        if not lay.mode:
            raise CgroupError("no cgroup filesystem is mounted (see /proc/self/mountinfo)")
        found = {}
        for name in layout.V1_SUBSYSTEMS:
            p = paths.v1_path(lay, name, inner)
            if p is not None:
                found[name] = p
        if "devices" not in found:
            # runc: the absence of the devices hierarchy is fatal, for security reasons.
            raise CgroupError("mountpoint for devices not found")
        unified = paths.unified_path(lay, inner) if lay.mode == layout.HYBRID else None
        m = cls(lay.mode, found, unified, rootless=rootless, unified_root=lay.unified)
        m.tolerant = rootless and not cgroups_path
        return m

    def to_state(self) -> dict:
        return {
            "mode": self.mode,
            "paths": dict(self.paths),
            "unified": self.unified,
            "unified_root": self.unified_root,
            "rootless": self.rootless,
            "tolerant": self.tolerant,
            "device_paths": list(self.device_paths),
        }

    @classmethod
    def from_state(cls, d: dict) -> CgroupManager:
        if d.get("systemd") and cls is CgroupManager:
            from bock._cgroups.systemd import SystemdCgroupManager

            return SystemdCgroupManager.from_state(d)
        m = cls(
            d["mode"],
            dict(d.get("paths") or {}),
            d.get("unified"),
            rootless=bool(d.get("rootless")),
            unified_root=d.get("unified_root"),
        )
        m.tolerant = bool(d.get("tolerant"))
        m.device_paths = list(d.get("device_paths") or [])
        return m

    def __repr__(self) -> str:
        return f"CgroupManager(mode={self.mode!r}, paths={self.paths!r}, unified={self.unified!r})"

    # --- directories -----------------------------------------------------------------

    def _dirs(self) -> list[str]:
        out = []
        for p in self.paths.values():
            if p not in out:
                out.append(p)
        if self.unified and self.unified not in out:
            out.append(self.unified)
        return out

    def _mkdir(self, path: str) -> None:
        missing = []
        p = path
        while not os.path.isdir(p):
            missing.append(p)
            p = os.path.dirname(p)
        for d in reversed(missing):
            try:
                os.mkdir(d, 0o755)
            except FileExistsError:
                continue
            self._created.append(d)

    def create(self, resources: LinuxResources | None, *, device_paths=()) -> None:
        """Make the container's cgroups and apply ``resources``; all or nothing.

        ``device_paths``: the paths of the spec's ``linux.devices`` (see ``devices.DEFAULT_PATHS``).
        """
        if resources is None:
            from bock._spec.resources import LinuxResources

            resources = LinuxResources()
        r = resources
        self.device_paths = list(device_paths)
        self._created = []
        try:
            self._check_usable(r)
            for name, p in list(self.paths.items()):
                try:
                    if name == "cpuset":
                        self._mkdir_cpuset(p)
                    else:
                        self._mkdir(p)
                except OSError as e:
                    if self.tolerant and e.errno in _IGNORABLE:
                        del self.paths[name]
                        continue
                    raise
            if self.unified:
                try:
                    self._mkdir(self.unified)
                except OSError as e:
                    if not (self.tolerant and e.errno in _IGNORABLE):
                        raise
                    self.unified = None
                if self.unified and self.unified_root:
                    wanted = None if self.mode == layout.V2 else self._hybrid_v2_controllers(r)
                    if wanted is None or wanted:
                        v2.enable_controllers(self.unified_root, self.unified, wanted)
            self._set(r, creating=True, devices=True)
        except BaseException as e:
            self._remove_created()
            if isinstance(e, OSError):
                raise _oserror(e) from None
            raise

    def _mkdir_cpuset(self, path: str) -> None:
        before = len(self._created)
        self._mkdir(path)
        # Every cpuset level we made needs cpus/mems before a task can enter it.
        for d in self._created[before:]:
            v1.cpuset_inherit(d)

    def _remove_created(self) -> None:
        leaves = set(self._dirs())
        for d in reversed(self._created):
            if d in leaves:
                _rmdir_retry(d)
            else:
                try:
                    os.rmdir(d)  # a parent another container may be using now: one try
                except OSError:
                    pass
        self._created = []

    def _hybrid_v2_controllers(self, r: LinuxResources) -> set[str]:
        """Controllers a hybrid host offers only in cgroup2, that this config needs there."""
        wanted = set()
        if v1.uses_hugetlb(r) and "hugetlb" not in self.paths:
            wanted.add("hugetlb")
        if v1.uses_rdma(r) and "rdma" not in self.paths:
            wanted.add("rdma")
        for key in r.unified:
            ctrl = key.partition(".")[0]
            if ctrl != "cgroup":
                wanted.add(ctrl)
        return wanted

    def _check_usable(self, r: LinuxResources) -> None:
        if self.mode == layout.V1 and r.unified:
            raise CgroupConfigError("invalid configuration: cannot use unified on cgroup v1")
        if r.memory and (r.memory.kernel is not None or r.memory.kernel_tcp is not None):
            self.warnings.append("Kernel memory settings are ignored and will be removed")

    # --- joining -----------------------------------------------------------------------

    def apply(self, pid: int) -> None:
        """Put ``pid`` in the container's cgroup in every hierarchy."""
        for d in self._dirs():
            try:
                fsio.write(d, "cgroup.procs", str(pid))
            except OSError as e:
                if self.tolerant and e.errno in _IGNORABLE:
                    continue
                raise CgroupError(f"failed to add pid {pid} to cgroup {d}: {e.strerror}") from None

    # --- limits ------------------------------------------------------------------------

    def set(self, resources: LinuxResources, *, devices: bool = False) -> None:
        """Apply ``resources`` to the existing cgroups, live (``bock update``).

        Device rules are left alone unless ``devices`` is true: like ``runc update``
        (which sets SkipDevices), so that an update cannot drop device access that
        the container was created with. :meth:`create` always applies them.
        """
        try:
            self._check_usable(resources)
            self._set(resources, creating=False, devices=devices)
        except OSError as e:
            raise _oserror(e) from None

    def _set(self, r: LinuxResources, *, creating: bool, devices: bool) -> None:
        if self.mode == layout.V2:
            if self.unified:
                v2.set_all(
                    self.unified, r, devices=devices and not self.rootless, device_paths=self.device_paths
                )
            return
        for name, uses, setter in v1.SETTERS:
            if uses is not None and not uses(r):
                continue
            if name == "devices" and not devices:
                continue
            path = self.paths.get(name)
            if path is None:
                if name in ("hugetlb", "rdma") and self.unified and self.mode == layout.HYBRID:
                    continue  # set below through the cgroup2 twin
                if name == "devices" and self.rootless:
                    continue
                raise CgroupError(f"cannot set {name} limit: container could not join or create cgroup")
            try:
                if name == "devices":
                    v1.set_devices(path, r, self.device_paths)
                else:
                    setter(path, r)
            except OSError:
                if name == "devices" and self.rootless:
                    continue
                raise
        if creating and "cpuset" in self.paths:
            v1.cpuset_inherit(self.paths["cpuset"])
        if self.mode == layout.HYBRID and self.unified:
            avail = v2.controllers(self.unified)
            if v1.uses_hugetlb(r) and "hugetlb" not in self.paths:
                v2._need(avail, "hugetlb", self.unified)
                v1.set_hugetlb(self.unified, r, ".max")
            if v1.uses_rdma(r) and "rdma" not in self.paths:
                v2._need(avail, "rdma", self.unified)
                v1.set_rdma(self.unified, r)
            if r.unified:
                v2.set_unified(self.unified, r.unified, avail)

    # --- state ---------------------------------------------------------------------------

    def _main(self) -> str:
        if self.mode == layout.V2:
            return self.unified or ""
        return self.paths.get("devices") or self.paths.get("freezer") or next(iter(self.paths.values()), "")

    def pids(self) -> list[int]:
        """Every process in the container's cgroup, sub-cgroups included."""
        out: list[int] = []
        top = self._main()
        if not top:
            return out
        for dirpath, _dirs, _files in os.walk(top):
            try:
                text = fsio.read(dirpath, "cgroup.procs")
            except OSError as e:
                if e.errno == errno.ENOENT:
                    continue
                raise CgroupError(e.strerror) from None
            out.extend(int(x) for x in text.split())
        return out

    def exists(self) -> bool:
        top = self._main()
        return bool(top) and os.path.isdir(top)

    def freeze(self) -> None:
        if self.mode == layout.V2:
            v2.freeze(self._require(self.unified, "freezer"), True)
        else:
            v1.freeze(self._require(self.paths.get("freezer"), "freezer"))

    def thaw(self) -> None:
        try:
            if self.mode == layout.V2:
                v2.freeze(self._require(self.unified, "freezer"), False)
            else:
                fsio.write(self._require(self.paths.get("freezer"), "freezer"), "freezer.state", "THAWED")
        except OSError as e:
            raise _oserror(e) from None

    def is_frozen(self) -> bool:
        if self.mode == layout.V2:
            return bool(self.unified) and v2.is_frozen(self.unified)
        p = self.paths.get("freezer")
        return bool(p) and v1.freezer_state(p) == "FROZEN"

    @staticmethod
    def _require(path: str | None, what: str) -> str:
        if not path:
            raise CgroupError(f"cannot toggle {what}: cgroups not configured for container")
        return path

    def stats(self) -> dict:
        from bock._cgroups import stats

        if self.mode == layout.V2:
            return stats.v2_stats(self.unified or "")
        return stats.v1_stats(self.paths, self.unified)

    def oom_events(self):
        """An :class:`bock._cgroups.oom.OomWatcher` (``fileno()``, ``wait()``, ``close()``)."""
        from bock._cgroups import oom

        if self.mode == layout.V2:
            return oom.V2Watcher(self._require(self.unified, "memory"))
        return oom.V1Watcher(self._require(self.paths.get("memory"), "memory"))

    def destroy(self) -> None:
        """Remove the container's cgroups (sub-cgroups first); missing ones are fine.

        Parents that this same manager made in :meth:`create` (a failed create undone
        by the caller) go too, when empty; a manager rebuilt with :meth:`from_state`
        removes only the container's own directories, as runc does.
        """
        failed = []
        for d in self._dirs():
            if not _remove_tree(d):
                failed.append(d)
        if failed:
            raise CgroupError(f"failed to remove cgroup(s) {', '.join(failed)}: device or resource busy")
        for d in reversed(self._created):
            try:
                os.rmdir(d)
            except OSError:
                pass  # gone already, or shared with another container
        self._created = []


def _rmdir_retry(path: str) -> bool:
    delay = 0.01
    for attempt in range(5):
        try:
            os.rmdir(path)
            return True
        except FileNotFoundError:
            return True
        except OSError as e:
            if e.errno != errno.EBUSY or attempt == 4:
                return False
            time.sleep(delay)
            delay *= 2
    return False


def _remove_tree(path: str) -> bool:
    try:
        os.rmdir(path)
        return True
    except FileNotFoundError:
        return True
    except OSError:
        pass
    try:
        entries = list(os.scandir(path))
    except FileNotFoundError:
        return True
    ok = True
    for entry in entries:
        if entry.is_dir(follow_symlinks=False):
            ok = _remove_tree(entry.path) and ok
    return _rmdir_retry(path) and ok

"""``bock delete``: remove a stopped container (a created one is killed first, as runc does)."""

from __future__ import annotations

import os

from bock._fsutil import rmtree
from bock._lifecycle.kill import container_pids
from bock._lifecycle.wait import kill_and_wait
from bock._state import Container
from bock.errors import BadState, ContainerNotExist, DamagedState


def _quiet_rmtree(path: str) -> None:
    try:
        rmtree(path)
    except OSError:
        pass


def delete(root: str, cid: str, force: bool = False, log=None) -> None:
    try:
        container = Container.load(root, cid)
    except (ContainerNotExist, DamagedState):  # the id was validated: the path is ours
        if not force:
            raise
        leftover = os.path.join(root, cid)
        if os.path.isdir(leftover):
            _quiet_rmtree(leftover)
        return
    status = container.status()
    if status in ("running", "paused") and not force:
        raise BadState(f"cannot delete container {cid} that is not stopped: {status}")
    if status != "stopped":
        kill_everything(container)
    destroy(container, log)


def kill_everything(container: Container) -> None:
    """SIGKILL the init and whatever else lives in the container's cgroup; wait for the init."""
    cg = container.data.get("cgroup")
    manager = None
    if cg:
        from bock._cgroups import CgroupManager

        manager = CgroupManager.from_state(cg)
    for pid in container_pids(container):
        if pid != container.pid:
            try:
                os.kill(pid, 9)
            except ProcessLookupError:
                pass
    if container.init_alive():
        kill_and_wait(container.pid, None)
    if manager is not None and manager.is_frozen():
        manager.thaw()  # a frozen (v1) task cannot die until thawed


def destroy(container: Container, log=None) -> None:
    """Undo create: cgroup, state directory; then the poststop hooks (warnings only)."""
    cg = container.data.get("cgroup")
    if cg:
        from bock._cgroups import CgroupManager

        CgroupManager.from_state(cg).destroy()
    _quiet_rmtree(container.dir)
    hooks = (container.config.get("hooks") or {}).get("poststop")
    if hooks:
        from bock import SPEC_VERSION
        from bock._security.hooks import run_poststop
        from bock._spec.config import Hook

        state = container.oci_state("stopped")
        state["ociVersion"] = SPEC_VERSION
        for warning in run_poststop([Hook.from_json(h) for h in hooks], state) or ():
            if log is not None:
                log.warning(warning)

"""``bock pause`` / ``bock resume``: the cgroup freezer (v1 freezer.state, v2 cgroup.freeze)."""

from __future__ import annotations

from bock._lifecycle.ps import manager_for
from bock._state import Container
from bock.errors import BadState, ContainerNotRunning


def pause(container: Container) -> None:
    status = container.status()
    if status not in ("running", "created"):
        raise ContainerNotRunning()
    manager_for(container).freeze()


def resume(container: Container) -> None:
    if container.status() != "paused":
        raise BadState("container not paused")
    manager_for(container).thaw()

"""``bock pause`` / ``bock resume``: the cgroup freezer (v1 freezer.state, v2 cgroup.freeze)."""

from __future__ import annotations

import os

from bock._lifecycle.ps import manager_for
from bock._state import PAUSED_CREATED, Container
from bock.errors import BadState, ContainerNotRunning


def pause(container: Container) -> None:
    status = container.status()
    if status not in ("running", "created"):
        raise ContainerNotRunning()
    marker = os.path.join(container.dir, PAUSED_CREATED)
    if status == "created":
        with open(marker, "w"):
            pass
    try:
        manager_for(container).freeze()
    except BaseException:
        if status == "created":
            os.unlink(marker)
        raise


def resume(container: Container) -> None:
    if container.status() != "paused":
        raise BadState("container not paused")
    manager_for(container).thaw()
    try:
        os.unlink(os.path.join(container.dir, PAUSED_CREATED))
    except FileNotFoundError:
        pass

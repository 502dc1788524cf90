"""Finding and removing the cgroups a test's containers left, in every hierarchy (wherever they
are: on this host the memory hierarchy's default cgroups nest under the caller's own cgroup)."""

from __future__ import annotations

import os
import time

from bock._init.cgroupfs import host_hierarchies


def find_named(name: str, max_depth: int = 3) -> list[str]:
    """Every cgroup directory called ``name`` at most ``max_depth`` levels below a hierarchy's
    mount point."""
    found = []
    for point, _fstype, _opts in host_hierarchies():
        for top, dirs, _files in os.walk(point):
            if top.count("/") - point.count("/") >= max_depth:
                dirs[:] = []
                continue
            if name in dirs:
                dirs.remove(name)
                found.append(os.path.join(top, name))
    return found


def remove_tree(path: str, wait: float = 0.0) -> bool:
    """rmdir a cgroup and its children bottom-up; a busy one (a killed process still leaving)
    is retried for up to ``wait`` seconds. True when it is gone."""
    deadline = time.monotonic() + wait
    for sub, _dirs, _files in sorted(os.walk(path), reverse=True):
        while True:
            try:
                os.rmdir(sub)
                break
            except FileNotFoundError:
                break
            except OSError:
                if time.monotonic() > deadline:
                    break
                time.sleep(0.05)
    return not os.path.exists(path)

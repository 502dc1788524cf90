"""``bock ps``: the host pids in the container's cgroup (json), or ``ps`` filtered to them (table)."""

from __future__ import annotations

from bock._state import Container
from bock.errors import BockError


class CgroupUnavailable(BockError):
    """The container has no cgroup bock can read (or the cgroup manager is not installed)."""


def manager_for(container: Container):
    """The container's CgroupManager, or a clear error when there is none."""
    try:
        from bock._cgroups import CgroupManager
    except ImportError:
        raise CgroupUnavailable("cgroup manager not available in this build of bock") from None
    cg = container.data.get("cgroup")
    if not cg:
        raise CgroupUnavailable(f"container {container.id} has no cgroup recorded in its state")
    return CgroupManager.from_state(cg)


def container_pids(container: Container) -> list[int]:
    return sorted(set(manager_for(container).pids()))


def ps_table(pids: list[int], ps_args: list[str]) -> str:
    """Run the host's ``ps`` (default ``-ef``) and keep the header plus the container's lines."""
    import subprocess

    argv = ["ps", *(ps_args or ["-ef"])]
    try:
        out = subprocess.run(argv, capture_output=True, check=False, env=_env())
    except FileNotFoundError:
        raise BockError('exec: "ps": executable file not found in $PATH') from None
    if out.returncode != 0:
        raise BockError(f"ps: {out.stderr.decode(errors='replace').strip()}: exit status {out.returncode}")
    lines = out.stdout.decode(errors="replace").splitlines()
    if not lines:
        return ""
    header = lines[0].split()
    try:
        idx = header.index("PID")
    except ValueError:
        raise BockError("couldn't find PID field in ps output") from None
    wanted = set(pids)
    kept = [lines[0]]
    for line in lines[1:]:
        fields = line.split()
        if len(fields) > idx and fields[idx].isdigit() and int(fields[idx]) in wanted:
            kept.append(line)
    return "\n".join(kept) + "\n"


def _env() -> dict[str, str]:
    import os

    env = dict(os.environ)
    env.setdefault("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
    return env

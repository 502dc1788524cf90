"""The init's security steps, in runc's order, delegated to ``bock._security``.

One object per container, built in the parent (so that the seccomp filter and the
capability sets are compiled and checked before anything is created) and inherited
by the init across fork.
"""

from __future__ import annotations

import os

from bock._init import sync
from bock._init.process import switch_user_basic
from bock._libc import libc
from bock._spec.config import Hook, Process, Spec


class Security:
    """Imports every module the init will need after pivot_root up front (the host's
    Python library is out of reach from inside the rootfs)."""

    __slots__ = ("_finalize", "_notify_fd", "caps", "pa", "resource", "seccomp", "spec")

    def __init__(self, spec: Spec) -> None:
        self.spec = spec
        self.caps = None
        self.seccomp = None
        self._notify_fd: int | None = None
        self.pa = None
        self.resource = None
        process = spec.process
        try:
            from bock._security import process_attrs

            self.pa = process_attrs
        except ImportError:
            import resource

            self.resource = resource
        try:
            from bock._security.caps import finalize_credentials

            self._finalize = finalize_credentials
        except ImportError:
            self._finalize = None
        if spec.hooks.create_container or spec.hooks.start_container:
            from bock._security import hooks  # noqa: F401 - preload
        # _security TODO(seccaps): CapSets.from_spec(process.capabilities); SeccompFilter.compile(...)
        if process is not None and process.capabilities is not None:
            try:
                from bock._security.caps import CapSets
            except ImportError:
                CapSets = None
            if CapSets is not None:
                self.caps = CapSets.from_spec(process.capabilities)
        if spec.linux.seccomp is not None:
            try:
                from bock._security.seccomp import SeccompFilter
                from bock._spec.seccomp import LinuxSeccomp
            except ImportError:
                from bock.errors import ConfigError

                raise ConfigError("seccomp is not supported by this build of bock") from None
            self.seccomp = SeccompFilter.compile(LinuxSeccomp.from_json(spec.linux.seccomp))

    # -- hooks (createContainer, startContainer run inside the container) --
    def run_hooks(self, hooks: list[Hook], state: dict, kind: str) -> None:
        from bock._security.hooks import run_hooks

        run_hooks(hooks, state, kind=kind)

    def apply_sysctl(self, sysctl: dict[str, str]) -> None:
        for key, value in sysctl.items():
            with open("/proc/sys/" + key.replace(".", "/"), "w") as f:
                f.write(value)

    def apply_process_attrs(self, process: Process) -> None:
        """oom_score_adj, rlimits, personality, I/O priority, scheduler, initial CPU affinity."""
        pa = self.pa
        if process.oom_score_adj is not None:
            with open("/proc/self/oom_score_adj", "w") as f:
                f.write(str(process.oom_score_adj))
        if pa is not None:
            pa.apply_rlimits(process.rlimits)
            if self.spec.linux.personality is not None:
                pa.apply_personality(self.spec.linux.personality)
            if process.io_priority is not None:
                pa.apply_io_priority(process.io_priority)
            if process.scheduler is not None:
                pa.apply_scheduler(process.scheduler)
            if process.exec_cpu_affinity is not None and process.exec_cpu_affinity.initial:
                pa.apply_cpu_affinity(process.exec_cpu_affinity.initial)
        else:
            resource = self.resource
            for rl in process.rlimits:
                kind = getattr(resource, rl.type)
                try:
                    resource.setrlimit(kind, (rl.soft, rl.hard))
                except (ValueError, PermissionError) as err:
                    raise OSError(
                        1, f"error setting rlimit type {rl.type}: operation not permitted ({err})"
                    ) from None

    def finalize_credentials(self, process: Process) -> None:
        if self.seccomp is not None and not process.no_new_privileges:
            self._load_seccomp()
        if self._finalize is None:
            switch_user_basic(process)
            return
        self._finalize(process.user, self.caps, no_new_privileges=process.no_new_privileges)

    def _load_seccomp(self) -> None:
        fd = self.seccomp.load()
        self._notify_fd = fd

    def before_ready(self, sock) -> None:
        """NNP and (with NNP) seccomp, as late as runc loads them; hand a notify fd to the parent."""
        process = self.spec.process
        if process.no_new_privileges:
            libc.prctl(38, 1, 0, 0, 0)  # PR_SET_NO_NEW_PRIVS
            if self.seccomp is not None:
                self._load_seccomp()
        fd = self._notify_fd
        if fd is not None:
            sync.send(sock, "seccomp", "", [fd])
            sync.expect(sock, "ok")
            os.close(fd)

    def before_exec(self, process: Process) -> None:
        aff = process.exec_cpu_affinity
        if aff is not None and aff.final:
            self.pa.apply_cpu_affinity(aff.final)

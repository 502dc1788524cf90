"""The init's security steps, in runc's order, delegated to ``bock._security``.

One object per container, built in the parent (so that the seccomp filter and the
capability sets are compiled and checked before anything is created) and inherited
by the init across fork.
"""

from __future__ import annotations

import os

from bock._init import sync
from bock._libc import check, libc
from bock._spec.config import Hook, Process, Spec


class Security:
    """Imports every module the init will need after pivot_root up front (the host's
    Python library is out of reach from inside the rootfs)."""

    __slots__ = (
        "_finalize",
        "_notify_fd",
        "caps",
        "mount_fds",
        "pa",
        "seccomp",
        "spec",
        "warnings",
    )

    def __init__(self, spec: Spec, *, seccomp_cache: str | None = None) -> None:
        self.spec = spec
        self.caps = None
        self.seccomp = None
        self._notify_fd: int | None = None
        self.mount_fds: dict[int, int] = {}
        process = spec.process
        self.warnings = _validate(spec)
        from bock._security import process_attrs
        from bock._security.caps import CapSets, finalize_credentials

        self.pa = process_attrs
        self._finalize = finalize_credentials
        if spec.hooks.create_container or spec.hooks.start_container:
            from bock._security import hooks  # noqa: F401 - preload
        if process is not None and (process.apparmor_profile or process.selinux_label):
            from bock._security import lsm  # noqa: F401 - preload: applied after pivot_root
        if process is not None and process.capabilities is not None:
            self.caps = CapSets.from_spec(process.capabilities)
            if self.caps.ignored:  # runc: logrus.Warn, before anything is created
                from bock._log import log

                log.warning(self.caps.warning())
        if spec.linux.seccomp is not None:
            from bock._security.seccomp import SeccompFilter
            from bock._spec.seccomp import LinuxSeccomp

            self.seccomp = SeccompFilter.compile(
                LinuxSeccomp.from_json(spec.linux.seccomp), cache_dir=seccomp_cache
            )
            if self.seccomp.ignored:
                from bock._log import log

                for name in self.seccomp.ignored:  # runc: logrus.Debugf
                    log.debug(f"unknown seccomp syscall {name!r} ignored")

    # -- idmapped mounts: made by the parent in the host namespaces, attached by the init --
    def prepare_mounts(self, bundle: str) -> None:
        spec = self.spec
        if any(m.uid_mappings or m.gid_mappings or {"idmap", "ridmap"} & set(m.options) for m in spec.mounts):
            from bock._security.idmap import prepare_mounts

            self.mount_fds = prepare_mounts(spec.mounts, spec.linux, bundle)

    def close_mount_fds(self) -> None:
        for fd in self.mount_fds.values():
            os.close(fd)
        self.mount_fds = {}

    # -- hooks (createContainer, startContainer run inside the container) --
    def run_hooks(self, hooks: list[Hook], state: dict, kind: str) -> None:
        from bock._security.hooks import run_hooks

        # runc: the init has already put the container process's env in its own
        # (populateProcessEnvironment), so a hook without env inherits that (measured with
        # runc 1.1.5 for createContainer; runc sets it explicitly for startContainer).
        run_hooks(hooks, state, kind=kind, default_env=self.spec.process.env)

    def apply_sysctl(self, sysctl: dict[str, str]) -> None:
        from bock._security.sysctl import apply

        apply(sysctl)

    def apply_process_attrs(self, process: Process) -> None:
        """AppArmor/SELinux exec labels, personality, I/O priority, scheduler; and the CPU
        affinity reset to all CPUs (runc's tryResetCPUAffinity). oom_score_adj and rlimits
        are set by the parent, as runc does (create._set_oom_score_adj, create._set_rlimits):
        from inside a user namespace, lowering one or raising the other is never allowed.

        execCPUAffinity is for ``exec``'d processes only (config.md: "not applicable to
        the container's init process"), as in runc.
        """
        pa = self.pa
        if process.apparmor_profile or process.selinux_label:
            from bock._security import lsm

            lsm.apply_apparmor(process.apparmor_profile)
            lsm.apply_selinux_label(process.selinux_label)
        if self.spec.linux.personality is not None:
            pa.apply_personality(self.spec.linux.personality)
        if process.io_priority is not None:
            pa.apply_io_priority(process.io_priority)
        if process.scheduler is not None:
            pa.apply_scheduler(process.scheduler)
        try:
            pa.apply_cpu_affinity(None, which="reset")
        except Exception:  # runc only warns when the reset fails
            pass

    def finalize_credentials(self, process: Process) -> None:
        if self.seccomp is not None and not process.no_new_privileges:
            self._load_seccomp()
        from bock._log import log

        self._finalize(process.user, self.caps, no_new_privileges=process.no_new_privileges, warn=log.warning)

    def _load_seccomp(self) -> None:
        fd = self.seccomp.load()
        self._notify_fd = fd

    def before_ready(self, sock) -> None:
        """NNP and (with NNP) seccomp, as late as runc loads them; hand a notify fd to the parent."""
        process = self.spec.process
        if process.no_new_privileges:
            check(libc.prctl(38, 1, 0, 0, 0), "prctl(SET_NO_NEW_PRIVS)")
            if self.seccomp is not None:
                self._load_seccomp()
        fd = self._notify_fd
        if fd is not None:
            sync.send(sock, "seccomp", "", [fd])
            sync.expect(sock, "ok")
            os.close(fd)

    def before_exec(self, process: Process, *, exec_process: bool = False) -> None:
        """Right before execve. ``exec_process``: a ``bock exec`` process, which gets
        execCPUAffinity.final here (its ``initial`` belongs before it joins the cgroup)."""
        aff = process.exec_cpu_affinity
        if exec_process and aff is not None and aff.final:
            self.pa.apply_cpu_affinity(aff.final, which="final")


def _validate(spec: Spec) -> list[str]:
    """bock._security's parent-side checks (runc's validators); returns runc's warnings."""
    from bock._security import process_attrs

    warnings = process_attrs.validate(spec.process, spec.linux)
    if spec.linux.namespace("user") is not None and spec.linux.namespace("user").path:
        from bock._security.idmap import validate as validate_idmap

        warnings += validate_idmap(spec.linux, spec.mounts)
    if spec.linux.sysctl:
        from bock._security import sysctl

        sysctl.validate(spec.linux.sysctl, spec.linux)
    if spec.process is not None and spec.process.selinux_label:
        from bock._security import lsm

        lsm.validate(spec.process)
    h = spec.hooks
    if h.prestart or h.create_runtime or h.create_container or h.start_container or h.poststart or h.poststop:
        from bock._security import hooks

        hooks.validate(h)
    return warnings

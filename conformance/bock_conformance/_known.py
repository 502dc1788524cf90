"""Why a case fails on a known reference runtime (shown next to the failure in the report).

Keys are case names, with the parameter part for one parametrization or without it for all. Only failures
that were run, looked at and understood are listed (runc 1.1.5+ds1-1+deb12u1 on Debian 12, kernel 6.18,
hybrid cgroups); README.md carries the same list.
"""

from __future__ import annotations

OLD = "runc 1.1.5 predates this setting and ignores it"
POSTSTART = (
    "runc <= 1.5 runs poststart hooks at the end of `create`, before `start` (fixed in runc main, PR #5186)"
)
TIMENS = 'runc 1.1.5 has no time namespace support: "namespace {"time" ""} does not exist"'
PROPAGATION = (
    "runc applies rootfsPropagation to the mount namespace's / and makes the rootfs's parent private "
    "before the "
    "bind mount, so the container's / carries no propagation flag"
)

RUNC_1_1: dict[str, str] = {
    "test_cpu_idle": "runc 1.1 writes cpu.idle only through cgroup v2; on v1 it drops the value silently "
    "(this kernel has cpu.idle in v1 too)",
    "test_cpu_burst": f"{OLD} (cpu.burst, spec 1.1; runc 1.2 writes cpu.cfs_burst_us)",
    "test_hooks_run_in_lifecycle_order": POSTSTART,
    "test_poststart_hook_runs_after_start_invoked": POSTSTART,
    "test_hook_sees_status[poststart]": POSTSTART + "; so the hook sees status `created`",
    "test_failing_start_container_hook_fails_start": "runc `start` only opens exec.fifo and returns 0; the "
    "startContainer hook runs afterwards in runc init and its failure is not reported by `start`",
    "test_domainname_set": f"{OLD} (domainname, spec 1.1; added in runc 1.2)",
    "test_rootfs_propagation[shared-shared:]": PROPAGATION,
    "test_rootfs_propagation_unbindable": PROPAGATION,
    "test_mappings_without_user_namespace_fail": "runc 1.1 accepts uidMappings/gidMappings without a user "
    "namespace and ignores them instead of reporting an error",
    "test_new_time_namespace": TIMENS,
    "test_time_offset_boottime": TIMENS,
    "test_time_offset_monotonic": TIMENS,
    "test_personality": f"{OLD} (linux.personality, added in runc 1.2)",
    "test_io_priority": f"{OLD} (process.ioPriority, spec 1.2; added in runc 1.2)",
    "test_scheduler_policy": f"{OLD} (process.scheduler, spec 1.2; added in runc 1.2)",
    "test_exec_cpu_affinity": f"{OLD} (process.execCPUAffinity, spec 1.3; added in runc 1.2.x)",
    "test_flag_log_accepted": "runc 1.1.5 refuses every seccomp flag: "
    '"seccomp flags are not yet supported by runc"',
}


def explain(case: str, runtimes: list[str]) -> str:
    """The known reason why *case* fails on the runtime described by *runtimes* (or "")."""
    if not any("runc version 1.1" in r for r in runtimes):
        return ""
    base = case.split("[", 1)[0]
    why = RUNC_1_1.get(case) or RUNC_1_1.get(base)
    return f"known on runc 1.1: {why}" if why else ""

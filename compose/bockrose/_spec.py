"""A compose service -> an OCI runtime bundle (rootfs from bock-image + our config.json changes):
network namespace by path, resolv.conf/hosts/hostname, volumes, tmpfs, capabilities, privileged,
read_only, sysctls, ulimits, shm_size, devices, resource limits, labels as annotations, cgroup."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
from typing import Any

from ._models import duration
from .errors import ConfigError


def _all_caps() -> list[str]:
    """Every capability the kernel knows (privileged: true), names from the bock runtime's table."""
    from bock import CAP_NAMES

    try:
        with open("/proc/sys/kernel/cap_last_cap") as f:
            last = int(f.read())
    except (OSError, ValueError):
        last = len(CAP_NAMES) - 1
    return list(CAP_NAMES[: last + 1])


RLIMITS = {
    "core",
    "cpu",
    "data",
    "fsize",
    "locks",
    "memlock",
    "msgqueue",
    "nice",
    "nofile",
    "nproc",
    "rss",
    "rtprio",
    "rttime",
    "sigpending",
    "stack",
    "as",
}


# the init run as pid 1 for `init: true`: the first one found (docker's docker-init is tini;
# catatonit is podman's, static, and installed with podman; both reap and forward signals)
INIT_CANDIDATES = (
    "/usr/bin/catatonit",
    "/usr/libexec/podman/catatonit",
    "/usr/bin/tini-static",
    "/usr/bin/docker-init",
)
INIT_TARGET = "/sbin/docker-init"  # where docker mounts its init


def init_binary() -> str:
    """$BOCKROSE_INIT or the first installed static init (see INIT_CANDIDATES)."""
    given = os.environ.get("BOCKROSE_INIT")
    for path in [given] if given else INIT_CANDIDATES:
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return os.path.realpath(path)
    raise ConfigError(
        "init: true needs a static init binary: install catatonit or tini (tini-static), "
        "or set BOCKROSE_INIT" + (f" ({given} is not an executable file)" if given else "")
    )


def _cap(name: str) -> str:
    name = name.upper()
    return name if name.startswith("CAP_") else "CAP_" + name


def parse_bytes(value: Any) -> int:
    if isinstance(value, int):
        return value
    s = str(value).strip().lower().rstrip("b")
    mult = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
    if s and s[-1] in mult:
        return int(float(s[:-1]) * mult[s[-1]])
    return int(float(s))


def service_env(svc: dict[str, Any], project_env: dict[str, str]) -> list[str]:
    """env_file entries, then environment (a KEY without value takes the host's value or is dropped)."""
    from ._interpolate import parse_env_file

    env: dict[str, str] = {}
    for ef in svc.get("env_file") or []:
        try:
            with open(ef["path"], encoding="utf-8") as f:
                env.update(parse_env_file(f.read(), ef["path"], project_env))
        except FileNotFoundError:
            if ef.get("required", True):
                raise ConfigError(f"env file {ef['path']} not found") from None
    for k, v in (svc.get("environment") or {}).items():
        if v is None:
            if k in project_env:
                env[k] = project_env[k]
        else:
            env[k] = str(v)
    return [f"{k}={v}" for k, v in env.items()]


def _mount(dest: str, typ: str, source: str, options: list[str]) -> dict[str, Any]:
    return {"destination": dest, "type": typ, "source": source, "options": options}


def customize(
    spec: dict[str, Any],
    svc: dict[str, Any],
    *,
    netns_path: str | None,
    files_dir: str,
    volume_dirs: dict[str, str],
    cgroup_path: str,
    labels: dict[str, str],
    resolv: str | None,
    hosts: str,
    hostname: str,
    files: list[dict[str, Any]] = (),
) -> dict[str, Any]:
    """Apply the service's settings to a runtime spec made by bock_image.bundle()."""
    linux = spec.setdefault("linux", {})
    proc = spec["process"]
    nss = [n for n in linux.get("namespaces", []) if n["type"] != "network"]
    mode = svc.get("network_mode") or ""
    if mode != "host":
        nss.append({"type": "network", **({"path": netns_path} if netns_path else {})})
    if svc.get("pid") == "host":
        nss = [n for n in nss if n["type"] != "pid"]
    if svc.get("ipc") == "host":
        nss = [n for n in nss if n["type"] != "ipc"]
    if mode == "host":
        nss = [n for n in nss if n["type"] != "uts"]
    linux["namespaces"] = nss
    linux["cgroupsPath"] = cgroup_path
    spec["hostname"] = hostname if mode != "host" else spec.get("hostname", "")
    mounts = spec.setdefault("mounts", [])
    os.makedirs(files_dir, exist_ok=True)
    etc: list[tuple[str, str]] = [("/etc/hosts", hosts), ("/etc/hostname", hostname + "\n")]
    if resolv is not None:
        etc.append(("/etc/resolv.conf", resolv))
    for dest, text in etc:
        path = os.path.join(files_dir, os.path.basename(dest))
        with open(path, "w") as f:
            f.write(text)
        mounts.append(_mount(dest, "bind", path, ["rbind", "rprivate", "rw"]))
    for i, f in enumerate(files):  # configs and secrets
        path = os.path.join(files_dir, f"file-{i}")
        with open(path, "w", encoding="utf-8", errors="surrogateescape") as out:
            out.write(f["content"])
        os.chmod(path, f.get("mode", 0o444))
        mounts.append(_mount(f["target"], "bind", path, ["rbind", "rprivate", "ro"]))
    for v in svc.get("volumes") or []:
        typ = v.get("type")
        opts = ["rbind", "rprivate", "ro" if v.get("read_only") else "rw"]
        if typ == "bind":
            src = v["source"]
            if not os.path.exists(src):
                if (v.get("bind") or {}).get("create_host_path", True):
                    os.makedirs(src, exist_ok=True)
                else:
                    raise ConfigError(f"bind source path does not exist: {src}")
            mounts.append(_mount(v["target"], "bind", src, opts))
        elif typ == "volume":
            mounts.append(
                _mount(v["target"], "bind", volume_dirs[v.get("source") or f"anon:{v['target']}"], opts)
            )
        elif typ == "tmpfs":
            t = v.get("tmpfs") or {}
            o = ["nosuid", "nodev"]
            if t.get("size"):
                o.append(f"size={parse_bytes(t['size'])}")
            if t.get("mode"):
                o.append(f"mode={int(str(t['mode']), 8) if isinstance(t['mode'], str) else t['mode']:o}")
            mounts.append(_mount(v["target"], "tmpfs", "tmpfs", o))
        else:
            raise ConfigError(f"volume type {typ!r} is not supported by bockrose")
    for t in svc.get("tmpfs") or []:
        dest, _, o = str(t).partition(":")
        mounts.append(_mount(dest, "tmpfs", "tmpfs", ["nosuid", "nodev", *[x for x in o.split(",") if x]]))
    if svc.get("shm_size"):
        for m in mounts:
            if m["destination"] == "/dev/shm":
                m["options"] = [o for o in m.get("options", []) if not o.startswith("size=")]
                m["options"].append(f"size={parse_bytes(svc['shm_size'])}")
    caps = proc.setdefault("capabilities", {})
    current = list(caps.get("bounding") or [])
    if svc.get("privileged"):
        current = _all_caps()
        linux["maskedPaths"] = []
        linux["readonlyPaths"] = []
        linux.setdefault("resources", {})["devices"] = [{"allow": True, "access": "rwm"}]
    drops = {_cap(c) for c in svc.get("cap_drop") or []}
    if "CAP_ALL" in drops:
        current = []
    current = [c for c in current if c not in drops]
    for c in svc.get("cap_add") or []:
        c = _cap(c)
        if c == "CAP_ALL":
            current = _all_caps()
        elif c not in current:
            current.append(c)
    for k in ("bounding", "effective", "permitted"):
        caps[k] = list(current)
    caps.pop("inheritable", None)
    caps.pop("ambient", None)
    if svc.get("read_only"):
        spec["root"]["readonly"] = True
    if svc.get("tty"):
        # the monitor passes --console-socket and copies the pty master into the log (as docker does)
        proc["terminal"] = True
        if not any(e.startswith("TERM=") for e in proc.get("env", [])):
            proc.setdefault("env", []).append("TERM=xterm")
    if svc.get("init"):
        # docker's --init: a small static init as pid 1 reaps zombies and forwards signals
        mounts.append(_mount(INIT_TARGET, "bind", init_binary(), ["rbind", "rprivate", "ro"]))
        proc["args"] = [INIT_TARGET, "--", *proc["args"]]
    sysctls = svc.get("sysctls") or {}
    if sysctls:
        linux["sysctl"] = {str(k): str(v) for k, v in sysctls.items()}
    rl = {r["type"]: r for r in proc.get("rlimits", [])}
    for name, val in (svc.get("ulimits") or {}).items():
        if name not in RLIMITS:
            raise ConfigError(f"unknown ulimit {name!r}")
        soft, hard = (val.get("soft"), val.get("hard")) if isinstance(val, dict) else (val, val)
        rl[f"RLIMIT_{name.upper()}"] = {
            "type": f"RLIMIT_{name.upper()}",
            "soft": int(soft),
            "hard": int(hard),
        }
    proc["rlimits"] = list(rl.values())
    res = linux.setdefault("resources", {})
    limits = ((svc.get("deploy") or {}).get("resources") or {}).get("limits") or {}
    mem = limits.get("memory") or svc.get("mem_limit")
    if mem:
        res.setdefault("memory", {})["limit"] = parse_bytes(mem)
    cpus = limits.get("cpus") or svc.get("cpus")
    if cpus:
        res["cpu"] = {"period": 100000, "quota": int(float(cpus) * 100000)}
    pids = limits.get("pids") or svc.get("pids_limit")
    if pids:
        res["pids"] = {"limit": int(pids)}
    for d in svc.get("devices") or []:
        src, _, rest = str(d if isinstance(d, str) else d.get("source", "")).partition(":")
        dst = rest.split(":")[0] or src
        st = os.stat(src)
        import stat as _stat

        kind = "c" if _stat.S_ISCHR(st.st_mode) else "b"
        linux.setdefault("devices", []).append(
            {
                "path": dst,
                "type": kind,
                "major": os.major(st.st_rdev),
                "minor": os.minor(st.st_rdev),
                "fileMode": 0o666,
                "uid": 0,
                "gid": 0,
            }
        )
        res.setdefault("devices", []).append(
            {
                "allow": True,
                "type": kind,
                "major": os.major(st.st_rdev),
                "minor": os.minor(st.st_rdev),
                "access": "rwm",
            }
        )
    ann = spec.setdefault("annotations", {})
    ann.update(labels)
    return spec


def hosts_file(hostname: str, addresses: list[str], extra: dict[str, str]) -> str:
    lines = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback"]
    for a in addresses:
        lines.append(f"{a}\t{hostname}")
    for h, ip in extra.items():
        lines.append(f"{'127.0.0.1' if ip == 'host-gateway' else ip}\t{h}")
    return "\n".join(lines) + "\n"


def resolv_file(nameserver: str | None, svc: dict[str, Any]) -> str:
    servers = svc.get("dns") or ([nameserver] if nameserver else [])
    out = [f"nameserver {s}" for s in servers]
    if svc.get("dns_search"):
        out.append("search " + " ".join(svc["dns_search"]))
    opts = list(svc.get("dns_opt") or [])
    out.append("options " + " ".join(opts or ["ndots:0"]))
    return "\n".join(out) + "\n"


def populate_volume(rootfs: str, target: str, voldir: str) -> None:
    """docker's first-use copy: the image's content at target goes into a new, empty volume."""
    src = os.path.join(rootfs, target.lstrip("/"))
    if os.path.isdir(src) and not os.listdir(voldir):
        subprocess.run(["cp", "-a", "--", src + "/.", voldir], check=False, capture_output=True)


def stop_signal(svc: dict[str, Any], spec: dict[str, Any]) -> str:
    sig = svc.get("stop_signal") or (spec.get("annotations") or {}).get("org.opencontainers.image.stopSignal")
    return str(sig or "SIGTERM")


def grace(svc: dict[str, Any]) -> float:
    return duration(svc.get("stop_grace_period"), 10.0)


def write_spec(bundle: str, spec: dict[str, Any]) -> None:
    with open(os.path.join(bundle, "config.json"), "w") as f:
        json.dump(spec, f, indent=1)


def shell_join(args: list[str]) -> str:
    return " ".join(shlex.quote(a) for a in args)


def which(cmd: str) -> str | None:
    return shutil.which(cmd)

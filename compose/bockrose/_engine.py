"""What the commands do, between the CLI (parse and print) and the monitor (OS effects):
service preparation (resolved env, config hash), images (store, pull, build), the no-change fast
path of `up`, and the read-only commands served from state files."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import attrs

from . import _client
from ._models import Project, scale_of, service_hash
from ._runtime import Runtime, default_runtime
from ._spec import service_env
from ._state import ContainerState, ProjectState, load_state, log_path, pid_alive, project_key, state_root
from .errors import ComposeError, ConfigError, MonitorError


@attrs.frozen
class Options:
    """Global options shared by every command."""

    root: str
    runtime: str
    image_root: str | None
    notify: Callable[[str], None]


def make_options(
    state_root_arg: str | None, runtime: str | None, image_root: str | None, notify: Callable[[str], None]
) -> Options:
    rt = runtime or default_runtime()
    rt = os.path.abspath(rt) if os.sep in rt else shutil.which(rt) or rt
    return Options(state_root(state_root_arg), rt, image_root or os.environ.get("BOCK_IMAGE_ROOT"), notify)


def prepare_services(project: Project) -> dict[str, dict[str, Any]]:
    """Services as the monitor runs them: env_file and host values folded into environment."""
    out = {}
    for name, svc in project.services.items():
        s = dict(svc)
        env = service_env(svc, project.environment)
        s.pop("env_file", None)
        s["environment"] = dict(e.split("=", 1) for e in env)
        if not s["environment"]:
            s.pop("environment")
        out[name] = s
    return out


def service_files(project: Project) -> dict[str, list[dict[str, Any]]]:
    """configs and secrets of each service, resolved to their content: mounted read-only as files
    (configs at /<name> by default, secrets at /run/secrets/<name>)."""
    out: dict[str, list[dict[str, Any]]] = {}
    for name, svc in project.services.items():
        for kind, default_dir in (("configs", "/"), ("secrets", "/run/secrets/")):
            for ref in svc.get(kind) or []:
                ref = {"source": ref} if isinstance(ref, str) else dict(ref)
                src = ref["source"]
                decl = getattr(project, kind).get(src)
                if decl is None:
                    raise ConfigError(f"service {name!r} refers to undefined {kind[:-1]} {src}")
                if decl.get("external"):
                    raise ConfigError(f"{kind[:-1]} {src}: external {kind} are not supported by bockrose")
                if decl.get("file"):
                    try:
                        with open(decl["file"], "rb") as f:
                            content = f.read().decode("utf-8", "surrogateescape")
                    except OSError as exc:
                        raise ConfigError(
                            f"{kind[:-1]} {src}: cannot read {decl['file']}: {exc.strerror}"
                        ) from None
                elif decl.get("environment"):
                    content = project.environment.get(decl["environment"], "")
                elif "content" in decl:
                    content = str(decl["content"])
                else:
                    raise ConfigError(f"{kind[:-1]} {src} has no file, environment or content")
                target = ref.get("target") or src
                if not target.startswith("/"):
                    target = default_dir + target
                mode = ref.get("mode", 0o444)
                out.setdefault(name, []).append(
                    {
                        "target": target,
                        "content": content,
                        "mode": int(str(mode), 8) if isinstance(mode, str) else mode,
                    }
                )
    return out


def image_ref(project: Project, name: str, svc: dict[str, Any]) -> str:
    return svc.get("image") or f"{project.name}-{name}"


def _store(opts: Options):
    import bock_image

    return bock_image.Store(opts.image_root or None)


def ensure_images(
    project: Project,
    services: dict[str, dict[str, Any]],
    opts: Options,
    *,
    pull: str | None = None,
    build: bool = False,
    no_build: bool = False,
    emit: Callable[[str], None] = print,
) -> None:
    """Images per pull_policy (`missing` by default; a build section builds a missing image)."""
    import bock_image

    store = _store(opts)
    for name, svc in services.items():
        ref = image_ref(project, name, svc)
        # a build section without an explicit policy builds only when the image is missing;
        # `pull_policy: build` (or `up --build`) builds every time
        policy = _pull_policy(pull or svc.get("pull_policy") or "missing")
        try:
            store.resolve(ref)
            present = True
        except bock_image.ImageError:
            present = False
        if (
            svc.get("build")
            and not no_build
            and (build or policy == "build" or (not present and policy != "never"))
        ):
            run_build(project, name, svc, opts, emit)
            continue
        if svc.get("build") and not svc.get("image"):  # a built image has nowhere to be pulled from
            if present:
                continue
            raise ComposeError(
                f"service {name!r}: image {ref} is not built yet "
                f"({'--no-build' if no_build else f'pull_policy {policy}'} prevents building it)"
            )
        if policy == "always" or (
            (not present and policy in ("missing", "daily", "weekly"))
            or (not present and policy.startswith("every_"))
        ):
            pull_image(ref, opts, emit)
        elif not present:
            raise ComposeError(
                f"service {name!r}: no such image: {ref} (not in the image store {store.root}, "
                f"and pull_policy is {policy}: pull it first, e.g. `bock-image pull {ref}`)"
            )


def _pull_policy(value: str | None) -> str | None:
    """The compose spec's alias `if_not_present` is `missing`."""
    return "missing" if value == "if_not_present" else value


def pull_services(
    project: Project,
    opts: Options,
    services: list[str],
    *,
    policy: str | None,
    ignore_buildable: bool,
    ignore_failures: bool,
    emit: Callable[[str], None],
) -> None:
    """`pull` as docker compose does it: services whose pull_policy is `never` or `build` are
    skipped, so are images that are present when the policy (or --policy) is `missing`."""
    import bock_image

    store = _store(opts)
    for name, svc in project.services.items():
        if services and name not in services:
            continue
        ref = image_ref(project, name, svc)
        if svc.get("build") and (not svc.get("image") or ignore_buildable):
            continue
        wanted = _pull_policy(svc.get("pull_policy"))
        if wanted in ("never", "build"):
            emit(f"Image {ref}  Skipped (pull_policy {wanted})")
            continue
        if (policy or wanted) == "missing":
            try:
                store.resolve(ref)
                emit(f"Image {ref}  Skipped - Image is already present locally")
                continue
            except bock_image.ImageError:
                pass
        try:
            pull_image(ref, opts, emit)
        except ComposeError:
            if not ignore_failures:
                raise


def tool_path(name: str) -> str:
    """bock-image: from $PATH, else the one installed next to this Python."""
    return shutil.which(name) or os.path.join(os.path.dirname(sys.executable), name)


def pull_image(ref: str, opts: Options, emit: Callable[[str], None]) -> None:
    tool = tool_path("bock-image")
    argv = [tool, "--quiet"] + (["--root", opts.image_root] if opts.image_root else []) + ["pull", ref]
    emit(f"Image {ref}  Pulling")
    p = subprocess.run(argv, capture_output=True, text=True)
    if p.returncode != 0:
        raise ComposeError(f"pull {ref} failed: {(p.stderr or p.stdout).strip()}")
    emit(f"Image {ref}  Pulled")


def run_build(
    project: Project,
    name: str,
    svc: dict[str, Any],
    opts: Options,
    emit: Callable[[str], None],
    no_cache: bool = False,
    build_args: list[str] = (),
) -> None:
    tool = shutil.which("bock-build")
    if tool is None:
        raise ComposeError(
            f"service {name!r} has a build section but bock-build is not installed "
            "(install the bock-build distribution, build/)"
        )
    b = svc["build"]
    ref = image_ref(project, name, svc)
    argv = [tool] + (["--root", opts.image_root] if opts.image_root else []) + ["-t", ref]
    if b.get("dockerfile"):
        argv += ["-f", os.path.join(b["context"], b["dockerfile"])]
    args = b.get("args") or {}
    if isinstance(args, list):
        args = dict(a.split("=", 1) if "=" in a else (a, os.environ.get(a, "")) for a in args)
    for k, v in args.items():
        argv += ["--build-arg", f"{k}={v}"]
    for a in build_args:
        argv += ["--build-arg", a]
    if b.get("target"):
        argv += ["--target", b["target"]]
    if no_cache or b.get("no_cache"):
        argv.append("--no-cache")
    argv += ["--runtime", opts.runtime, b["context"]]
    emit(f"Service {name}  Building")
    p = subprocess.run(argv)
    if p.returncode != 0:
        raise ComposeError(f"failed to build service {name!r} (bock-build exit {p.returncode})")
    emit(f"Service {name}  Built")


def new_state(project: Project, opts: Options) -> ProjectState:
    if not (os.path.isabs(opts.runtime) and os.access(opts.runtime, os.X_OK)):
        raise ComposeError(f"OCI runtime {opts.runtime!r} not found: install bock or pass --runtime PATH")
    return ProjectState(
        name=project.name,
        key=project_key(opts.root, project.name),
        working_dir=project.working_dir,
        config_files=project.config_files,
        runtime=opts.runtime,
        runtime_root=os.path.join(opts.root, "runtime", os.path.basename(opts.runtime)),
        image_root=opts.image_root or "",
    )


def image_digests(project: Project, services: dict[str, dict[str, Any]], opts: Options) -> dict[str, str]:
    """The manifest digest of each service's image in the store ("" when it is not there): a
    container made from another digest is recreated, as docker compose does after a build or pull."""
    import bock_image

    store = _store(opts)
    out = {}
    for name, svc in services.items():
        try:
            out[name] = store.resolve(image_ref(project, name, svc)).digest
        except bock_image.ImageError:
            out[name] = ""
    return out


def is_converged(
    state: ProjectState | None,
    services: dict[str, dict[str, Any]],
    hashes: dict[str, str],
    scale: dict[str, int],
    targets: set[str],
    digests: dict[str, str],
) -> bool:
    """True when every target service has exactly its replicas, running, with the same config hash
    and image, and the monitor is alive: `up` then has nothing to do (no monitor round trip).
    A service whose pull_policy is `always` (or `build`) is never converged: it pulls (builds) first."""
    if state is None or not pid_alive(state.monitor_pid):
        return False
    if any(services[n].get("pull_policy") in ("always", "build") for n in targets):
        return False
    by_service: dict[str, list[ContainerState]] = {}
    for c in state.containers.values():
        if not c.oneoff:
            by_service.setdefault(c.service, []).append(c)
    for name in targets:
        cs = by_service.get(name, [])
        if sorted(c.number for c in cs) != list(range(1, scale[name] + 1)):
            return False
        if any(c.hash != hashes[name] or c.status not in ("running", "restarting") for c in cs):
            return False
        if any(c.image_digest and c.image_digest != digests.get(name) for c in cs):
            return False
    return True


def up(
    project: Project,
    opts: Options,
    *,
    targets: list[str],
    scale_override: dict[str, int],
    emit: Callable[[str], None],
    force_recreate: bool = False,
    no_recreate: bool = False,
    no_deps: bool = False,
    remove_orphans: bool = False,
    pull: str | None = None,
    build: bool = False,
    no_build: bool = False,
    no_start: bool = False,
    timeout: float | None = None,
) -> ProjectState:
    services = prepare_services(project)
    hashes = {n: service_hash(s) for n, s in services.items()}
    for n in scale_override:
        if n not in services:
            raise ConfigError(f"no such service: {n}")
    scale = {n: scale_override.get(n, scale_of(s)) for n, s in services.items()}
    from ._graph import closure

    wanted = set(targets) if targets else set(services)
    for t in wanted:
        if t not in services:
            raise ConfigError(f"no such service: {t}")
    if not no_deps:
        wanted = closure(project.deps(), wanted)
    state = load_state(opts.root, project.name)
    if not (force_recreate or build or pull == "always" or no_start) and is_converged(
        state, services, hashes, scale, wanted, image_digests(project, {n: services[n] for n in wanted}, opts)
    ):
        orphans = sorted(
            {c.service for c in state.containers.values() if c.service not in services and not c.oneoff}
        )
        if not orphans or not remove_orphans:
            for c in sorted(state.containers.values(), key=lambda c: c.name):
                if c.service in wanted:
                    emit(f"Container {c.name}  Running")
            if orphans:
                opts.notify(_orphan_warning(orphans))
            return state
    ensure_images(
        project, {n: services[n] for n in wanted}, opts, pull=pull, build=build, no_build=no_build, emit=emit
    )
    if state is None:
        state = new_state(project, opts)
    elif state.runtime != opts.runtime and state.containers:
        opts.notify(
            f"project {project.name} runs on {state.runtime}; --runtime {opts.runtime} is ignored "
            "until `down`"
        )
    _client.ensure_monitor(opts.root, state, opts.notify)
    req = {
        "op": "up",
        "services": services,
        "hashes": hashes,
        "scale": scale,
        "targets": sorted(wanted),
        "all_services": sorted(services),
        "networks": project.networks,
        "volumes": project.volumes,
        "files": service_files(project),
        "images": image_digests(project, {n: services[n] for n in wanted}, opts),
        "options": {
            "force_recreate": force_recreate,
            "no_recreate": no_recreate,
            "no_deps": no_deps,
            "remove_orphans": remove_orphans,
            "no_start": no_start,
            "timeout": timeout,
        },
    }
    _client.request(opts.root, project.name, req, lambda m: emit(m.get("msg", "")))
    st = load_state(opts.root, project.name)
    assert st is not None
    if not remove_orphans:
        orphans = sorted(
            {c.service for c in st.containers.values() if c.service not in services and not c.oneoff}
        )
        if orphans:
            opts.notify(_orphan_warning(orphans))
    return st


def _orphan_warning(orphans: list[str]) -> str:
    return (
        f"Found orphan containers ({', '.join(orphans)}) for this project. If you removed or renamed this "
        "service in your compose file, you can run this command with the --remove-orphans flag to clean it up."
    )


def monitor_call(
    project_name: str, opts: Options, req: dict[str, Any], emit: Callable[[str], None], required: bool = True
) -> dict[str, Any] | None:
    state = load_state(opts.root, project_name)
    if state is None:
        if required:
            raise ComposeError(f"no containers found for project {project_name!r}")
        return None
    _client.ensure_monitor(opts.root, state, opts.notify)
    return _client.request(opts.root, project_name, req, lambda m: emit(m.get("msg", "")))


def wait_ready(project_name: str, opts: Options, services: set[str], timeout: float | None) -> None:
    """--wait: every container of the services running, and healthy when it has a healthcheck."""
    deadline = time.monotonic() + timeout if timeout else None
    while True:
        st = load_state(opts.root, project_name)
        cs = [c for c in (st.containers.values() if st else []) if c.service in services and not c.oneoff]
        bad = [c for c in cs if c.health == "unhealthy" or (c.status == "exited" and c.exit_code != 0)]
        if bad:
            raise ComposeError(f"container {bad[0].name} is {bad[0].health or 'exited'}")
        if all(
            (c.status == "running" and c.health in ("", "healthy"))
            or (c.status == "exited" and c.exit_code == 0)
            for c in cs
        ):
            return
        if deadline and time.monotonic() > deadline:
            raise ComposeError("timeout waiting for the services to be ready")
        time.sleep(0.1)


# -- read-only views -------------------------------------------------------------------------
def containers(
    state: ProjectState | None, services: list[str] = (), all_: bool = True, oneoff: bool = False
) -> list[ContainerState]:
    if state is None:
        return []
    out = [
        c
        for c in state.containers.values()
        if (not services or c.service in services)
        and (all_ or c.status in ("running", "paused", "restarting"))
        and (oneoff or not c.oneoff)
    ]
    return sorted(out, key=lambda c: (c.service, c.number, c.name))


def human_since(t: float) -> str:
    d = max(0, time.time() - t)
    if d < 60:
        return f"{int(d)} seconds" if d >= 2 else "Less than a second"
    if d < 3600:
        m = int(d // 60)
        return "About a minute" if m == 1 else f"{m} minutes"
    h = int(d // 3600)
    return "About an hour" if h == 1 else f"{h} hours"


def status_text(c: ContainerState) -> str:
    if c.status == "running":
        s = f"Up {human_since(c.started_at)}"
        if c.health:
            s += f" ({c.health})" if c.health != "starting" else " (health: starting)"
        return s
    if c.status == "paused":
        return f"Up {human_since(c.started_at)} (Paused)"
    if c.status == "restarting":
        return f"Restarting ({c.exit_code}) {human_since(c.finished_at)} ago"
    if c.status == "exited":
        return f"Exited ({c.exit_code}) {human_since(c.finished_at)} ago"
    return "Created"


def ports_text(c: ContainerState) -> str:
    return ", ".join(f"{p.host_ip}:{p.published}->{p.target}/{p.protocol}" for p in c.ports)


def ps_json(c: ContainerState, project: str) -> dict[str, Any]:
    return {
        "Command": '"' + " ".join(c.command)[:20] + '"',
        "CreatedAt": time.strftime("%Y-%m-%d %H:%M:%S +0000 UTC", time.gmtime(c.created_at)),
        "ExitCode": c.exit_code or 0,
        "Health": c.health,
        "ID": c.name,
        "Image": c.image,
        "Labels": ",".join(f"{k}={v}" for k, v in sorted(c.labels.items())),
        "Name": c.name,
        "Names": c.name,
        "Networks": ",".join(c.addresses),
        "Project": project,
        "Publishers": [
            {"URL": p.host_ip, "TargetPort": p.target, "PublishedPort": p.published, "Protocol": p.protocol}
            for p in c.ports
        ],
        "RunningFor": human_since(c.created_at) + " ago",
        "Service": c.service,
        "State": c.status,
        "Status": status_text(c),
    }


def read_log(root: str, project: str, c: ContainerState, tail: int | None) -> list[dict[str, Any]]:
    try:
        with open(log_path(root, project, c.name), "rb") as f:
            lines = f.read().splitlines()
    except OSError:
        return []
    if tail is not None:
        lines = lines[-tail:] if tail > 0 else []
    out = []
    for line in lines:
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return out


def follow_logs(
    root: str, project: str, names: list[ContainerState], stop: Callable[[], bool], tail: int | None
) -> Iterator[tuple[ContainerState, dict[str, Any]]]:
    """Existing lines (tail), then new ones as they are written, until stop() is true."""
    pos: dict[str, int] = {}
    for c in names:
        for rec in read_log(root, project, c, tail):
            yield c, rec
        try:
            pos[c.name] = os.path.getsize(log_path(root, project, c.name))
        except OSError:
            pos[c.name] = 0
    partial: dict[str, bytes] = {}
    while True:
        got = False
        for c in names:
            path = log_path(root, project, c.name)
            try:
                with open(path, "rb") as f:
                    f.seek(pos[c.name])
                    data = f.read()
            except OSError:
                continue
            if not data:
                continue
            got = True
            pos[c.name] += len(data)
            data = partial.pop(c.name, b"") + data
            *lines, rest = data.split(b"\n")
            if rest:
                partial[c.name] = rest
            for line in lines:
                try:
                    yield c, json.loads(line)
                except ValueError:
                    continue
        if not got:
            if stop():
                return
            time.sleep(0.1)


def exec_argv(
    state: ProjectState,
    c: ContainerState,
    cmd: list[str],
    *,
    detach: bool,
    env: list[str],
    user: str | None,
    workdir: str | None,
    tty: bool,
) -> list[str]:
    """The runtime's exec, or (runtime without exec) bockrose's namespace-joining fallback."""
    rt = Runtime(state.runtime, state.runtime_root)
    if rt.supports("exec"):
        return rt.exec_argv(c.name, cmd, tty=tty, detach=detach, env=env, user=user, cwd=workdir)
    argv = [sys.executable, "-m", "bockrose._nsenter", str(c.pid)]
    for e in env:
        argv += ["-e", e]
    if workdir:
        argv += ["-w", workdir]
    if user:
        argv += ["-u", user]
    return argv + ["--", *cmd]


def top_rows(c: ContainerState) -> list[list[str]]:
    """ps -ef style rows of the processes in the container's pid namespace."""
    if not c.pid:
        return []
    try:
        ns = os.readlink(f"/proc/{c.pid}/ns/pid")
    except OSError:
        return []
    rows = []
    hz = os.sysconf("SC_CLK_TCK")
    for pid in sorted(int(p) for p in os.listdir("/proc") if p.isdigit()):
        try:
            if os.readlink(f"/proc/{pid}/ns/pid") != ns:
                continue
            with open(f"/proc/{pid}/stat") as f:
                stat = f.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
            uid = os.stat(f"/proc/{pid}").st_uid
        except OSError:
            continue
        cpu = (int(stat[11]) + int(stat[12])) // hz
        rows.append(
            [str(uid), str(pid), stat[1], "0", "-", "?", time.strftime("%H:%M:%S", time.gmtime(cpu)), cmd]
        )
    return rows


def cgroup_stats(c: ContainerState) -> dict[str, Any]:
    """Memory and CPU from the container's cgroup (v1 hybrid or v2)."""
    out = {"mem": 0, "cpu_ns": 0, "pids": 0}
    for base, mem_file, cpu_file in (
        ("/sys/fs/cgroup/memory", "memory.usage_in_bytes", None),
        ("/sys/fs/cgroup/cpu,cpuacct", None, "cpuacct.usage"),
        ("/sys/fs/cgroup/cpuacct", None, "cpuacct.usage"),
        ("/sys/fs/cgroup/unified", "memory.current", None),
        ("/sys/fs/cgroup", "memory.current", None),
    ):
        d = base + c.cgroup
        for fname, key in ((mem_file, "mem"), (cpu_file, "cpu_ns")):
            if fname and not out[key]:
                try:
                    with open(os.path.join(d, fname)) as f:
                        out[key] = int(f.read().split()[0])
                except (OSError, ValueError):
                    pass
    try:
        with open(f"/sys/fs/cgroup/pids{c.cgroup}/pids.current") as f:
            out["pids"] = int(f.read())
    except (OSError, ValueError):
        pass
    return out


def need_state(opts: Options, name: str) -> ProjectState:
    st = load_state(opts.root, name)
    if st is None:
        raise ComposeError(f"no containers found for project {name!r}")
    return st


def check_monitor(opts: Options, st: ProjectState) -> None:
    """Commands that read state notice a killed monitor, adopt, and say so."""
    if st.containers and not pid_alive(st.monitor_pid):
        try:
            _client.ensure_monitor(opts.root, st, opts.notify)
        except MonitorError as exc:
            opts.notify(str(exc))

"""bockrose's command line: docker compose's commands, flags and output formats. Thin: parse,
call the library (_engine / the monitor), print."""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from typing import Any

from .errors import ComposeError

COLORS = ["36", "33", "32", "35", "34", "96", "93", "92", "95", "94"]


def _err(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="bockrose", description="Define and run multi-container applications on bock"
    )
    p.add_argument("-f", "--file", action="append", default=[], help="compose configuration files")
    p.add_argument("-p", "--project-name", help="project name")
    p.add_argument("--project-directory", help="alternate working directory")
    p.add_argument("--profile", action="append", default=[], help="profile to enable")
    p.add_argument("--env-file", action="append", default=[], help="alternate environment file")
    p.add_argument("--runtime", help="OCI runtime command (default: bock; runc works too)")
    p.add_argument("--image-root", help="bock-image store (default: $BOCK_IMAGE_ROOT)")
    p.add_argument("--state-root", help="bockrose state (default: $BOCKROSE_ROOT or /var/lib/bockrose)")
    p.add_argument("--ansi", choices=("never", "always", "auto"), default="auto")
    p.add_argument("--progress", default="auto")
    p.add_argument("--parallel", type=int, default=-1)
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    s = sub.add_parser("up", help="create and start containers")
    s.add_argument("-d", "--detach", action="store_true")
    s.add_argument("--build", action="store_true")
    s.add_argument("--no-build", action="store_true")
    s.add_argument("--pull", choices=("always", "missing", "never", "build"))
    s.add_argument("--force-recreate", action="store_true")
    s.add_argument("--no-recreate", action="store_true")
    s.add_argument("--no-deps", action="store_true")
    s.add_argument("--no-start", action="store_true")
    s.add_argument("--remove-orphans", action="store_true")
    s.add_argument("--scale", action="append", default=[], metavar="SERVICE=NUM")
    s.add_argument("--wait", action="store_true")
    s.add_argument("--wait-timeout", type=float)
    s.add_argument("--abort-on-container-exit", action="store_true")
    s.add_argument("--exit-code-from")
    s.add_argument("--no-log-prefix", action="store_true")
    s.add_argument("--no-color", action="store_true")
    s.add_argument("--timestamps", action="store_true")
    s.add_argument("-t", "--timeout", type=float)
    s.add_argument("--quiet-pull", action="store_true")
    s.add_argument("services", nargs="*")

    s = sub.add_parser("down", help="stop and remove containers, networks")
    s.add_argument("-v", "--volumes", action="store_true")
    s.add_argument("--remove-orphans", action="store_true")
    s.add_argument("--rmi", choices=("local", "all"))
    s.add_argument("-t", "--timeout", type=float)

    s = sub.add_parser("ps", help="list containers")
    s.add_argument("-a", "--all", action="store_true")
    s.add_argument("-q", "--quiet", action="store_true")
    s.add_argument("--services", action="store_true")
    s.add_argument("--format", default="table")
    s.add_argument("--status", action="append", default=[])
    s.add_argument("--no-trunc", action="store_true")
    s.add_argument("services_", nargs="*", metavar="SERVICE")

    s = sub.add_parser("logs", help="view output from containers")
    s.add_argument("-f", "--follow", action="store_true")
    s.add_argument("-n", "--tail", default="all")
    s.add_argument("-t", "--timestamps", action="store_true")
    s.add_argument("--no-log-prefix", action="store_true")
    s.add_argument("--no-color", action="store_true")
    s.add_argument("--index", type=int)
    s.add_argument("services", nargs="*")

    s = sub.add_parser("exec", help="execute a command in a running container")
    s.add_argument("-d", "--detach", action="store_true")
    s.add_argument("-e", "--env", action="append", default=[])
    s.add_argument("-u", "--user")
    s.add_argument("-w", "--workdir")
    s.add_argument("-T", "--no-TTY", dest="no_tty", action="store_true")
    s.add_argument("--index", type=int, default=1)
    s.add_argument("--privileged", action="store_true")
    s.add_argument("service")
    s.add_argument("cmd", nargs=argparse.REMAINDER)

    s = sub.add_parser("run", help="run a one-off command on a service")
    s.add_argument("--rm", action="store_true")
    s.add_argument("-d", "--detach", action="store_true")
    s.add_argument("-e", "--env", action="append", default=[])
    s.add_argument("--name")
    s.add_argument("--entrypoint")
    s.add_argument("--no-deps", action="store_true")
    s.add_argument("-T", "--no-TTY", dest="no_tty", action="store_true")
    s.add_argument("-u", "--user")
    s.add_argument("-w", "--workdir")
    s.add_argument("-P", "--service-ports", action="store_true")
    s.add_argument("service")
    s.add_argument("cmd", nargs=argparse.REMAINDER)

    for name in ("stop", "restart"):
        s = sub.add_parser(name, help=f"{name} services")
        s.add_argument("-t", "--timeout", type=float)
        s.add_argument("services", nargs="*")
    s = sub.add_parser("start", help="start services")
    s.add_argument("--wait", action="store_true")
    s.add_argument("services", nargs="*")
    s = sub.add_parser("kill", help="force stop service containers")
    s.add_argument("-s", "--signal", default="SIGKILL")
    s.add_argument("services", nargs="*")
    for name in ("pause", "unpause"):
        s = sub.add_parser(name, help=f"{name} services")
        s.add_argument("services", nargs="*")
    s = sub.add_parser("rm", help="remove stopped service containers")
    s.add_argument("-f", "--force", action="store_true")
    s.add_argument("-s", "--stop", action="store_true")
    s.add_argument("services", nargs="*")
    s = sub.add_parser("pull", help="pull service images")
    s.add_argument("-q", "--quiet", action="store_true")
    s.add_argument("--ignore-pull-failures", action="store_true")
    s.add_argument("--ignore-buildable", action="store_true")
    s.add_argument("--policy", choices=("missing", "always"))
    s.add_argument("services", nargs="*")
    s = sub.add_parser("push", help="push service images")
    s.add_argument("--ignore-push-failures", action="store_true")
    s.add_argument("services", nargs="*")
    s = sub.add_parser("build", help="build services (through bock-build)")
    s.add_argument("--no-cache", action="store_true")
    s.add_argument("--build-arg", action="append", default=[])
    s.add_argument("-q", "--quiet", action="store_true")
    s.add_argument("services", nargs="*")

    s = sub.add_parser("config", help="parse, resolve and render the compose file")
    s.add_argument("--format", choices=("yaml", "json"), default="yaml")
    s.add_argument("--services", action="store_true")
    s.add_argument("--volumes", action="store_true")
    s.add_argument("--networks", action="store_true")
    s.add_argument("--profiles", action="store_true")
    s.add_argument("--images", action="store_true")
    s.add_argument("--hash")
    s.add_argument("-q", "--quiet", action="store_true")
    s.add_argument("-o", "--output")

    s = sub.add_parser("port", help="print the public port for a port binding")
    s.add_argument("--protocol", default="tcp")
    s.add_argument("--index", type=int, default=1)
    s.add_argument("service")
    s.add_argument("private_port")
    s = sub.add_parser("top", help="display the running processes")
    s.add_argument("services", nargs="*")
    s = sub.add_parser("events", help="receive real time events from containers")
    s.add_argument("--json", action="store_true")
    s.add_argument("services", nargs="*")
    s = sub.add_parser("stats", help="display a live stream of container resource usage")
    s.add_argument("--no-stream", action="store_true")
    s.add_argument("--format", default="table")
    s.add_argument("services", nargs="*")
    s = sub.add_parser("images", help="list images used by the created containers")
    s.add_argument("-q", "--quiet", action="store_true")
    s.add_argument("--format", default="table")
    s.add_argument("services", nargs="*")
    s = sub.add_parser("ls", help="list running compose projects")
    s.add_argument("-a", "--all", action="store_true")
    s.add_argument("-q", "--quiet", action="store_true")
    s.add_argument("--format", default="table")
    s = sub.add_parser("wait", help="block until containers of the services stop")
    s.add_argument("--down-project", action="store_true")
    s.add_argument("services", nargs="+")
    sub.add_parser("version", help="show the bockrose version")
    return p


def _table(rows: list[list[str]], header: list[str]) -> None:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for r in [header, *rows]:
        print("   ".join(str(v).ljust(widths[i]) for i, v in enumerate(r)).rstrip())


class App:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        from ._engine import make_options

        self.opts = make_options(args.state_root, args.runtime, args.image_root, _err)
        self._project = None

    def project(self, services: list[str] = ()):
        if self._project is None:
            from ._loader import load_project

            a = self.args
            self._project = load_project(
                a.file,
                project_name=a.project_name,
                project_directory=a.project_directory,
                env_files=a.env_file,
                profiles=a.profile,
                services=services,
            )
        return self._project

    def project_name(self) -> str:
        """Commands that do not need the file still need the name: -p, or from the file."""
        if self.args.project_name:
            return self.args.project_name
        if os.environ.get("COMPOSE_PROJECT_NAME") and not self.args.file:
            return os.environ["COMPOSE_PROJECT_NAME"]
        return self.project().name

    def progress(self, msg: str) -> None:
        if msg:
            _err(f" \u2714 {msg}" if sys.stderr.isatty() else msg)

    # -- commands ----------------------------------------------------------------------------
    def cmd_version(self) -> int:
        print("bockrose version 0.1.0")
        return 0

    def cmd_config(self) -> int:
        a = self.args
        from ._models import service_hash

        if a.services:
            p = self.project()
            print("\n".join(p.services))
            return 0
        p = self.project()
        if a.volumes:
            print("\n".join(p.volumes))
            return 0
        if a.networks:
            print("\n".join(p.networks))
            return 0
        if a.profiles:
            names = sorted(
                {x for s in {**p.services, **p.disabled}.values() for x in s.get("profiles") or []}
            )
            print("\n".join(names))
            return 0
        from ._engine import image_ref, prepare_services

        if a.images:
            print("\n".join(image_ref(p, n, s) for n, s in p.services.items()))
            return 0
        if a.hash:
            services = prepare_services(p)
            want = list(services) if a.hash == "*" else a.hash.split(",")
            for n in want:
                if n not in services:
                    raise ComposeError(f"no such service: {n}")
                print(f"{n} {service_hash(services[n])}")
            return 0
        if a.quiet:
            return 0
        data = p.to_dict()
        data["services"] = prepare_services(p)
        if a.format == "json":
            text = json.dumps(data, indent=2) + "\n"
        else:
            from ._yaml import dump_yaml

            text = dump_yaml(data)
        if a.output:
            with open(a.output, "w") as f:
                f.write(text)
        else:
            sys.stdout.write(text)
        return 0

    def _scale(self) -> dict[str, int]:
        out = {}
        for s in self.args.scale:
            name, _, n = s.partition("=")
            if not n.isdigit():
                raise ComposeError(f"invalid --scale {s!r}: expected SERVICE=NUM")
            out[name] = int(n)
        return out

    def cmd_up(self) -> int:
        a = self.args
        from . import _engine

        p = self.project(a.services)
        if a.exit_code_from:
            a.abort_on_container_exit = True
        _engine.up(
            p,
            self.opts,
            targets=a.services,
            scale_override=self._scale(),
            emit=self.progress,
            force_recreate=a.force_recreate,
            no_recreate=a.no_recreate,
            no_deps=a.no_deps,
            remove_orphans=a.remove_orphans,
            pull=a.pull,
            build=a.build,
            no_build=a.no_build,
            no_start=a.no_start,
            timeout=a.timeout,
        )
        services = set(a.services or p.services)
        if a.wait:
            _engine.wait_ready(p.name, self.opts, services, a.wait_timeout)
        if a.detach or a.wait:
            return 0
        return self._attach(p.name, services, a)

    def _attach(self, name: str, services: set[str], a) -> int:
        """Foreground `up`: stream coloured logs; Ctrl-C stops; --abort-on-container-exit."""
        from . import _engine
        from ._state import load_state

        interrupted = []
        signal.signal(signal.SIGINT, lambda *_: interrupted.append(1))
        st = load_state(self.opts.root, name)
        cs = _engine.containers(st, sorted(services))
        exit_code = 0
        width = max([len(f"{c.service}-{c.number}") for c in cs] or [0])
        colors = {c.name: COLORS[i % len(COLORS)] for i, c in enumerate(cs)}
        use_color = sys.stdout.isatty() and not a.no_color
        abort: list[str] = []

        def stop() -> bool:
            if interrupted:
                return True
            st2 = load_state(self.opts.root, name)
            cur = _engine.containers(st2, sorted(services))
            if a.abort_on_container_exit:
                ex = [c for c in cur if c.status == "exited"]
                if ex:
                    abort.append(ex[0].service)
                    return True
            return all(c.status == "exited" for c in cur)

        for c, rec in _engine.follow_logs(self.opts.root, name, cs, stop, None):
            prefix = "" if a.no_log_prefix else f"{c.service}-{c.number}".ljust(width) + "  | "
            if use_color and prefix:
                prefix = f"\033[{colors[c.name]}m{prefix}\033[0m"
            sys.stdout.write(prefix + rec["log"].rstrip("\n") + "\n")
            sys.stdout.flush()
        st = load_state(self.opts.root, name)
        if a.exit_code_from:
            c = next((c for c in _engine.containers(st, [a.exit_code_from])), None)
            exit_code = (c.exit_code or 0) if c else 0
        elif abort:
            c = next((c for c in _engine.containers(st, [abort[0]]) if c.status == "exited"), None)
            exit_code = (c.exit_code or 0) if c else 0
        if interrupted or abort:
            _err("Gracefully stopping... (press Ctrl+C again to force)")
            _engine.monitor_call(
                name,
                self.opts,
                {"op": "stop", "services": [], "timeout": a.timeout},
                self.progress,
                required=False,
            )
            if interrupted:
                return 130
        return exit_code

    def cmd_down(self) -> int:
        a = self.args
        from ._engine import monitor_call
        from ._state import load_state, pid_alive

        name = self.project_name()
        st = load_state(self.opts.root, name)
        if st is None:
            return 0
        res = (
            monitor_call(
                name, self.opts, {"op": "down", "volumes": a.volumes, "timeout": a.timeout}, self.progress
            )
            or {}
        )
        deadline = time.monotonic() + 10
        while pid_alive(res.get("pid", 0)) and time.monotonic() < deadline:  # down leaves no monitor either
            time.sleep(0.01)
        return 0

    def cmd_ps(self) -> int:
        a = self.args
        from . import _engine
        from ._state import load_state

        name = self.project_name()
        st = load_state(self.opts.root, name)
        if st is not None:
            _engine.check_monitor(self.opts, st)
        cs = _engine.containers(st, a.services_, all_=a.all or bool(a.status))
        if a.status:
            cs = [c for c in cs if c.status in a.status]
        if a.services:
            print("\n".join(sorted({c.service for c in cs})))
            return 0
        if a.quiet:
            print("\n".join(c.name for c in cs))
            return 0
        if a.format == "json":
            for c in cs:
                print(json.dumps(_engine.ps_json(c, name)))
            return 0
        rows = [
            [
                c.name,
                c.image,
                '"' + " ".join(c.command)[:20] + '"',
                c.service,
                _engine.human_since(c.created_at) + " ago",
                _engine.status_text(c),
                _engine.ports_text(c),
            ]
            for c in cs
        ]
        _table(rows, ["NAME", "IMAGE", "COMMAND", "SERVICE", "CREATED", "STATUS", "PORTS"])
        return 0

    def cmd_logs(self) -> int:
        a = self.args
        from . import _engine
        from ._state import load_state

        name = self.project_name()
        st = load_state(self.opts.root, name)
        cs = _engine.containers(st, a.services, oneoff=True)
        if a.index:
            cs = [c for c in cs if c.number == a.index]
        tail = None if a.tail == "all" else int(a.tail)
        width = max([len(f"{c.service}-{c.number}") for c in cs] or [0])
        color = sys.stdout.isatty() and not a.no_color

        def fmt(c, rec: dict[str, Any]) -> str:
            line = rec["log"].rstrip("\n")
            if a.timestamps:
                line = f"{rec['time']} {line}"
            if not a.no_log_prefix:
                prefix = f"{c.service}-{c.number}".ljust(width) + "  | "
                if color:
                    prefix = f"\033[{COLORS[hash(c.service) % len(COLORS)]}m{prefix}\033[0m"
                line = prefix + line
            return line

        if not a.follow:
            recs = [
                (rec["time"], c, rec) for c in cs for rec in _engine.read_log(self.opts.root, name, c, tail)
            ]
            for _, c, rec in sorted(recs, key=lambda x: x[0]):
                print(fmt(c, rec))
            return 0
        try:
            for c, rec in _engine.follow_logs(self.opts.root, name, cs, lambda: False, tail):
                print(fmt(c, rec), flush=True)
        except KeyboardInterrupt:
            return 0
        return 0

    def _container(self, service: str, index: int = 1):
        from . import _engine

        name = self.project_name()
        st = _engine.need_state(self.opts, name)
        _engine.check_monitor(self.opts, st)
        from ._state import load_state

        st = load_state(self.opts.root, name) or st
        cs = [c for c in _engine.containers(st, [service]) if c.number == index]
        if not cs:
            raise ComposeError(f"service {service!r} is not running")
        return st, cs[0]

    def cmd_exec(self) -> int:
        a = self.args
        from . import _engine

        if not a.cmd:
            raise ComposeError("exec: no command given")
        st, c = self._container(a.service, a.index)
        if c.status != "running":
            raise ComposeError(f"container {c.name} is not running")
        argv = _engine.exec_argv(
            st,
            c,
            a.cmd,
            detach=a.detach,
            env=a.env,
            user=a.user,
            workdir=a.workdir,
            tty=not a.no_tty and sys.stdin.isatty() and sys.stdout.isatty(),
        )
        if a.detach and "bockrose._nsenter" in " ".join(argv):
            subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
            return 0
        return subprocess.call(argv)

    def cmd_run(self) -> int:
        a = self.args
        import shlex

        from . import _engine
        from ._engine import prepare_services

        p = self.project([a.service])
        if a.service not in p.services:
            raise ComposeError(f"no such service: {a.service}")
        services = prepare_services(p)
        svc = dict(services[a.service])
        deps = [] if a.no_deps else list(svc.get("depends_on") or {})
        if deps:
            _engine.up(p, self.opts, targets=deps, scale_override={}, emit=self.progress)
        else:
            _engine.ensure_images(p, {a.service: svc}, self.opts, emit=self.progress)
        if not a.service_ports:
            svc.pop("ports", None)
        if a.env:
            env = dict(svc.get("environment") or {})
            env.update(dict(e.split("=", 1) if "=" in e else (e, os.environ.get(e, "")) for e in a.env))
            svc["environment"] = env
        if a.entrypoint is not None:
            svc["entrypoint"] = shlex.split(a.entrypoint)
        if a.user:
            svc["user"] = a.user
        if a.workdir:
            svc["working_dir"] = a.workdir
        svc.pop("restart", None)
        svc.pop("healthcheck", None)
        from . import _client
        from ._state import load_state

        st = load_state(self.opts.root, p.name) or _engine.new_state(p, self.opts)
        _client.ensure_monitor(self.opts.root, st, self.opts.notify)
        res = _client.request(
            self.opts.root,
            p.name,
            {
                "op": "run",
                "service": a.service,
                "service_config": svc,
                "command": a.cmd or None,
                "name": a.name,
                "networks": p.networks,
                "volumes": p.volumes,
            },
            lambda m: None,
        )
        cname = res["name"]
        if a.detach:
            print(cname)
            return 0

        def current():
            s = load_state(self.opts.root, p.name)
            return s.containers.get(cname) if s else None

        c = current()
        for _c, rec in _engine.follow_logs(
            self.opts.root, p.name, [c], lambda: (current() or c).status == "exited", None
        ):
            (sys.stdout if rec.get("stream") == "stdout" else sys.stderr).write(rec["log"])
        sys.stdout.flush()
        code = (current() or c).exit_code or 0
        if a.rm:
            _engine.monitor_call(p.name, self.opts, {"op": "rm_one", "name": cname}, lambda m: None)
        return code

    def _simple(self, op: str, **extra: Any) -> int:
        from ._engine import monitor_call

        name = self.project_name()
        monitor_call(name, self.opts, {"op": op, "services": self.args.services, **extra}, self.progress)
        return 0

    def cmd_stop(self) -> int:
        return self._simple("stop", timeout=self.args.timeout)

    def cmd_restart(self) -> int:
        return self._simple("restart", timeout=self.args.timeout)

    def cmd_start(self) -> int:
        r = self._simple("start")
        if self.args.wait:
            from ._engine import wait_ready

            st = self.project_name()
            wait_ready(st, self.opts, set(self.args.services or self.project().services), None)
        return r

    def cmd_kill(self) -> int:
        sig = self.args.signal
        sig = sig if sig.isdigit() or sig.startswith("SIG") else "SIG" + sig
        return self._simple("kill", signal=sig)

    def cmd_pause(self) -> int:
        return self._simple("pause")

    def cmd_unpause(self) -> int:
        return self._simple("unpause")

    def cmd_rm(self) -> int:
        if self.args.stop:
            self._simple("stop")
        return self._simple("rm", force=self.args.force)

    def cmd_pull(self) -> int:
        from ._engine import pull_services

        a = self.args
        pull_services(
            self.project(),
            self.opts,
            a.services,
            policy=a.policy,
            ignore_buildable=a.ignore_buildable,
            ignore_failures=a.ignore_pull_failures,
            emit=self.progress,
        )
        return 0

    def cmd_push(self) -> int:
        from . import _engine

        p = self.project()
        tool = _engine.tool_path("bock-image")
        for n, s in p.services.items():
            if (self.args.services and n not in self.args.services) or not s.get("image"):
                continue
            argv = (
                [tool]
                + (["--root", self.opts.image_root] if self.opts.image_root else [])
                + ["push", s["image"]]
            )
            if subprocess.call(argv) != 0 and not self.args.ignore_push_failures:
                raise ComposeError(f"push {s['image']} failed")
        return 0

    def cmd_build(self) -> int:
        from ._engine import run_build

        p = self.project()
        for n, s in p.services.items():
            if s.get("build") and (not self.args.services or n in self.args.services):
                run_build(
                    p,
                    n,
                    s,
                    self.opts,
                    self.progress,
                    no_cache=self.args.no_cache,
                    build_args=self.args.build_arg,
                )
        return 0

    def cmd_port(self) -> int:
        a = self.args
        _st, c = self._container(a.service, a.index)
        port, _, proto = a.private_port.partition("/")
        proto = proto or a.protocol
        for p in c.ports:
            if p.target == int(port) and p.protocol == proto:
                print(f"{p.host_ip}:{p.published}")
                return 0
        raise ComposeError(f"no port {port}/{proto} for container {c.name}")

    def cmd_top(self) -> int:
        from . import _engine

        name = self.project_name()
        st = _engine.need_state(self.opts, name)
        for c in _engine.containers(st, self.args.services, all_=False):
            print(c.name)
            _table(_engine.top_rows(c), ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"])
            print()
        return 0

    def cmd_events(self) -> int:
        from ._state import project_dir

        name = self.project_name()
        path = os.path.join(project_dir(self.opts.root, name), "events.jsonl")
        pos = os.path.getsize(path) if os.path.exists(path) else 0
        try:
            while True:
                try:
                    with open(path) as f:
                        f.seek(pos)
                        data = f.read()
                except OSError:
                    data = ""
                if data and data.endswith("\n"):
                    pos += len(data.encode())
                    for line in data.splitlines():
                        ev = json.loads(line)
                        if self.args.services and ev.get("service") not in self.args.services:
                            continue
                        if self.args.json:
                            print(json.dumps(ev), flush=True)
                        else:
                            ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(ev["time"]))
                            attrs = ", ".join(f"{k}={v}" for k, v in (ev.get("attributes") or {}).items())
                            print(f"{ts} container {ev['action']} {ev.get('id', '')} ({attrs})", flush=True)
                time.sleep(0.2)
        except KeyboardInterrupt:
            return 0

    def cmd_stats(self) -> int:
        from . import _engine

        name = self.project_name()
        prev: dict[str, tuple[float, int]] = {}
        while True:
            st = _engine.need_state(self.opts, name)
            rows = []
            for c in _engine.containers(st, self.args.services, all_=False):
                s = _engine.cgroup_stats(c)
                now = time.monotonic()
                t0, cpu0 = prev.get(c.name, (now, s["cpu_ns"]))
                pct = (s["cpu_ns"] - cpu0) / 1e9 / (now - t0) * 100 if now > t0 else 0.0
                prev[c.name] = (now, s["cpu_ns"])
                rows.append([c.name, c.name, f"{pct:.2f}%", f"{s['mem'] / (1 << 20):.1f}MiB", str(s["pids"])])
            if self.args.format == "json":
                for r in rows:
                    print(
                        json.dumps(dict(zip(["ID", "Name", "CPUPerc", "MemUsage", "PIDs"], r, strict=False)))
                    )
            else:
                _table(rows, ["CONTAINER ID", "NAME", "CPU %", "MEM USAGE", "PIDS"])
            if self.args.no_stream:
                return 0
            time.sleep(1)

    def cmd_images(self) -> int:
        from . import _engine

        name = self.project_name()
        st = _engine.need_state(self.opts, name)
        import bock_image

        store = bock_image.Store(self.opts.image_root or st.image_root or None)
        rows = []
        for c in _engine.containers(st, self.args.services):
            try:
                d = store.resolve(c.image)
                iid, size = d.digest.split(":", 1)[1][:12], d.size
            except bock_image.ImageError:
                iid, size = "<missing>", 0
            repo, _, tag = (
                c.image.rpartition(":") if ":" in c.image.rsplit("/", 1)[-1] else (c.image, "", "latest")
            )
            rows.append([c.name, repo, tag, iid, str(size)])
        if self.args.quiet:
            print("\n".join(sorted({r[3] for r in rows})))
        elif self.args.format == "json":
            print(
                json.dumps(
                    [
                        dict(zip(["ContainerName", "Repository", "Tag", "ID", "Size"], r, strict=False))
                        for r in rows
                    ]
                )
            )
        else:
            _table(rows, ["CONTAINER", "REPOSITORY", "TAG", "IMAGE ID", "SIZE"])
        return 0

    def cmd_ls(self) -> int:
        from ._state import list_projects, load_state

        rows = []
        for name in list_projects(self.opts.root):
            st = load_state(self.opts.root, name)
            if st is None:
                continue
            counts: dict[str, int] = {}
            for c in st.containers.values():
                counts[c.status] = counts.get(c.status, 0) + 1
            if not self.args.all and not counts.get("running"):
                continue
            status = ", ".join(f"{k}({v})" for k, v in sorted(counts.items()))
            rows.append([name, status, ",".join(st.config_files)])
        if self.args.quiet:
            print("\n".join(r[0] for r in rows))
        elif self.args.format == "json":
            print(json.dumps([{"Name": r[0], "Status": r[1], "ConfigFiles": r[2]} for r in rows]))
        else:
            _table(rows, ["NAME", "STATUS", "CONFIG FILES"])
        return 0

    def cmd_wait(self) -> int:
        from . import _engine
        from ._state import load_state

        name = self.project_name()
        code = 0
        while True:
            st = load_state(self.opts.root, name)
            cs = _engine.containers(st, self.args.services)
            if all(c.status == "exited" for c in cs):
                for c in cs:
                    print(c.exit_code)
                    code = code or (c.exit_code or 0)
                break
            time.sleep(0.2)
        if self.args.down_project:
            _engine.monitor_call(
                name, self.opts, {"op": "down", "volumes": False, "timeout": None}, self.progress
            )
        return code


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 0
    if args.command == "version":
        print("bockrose version 0.1.0")
        return 0
    try:
        app = App(args)
        return getattr(app, f"cmd_{args.command}")()
    except ComposeError as exc:
        _err(f"Error: {exc}" if not str(exc).startswith("Error") else str(exc))
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())

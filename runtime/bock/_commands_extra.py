"""The drop-in subcommands: exec, ps, pause, resume, update, events, features, and the
refusals for checkpoint/restore. Thin: parse, call the library, print.

Loaded by ``bock._main`` only for these names, so create/start/kill pay nothing for them.
"""

from __future__ import annotations

import sys

from bock import _args
from bock.errors import BockError, UsageError

EXEC_FLAGS: tuple = (
    (("process", "p"), "str", "process"),
    (("tty", "t"), "bool", "tty"),
    (("cwd",), "str", "cwd"),
    (("env", "e"), "list", "env"),
    (("user", "u"), "str", "user"),
    (("additional-gids", "g"), "list", "additional_gids"),
    (("cap", "c"), "list", "cap"),
    (("no-new-privs",), "bool", "no_new_privs"),
    (("apparmor",), "str", "apparmor"),
    (("process-label",), "str", "process_label"),
    (("preserve-fds",), "str", "preserve_fds"),
    (("detach", "d"), "bool", "detach"),
    (("pid-file",), "str", "pid_file"),
    (("console-socket",), "str", "console_socket"),
    (("pidfd-socket",), "str", "pidfd_socket"),
    (("ignore-paused",), "bool", "ignore_paused"),
    (("cgroup",), "list", "cgroup"),
)


def _one_id(p: _args.Parsed, cmd: str) -> str:
    if len(p.args) != 1:
        raise UsageError(f'"{cmd}" requires exactly 1 argument(s)')
    return p.args[0]


def cmd_exec(ctx, argv: list[str]) -> int:
    import os

    p = _args.parse(argv, EXEC_FLAGS)
    if not p.args:
        raise UsageError('"exec" requires a minimum of 1 argument(s)')
    if not p["process"] and len(p.args) < 2:
        raise UsageError("exec args cannot be empty")
    preserve = p["preserve_fds"] or "0"
    if not preserve.isdigit():
        raise UsageError(f'invalid value "{preserve}" for flag -preserve-fds')
    try:
        from bock._lifecycle.exec import ExecOptions, exec_process, process_from_args, process_from_file
        from bock._state import Container

        container = Container.load(ctx.root, p.args[0])
        if p["process"]:
            process = process_from_file(p["process"])
        else:
            process = process_from_args(
                container.config,
                p.args[1:],
                tty=p["tty"],
                cwd=p["cwd"],
                env=p["env"],
                user=p["user"],
                additional_gids=p["additional_gids"],
                cap=p["cap"],
                no_new_privs=p["no_new_privs"],
                apparmor=p["apparmor"],
                process_label=p["process_label"],
            )
        opts = ExecOptions(
            cgroup=p["cgroup"],
            console_socket=p["console_socket"],
            detach=p["detach"],
            ignore_paused=p["ignore_paused"],
            pid_file=os.path.abspath(p["pid_file"]) if p["pid_file"] else None,
            pidfd_socket=p["pidfd_socket"],
            preserve_fds=int(preserve),
        )
        return exec_process(container, process, opts)
    except BockError as err:
        raise _exec_failed(str(err)) from None
    except OSError as err:
        raise _exec_failed(err.strerror if err.strerror and not err.filename else str(err)) from None


def _exec_failed(msg: str) -> BockError:
    """runc: every exec failure is "exec failed: ..." with exit status 255."""
    err = BockError(f"exec failed: {msg}")
    err.exit_code = 255
    return err


def cmd_ps(ctx, argv: list[str]) -> int:
    from bock._lifecycle.ps import container_pids, ps_table
    from bock._state import Container

    p = _args.parse(argv, ((("format", "f"), "str", "format"),))
    if not p.args:
        raise UsageError('"ps" requires a minimum of 1 argument(s)')
    fmt = p["format"] or "table"
    if fmt not in ("table", "json"):
        raise UsageError(f"invalid format option: {fmt}")
    pids = container_pids(Container.load(ctx.root, p.args[0]))
    if fmt == "json":
        if len(p.args) > 1:
            raise UsageError("ps: no ps arguments allowed with --format json")
        sys.stdout.write("[" + ",".join(str(x) for x in pids) + "]\n")
    else:
        sys.stdout.write(ps_table(pids, p.args[1:]))
    return 0


def cmd_pause(ctx, argv: list[str]) -> int:
    from bock._lifecycle.pause import pause
    from bock._state import Container

    pause(Container.load(ctx.root, _one_id(_args.parse(argv, ()), "pause")))
    return 0


def cmd_resume(ctx, argv: list[str]) -> int:
    from bock._lifecycle.pause import resume
    from bock._state import Container

    resume(Container.load(ctx.root, _one_id(_args.parse(argv, ()), "resume")))
    return 0


UPDATE_FLAGS: tuple = ((("resources", "r"), "str", "resources"),) + tuple(
    ((name,), "str", name)
    for name in (
        "memory",
        "memory-reservation",
        "memory-swap",
        "kernel-memory",
        "kernel-memory-tcp",
        "cpu-shares",
        "cpu-quota",
        "cpu-period",
        "cpu-rt-period",
        "cpu-rt-runtime",
        "cpuset-cpus",
        "cpuset-mems",
        "pids-limit",
        "blkio-weight",
        "l3-cache-schema",
        "mem-bw-schema",
    )
)


def cmd_update(ctx, argv: list[str]) -> int:
    from bock._lifecycle.update import merge, read_resources, resources_from_flags, update
    from bock._state import Container

    p = _args.parse(argv, UPDATE_FLAGS)
    cid = _one_id(p, "update")
    changes: dict = {}
    if p["resources"]:
        changes = read_resources(p["resources"], sys.stdin)
    flags = {name: p[name] for _names, _k, name in UPDATE_FLAGS[1:] if p[name] is not None}
    changes = merge(changes, resources_from_flags(flags))
    if not changes:
        raise UsageError("update: no resources given (--resources or a resource flag)")
    update(Container.load(ctx.root, cid), changes)
    return 0


def cmd_events(ctx, argv: list[str]) -> int:
    from bock._lifecycle.events import events, parse_duration
    from bock._state import Container

    p = _args.parse(argv, ((("stats",), "bool", "stats"), (("interval",), "str", "interval")))
    interval = parse_duration(p["interval"]) if p["interval"] else 5.0
    events(
        Container.load(ctx.root, _one_id(p, "events")),
        stats_once=p["stats"],
        interval=interval,
        out=sys.stdout,
    )
    return 0


def cmd_features(ctx, argv: list[str]) -> int:
    from bock import _jsonlite
    from bock._lifecycle.features import features

    if argv:
        raise UsageError('"features" takes no arguments')
    sys.stdout.write(_jsonlite.dumps(features(), indent=4) + "\n")
    return 0


def cmd_unsupported(name: str):
    def handler(ctx, argv: list[str]) -> int:
        raise BockError(f"{name} is not supported by bock (no CRIU support)")

    handler.own_help = True  # `checkpoint --help` must fail too: podman probes it
    return handler


COMMANDS = {
    "exec": cmd_exec,
    "ps": cmd_ps,
    "pause": cmd_pause,
    "resume": cmd_resume,
    "update": cmd_update,
    "events": cmd_events,
    "features": cmd_features,
    "checkpoint": cmd_unsupported("checkpoint"),
    "restore": cmd_unsupported("restore"),
}

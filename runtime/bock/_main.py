"""The ``bock`` command line: parse, call the library, print. Nothing else.

Imports are lazy: each subcommand loads only what it uses, because every
millisecond of start-up is paid by every runtime call containerd or podman makes.
"""

from __future__ import annotations

import os
import sys

from bock import _args
from bock._log import Logger, log
from bock.errors import BockError, UsageError

USAGE = """NAME:
   bock - a runc-compatible OCI container runtime

USAGE:
   bock [global options] command [command options] [arguments...]

COMMANDS:
   create    create a container
   start     executes the user defined process in a created container
   state     output the state of a container
   kill      kill sends the specified signal (default: SIGTERM) to the container's init process
   delete    delete any resources held by the container often used with detached container
   run       create and run a container
   list      lists containers started by bock with the given root
   spec      create a new specification file
   exec      execute new process inside the container
   ps        ps displays the processes running inside a container
   pause     pause suspends all processes inside the container
   resume    resumes all processes that have been previously paused
   update    update container resource constraints
   events    display container events such as OOM notifications, cpu, memory, and IO usage statistics
   features  show the enabled features
   checkpoint, restore  not supported (exit 1)

GLOBAL OPTIONS:
   --root value        root directory for storage of container state (default: "/run/bock")
   --log value         set the log file to write bock logs to (default is stderr)
   --log-format value  set the log format ('text' (default), or 'json')
   --debug             enable debug logging
   --systemd-cgroup    use systemd cgroup driver (cgroupsPath is slice:prefix:name)
   --rootless value    ignore cgroup permission errors ('true', 'false', or 'auto')
   --criu value        accepted for compatibility and ignored
   --help, -h          show help
   --version, -v       print the version
"""

CREATE_FLAGS: tuple = (
    (("bundle", "b"), "str", "bundle"),
    (("console-socket",), "str", "console_socket"),
    (("pidfd-socket",), "str", "pidfd_socket"),
    (("pid-file",), "str", "pid_file"),
    (("no-pivot",), "bool", "no_pivot"),
    (("no-new-keyring",), "bool", "no_new_keyring"),
    (("preserve-fds",), "str", "preserve_fds"),
    (("detach", "d"), "bool", "detach"),
)
RUN_FLAGS = CREATE_FLAGS + (
    (("keep",), "bool", "keep"),
    (("no-subreaper",), "bool", "no_subreaper"),
)


class Context:
    __slots__ = ("g", "root")

    def __init__(self, g: _args.Parsed) -> None:
        self.g = g
        root = g["root"] or "/run/bock"
        root = os.path.abspath(root)
        if root == "/":
            raise UsageError("--root: refusing to use / as the state directory")
        self.root = root


def _one_id(p: _args.Parsed, cmd: str) -> str:
    if len(p.args) != 1:
        raise UsageError(f'"{cmd}" requires exactly 1 argument(s)')
    return p.args[0]


def _create_opts(ctx: Context, p: _args.Parsed, cid: str):
    from bock._lifecycle.create import CreateOptions

    bundle = os.path.abspath(p["bundle"] or ".")
    pid_file = os.path.abspath(p["pid_file"]) if p["pid_file"] else None
    preserve = p["preserve_fds"] or "0"
    if not preserve.isdigit():
        raise UsageError(f'invalid value "{preserve}" for flag -preserve-fds')
    return CreateOptions(
        ctx.root,
        cid,
        bundle,
        pid_file=pid_file,
        console_socket=p["console_socket"],
        pidfd_socket=p["pidfd_socket"],
        no_pivot=p["no_pivot"],
        no_new_keyring=p["no_new_keyring"],
        preserve_fds=int(preserve),
        systemd=ctx.g["systemd_cgroup"],
        rootless=ctx.g["rootless"],
    )


def cmd_create(ctx: Context, argv: list[str]) -> int:
    from bock._lifecycle.config import read_config
    from bock._lifecycle.create import create

    p = _args.parse(argv, CREATE_FLAGS)
    cid = _one_id(p, "create")
    opts = _create_opts(ctx, p, cid)
    doc, spec = read_config(opts.bundle)
    create(opts, doc, spec)
    return 0


def cmd_run(ctx: Context, argv: list[str]) -> int:
    from bock._lifecycle.config import read_config
    from bock._lifecycle.run import run

    p = _args.parse(argv, RUN_FLAGS)
    cid = _one_id(p, "run")
    opts = _create_opts(ctx, p, cid)
    doc, spec = read_config(opts.bundle)
    if spec.process.terminal and p["detach"] and not opts.console_socket:
        raise UsageError("cannot allocate tty if runc will detach without setting console socket")
    return run(opts, doc, spec, detach=p["detach"], keep=p["keep"])


def cmd_start(ctx: Context, argv: list[str]) -> int:
    from bock._lifecycle.start import start
    from bock._state import Container

    p = _args.parse(argv, ())
    start(Container.load(ctx.root, _one_id(p, "start")))
    return 0


def cmd_state(ctx: Context, argv: list[str]) -> int:
    from bock import _jsonlite
    from bock._state import Container

    p = _args.parse(argv, ())
    state = Container.load(ctx.root, _one_id(p, "state")).oci_state()
    sys.stdout.write(_jsonlite.dumps(state, indent=2))
    return 0


def cmd_kill(ctx: Context, argv: list[str]) -> int:
    from bock._lifecycle.kill import kill, parse_signal
    from bock._state import Container

    p = _args.parse(argv, ((("all", "a"), "bool", "all"),))
    if not 1 <= len(p.args) <= 2:
        raise UsageError('"kill" requires a minimum of 1 and a maximum of 2 arguments')
    sig = parse_signal(p.args[1] if len(p.args) == 2 else "SIGTERM")
    kill(Container.load(ctx.root, p.args[0]), sig, p["all"])
    return 0


def cmd_delete(ctx: Context, argv: list[str]) -> int:
    from bock._lifecycle.delete import delete

    p = _args.parse(argv, ((("force", "f"), "bool", "force"),))
    delete(ctx.root, _one_id(p, "delete"), p["force"], log)
    return 0


def cmd_list(ctx: Context, argv: list[str]) -> int:
    from bock._lifecycle.listing import states, table

    p = _args.parse(argv, ((("format", "f"), "str", "format"), (("quiet", "q"), "bool", "quiet")))
    rows = states(ctx.root)
    fmt = p["format"] or "table"
    if p["quiet"]:
        sys.stdout.write("".join(r["id"] + "\n" for r in rows))
    elif fmt == "json":
        from bock import _jsonlite

        sys.stdout.write(_jsonlite.dumps(rows) + "\n")
    elif fmt == "table":
        sys.stdout.write(table(rows))
    else:
        raise UsageError(f"invalid format option: {fmt}")
    return 0


def cmd_spec(ctx: Context, argv: list[str]) -> int:
    from bock._lifecycle.spec import write_spec

    p = _args.parse(argv, ((("bundle", "b"), "str", "bundle"), (("rootless",), "bool", "rootless")))
    write_spec(p["bundle"] or ".", p["rootless"])
    return 0


COMMANDS = {
    "create": cmd_create,
    "start": cmd_start,
    "state": cmd_state,
    "kill": cmd_kill,
    "delete": cmd_delete,
    "run": cmd_run,
    "list": cmd_list,
    "spec": cmd_spec,
}
FAILED_PREFIX = {"create": "bock create failed: ", "run": "bock run failed: "}


def _version() -> str:
    from bock import SPEC_VERSION, __version__

    commit = "unknown"
    here = os.path.dirname(__file__)
    try:
        with open(os.path.join(here, "COMMIT")) as f:
            commit = f.read().strip() or commit
    except OSError:
        pass
    return f"bock version {__version__}\ncommit: {commit}\nspec: {SPEC_VERSION}\n"


def main(argv: list[str]) -> int:
    global log
    cmd = ""
    try:
        g, rest = _args.parse_global(argv)
        if g["log_format"] not in ("text", "json"):
            raise UsageError(f"invalid log-format: {g['log_format']}")
        import bock._log as logmod

        logmod.log = log = Logger(g["log"], g["log_format"], g["debug"])
        if g["version"]:
            sys.stdout.write(_version())
            return 0
        if g["help"] or not rest:
            sys.stdout.write(USAGE)
            return 0
        cmd, args = rest[0], rest[1:]
        if cmd in ("help", "h"):
            sys.stdout.write(USAGE)
            return 0
        handler = COMMANDS.get(cmd)
        if handler is None:
            handler = _extra_command(cmd)
        if ("-h" in args[:1] or "--help" in args[:1]) and not getattr(handler, "own_help", False):
            sys.stdout.write(f"bock {cmd}: see `bock --help`\n")
            return 0
        if g["criu"]:
            log.debug("--criu is accepted for compatibility and ignored")
        from bock._warm import warmer

        if cmd in ("create", "run", "exec"):
            # Before the create (or exec) code is even imported: the cgroup attach's grace
            # period overlaps all of it (bock._warm; _cgroups itself costs 1.5 ms to import).
            # bin/bock has usually started it already, before importing this module.
            warmer.start()
        else:
            warmer.wait()  # bin/bock's guess was wrong: no other command runs with the thread
        return handler(Context(g), args)
    except BockError as err:
        msg = str(err)
        if isinstance(err, UsageError):
            msg = f"{msg}\nIncorrect Usage." if "Incorrect Usage" not in msg else msg
        log.error(FAILED_PREFIX.get(cmd, "") + msg if cmd in FAILED_PREFIX else msg)
        return err.exit_code
    except OSError as err:
        log.error(
            FAILED_PREFIX.get(cmd, "") + (err.strerror if err.strerror and not err.filename else str(err))
        )
        return 1
    except KeyboardInterrupt:
        return 130


def _extra_command(cmd: str):
    """Subcommands that live in their own modules (exec, ps, pause, ...)."""
    try:
        from bock import _commands_extra
    except ImportError:
        _commands_extra = None
    handler = getattr(_commands_extra, "COMMANDS", {}).get(cmd) if _commands_extra else None
    if handler is None:
        raise UsageError(f"No help topic for '{cmd}'")
    return handler

"""A runc-compatible command-line parser (Go ``flag``/urfave-cli semantics).

Accepted forms: ``--flag value``, ``--flag=value``, ``-flag value`` (single-dash long
flags, as go-runc sends ``-no-subreaper``), short aliases (``-b``, ``-a``, ``-f``, ...),
``--bool``, ``--bool=true|false``. Flag parsing stops at the first positional
argument (so ``exec ID cmd --x`` keeps ``--x`` for the command) or at ``--``.
"""

from __future__ import annotations

from bock.errors import UsageError

# kind: "bool" | "str" | "list" (repeatable)
FlagSpec = tuple[tuple[str, ...], str, str]  # (names, kind, dest)


class Parsed:
    __slots__ = ("args", "flags")

    def __init__(self, flags: dict, args: list[str]) -> None:
        self.flags = flags
        self.args = args

    def __getitem__(self, key: str):
        return self.flags[key]

    def get(self, key: str, default=None):
        return self.flags.get(key, default)


_TRUE = {"true": True, "1": True, "t": True, "yes": True, "false": False, "0": False, "f": False, "no": False}


def parse(argv: list[str], specs: tuple[FlagSpec, ...], *, stop_at_positional: bool = True) -> Parsed:
    by_name: dict[str, tuple[str, str]] = {}
    flags: dict[str, object] = {}
    for names, kind, dest in specs:
        for name in names:
            by_name[name] = (kind, dest)
        flags[dest] = [] if kind == "list" else (False if kind == "bool" else None)
    args: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        i += 1
        if arg == "--":
            args.extend(argv[i:])
            break
        if len(arg) < 2 or arg[0] != "-":
            args.append(arg)
            if stop_at_positional:
                args.extend(argv[i:])
                break
            continue
        name, eq, value = arg.lstrip("-").partition("=")
        if name not in by_name:
            raise UsageError(f"flag provided but not defined: -{name}")
        kind, dest = by_name[name]
        if kind == "bool":
            if eq:
                if value.lower() not in _TRUE:
                    raise UsageError(f'invalid boolean value "{value}" for -{name}')
                flags[dest] = _TRUE[value.lower()]
            else:
                flags[dest] = True
            continue
        if not eq:
            if i >= len(argv):
                raise UsageError(f"flag needs an argument: -{name}")
            value = argv[i]
            i += 1
        if kind == "list":
            flags[dest].append(value)  # type: ignore[union-attr]
        else:
            flags[dest] = value
    return Parsed(flags, args)


GLOBAL_FLAGS: tuple[FlagSpec, ...] = (
    (("root",), "str", "root"),
    (("log",), "str", "log"),
    (("log-format",), "str", "log_format"),
    (("debug",), "bool", "debug"),
    (("systemd-cgroup",), "bool", "systemd_cgroup"),
    (("rootless",), "str?", "rootless"),
    (("criu",), "str", "criu"),
    (("help", "h"), "bool", "help"),
    (("version", "v"), "bool", "version"),
)


def parse_global(argv: list[str]) -> tuple[Parsed, list[str]]:
    """Parse the global flags before the subcommand; return them and the rest."""
    flags: dict[str, object] = {"root": None, "log": None, "log_format": "text", "debug": False}
    flags.update(systemd_cgroup=False, rootless="auto", criu=None, help=False, version=False)
    by_name = {n: (k, d) for names, k, d in GLOBAL_FLAGS for n in names}
    i = 0
    while i < len(argv):
        arg = argv[i]
        if not arg.startswith("-") or arg == "-" or arg == "--":
            break
        name, eq, value = arg.lstrip("-").partition("=")
        if name not in by_name:
            raise UsageError(f"flag provided but not defined: -{name}")
        kind, dest = by_name[name]
        i += 1
        if kind == "bool":
            if eq and value.lower() not in _TRUE:
                raise UsageError(f'invalid boolean value "{value}" for -{name}')
            flags[dest] = _TRUE[value.lower()] if eq else True
        elif kind == "str?":  # --rootless[=]true|false|auto; bare means true
            if not eq and i < len(argv) and argv[i] in ("true", "false", "auto"):
                value, eq = argv[i], "="
                i += 1
            flags[dest] = value if eq else "true"
        else:
            if not eq:
                if i >= len(argv):
                    raise UsageError(f"flag needs an argument: -{name}")
                value = argv[i]
                i += 1
            flags[dest] = value
    return Parsed(flags, []), argv[i:]

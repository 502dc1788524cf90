"""Dockerfile front end: parser directives (``# escape=``), continuation lines, comments, heredocs,
shell/exec forms and flags, compiled into the build graph. Errors name the file, line and what was expected."""

from __future__ import annotations

import json
import re
from pathlib import Path

from ._expand import literal
from ._graph import BuildGraph, Stage, Step
from .errors import BuildfileError

_DIRECTIVE = re.compile(r"^#\s*([A-Za-z]+)\s*=\s*(.*?)\s*$")
_HEREDOC = re.compile(r"<<(-?)([\"']?)([A-Za-z_][A-Za-z0-9_]*)\2")
_KNOWN = {
    "from", "arg", "env", "run", "copy", "add", "workdir", "user", "label", "expose", "volume",
    "stopsignal", "entrypoint", "cmd", "healthcheck", "shell", "onbuild", "maintainer",
}  # fmt: skip
_FLAGS = {
    "from": {"platform"},
    "run": {"mount", "network", "security"},
    "copy": {"from", "chown", "chmod", "link", "parents", "exclude"},
    "add": {"from", "chown", "chmod", "link", "checksum", "keep-git-dir", "exclude", "unpack"},
    "healthcheck": {"interval", "timeout", "start-period", "start-interval", "retries"},
}
_MOUNT_KEYS = {
    "type", "target", "dst", "destination", "source", "src", "from", "id", "sharing", "mode", "uid",
    "gid", "ro", "readonly", "rw", "readwrite", "required", "env", "size",
}  # fmt: skip


class _Line:
    __slots__ = ("heredocs", "lineno", "text")

    def __init__(self, lineno: int, text: str, heredocs: list[tuple[str, str]]) -> None:
        self.lineno, self.text, self.heredocs = lineno, text, heredocs


class DockerfileParser:
    def __init__(self, text: str, file: str = "Dockerfile") -> None:
        self.file = file
        self.lines = text.splitlines()
        self.escape = "\\"

    def error(self, line: int, message: str) -> BuildfileError:
        return BuildfileError(self.file, line, message)

    # -- lexing ----------------------------------------------------------------------------
    def _directives(self) -> int:
        i = 0
        seen: set[str] = set()
        while i < len(self.lines):
            m = _DIRECTIVE.match(self.lines[i])
            if not m:
                break
            key, value = m.group(1).lower(), m.group(2)
            if key not in ("escape", "syntax", "check"):
                break
            if key in seen:
                raise self.error(i + 1, f"only one '{key}' parser directive may be used")
            seen.add(key)
            if key == "escape":
                if value not in ("\\", "`"):
                    raise self.error(i + 1, f"invalid escape character {value!r}: expected '\\' or '`'")
                self.escape = value
            i += 1
        return i

    def logical_lines(self) -> list[_Line]:
        i = self._directives()
        out: list[_Line] = []
        esc = self.escape
        while i < len(self.lines):
            raw = self.lines[i]
            stripped = raw.strip()
            if not stripped or stripped.startswith("#"):
                i += 1
                continue
            start = i + 1
            parts: list[str] = []
            while True:
                body = raw.rstrip()
                if body.endswith(esc):
                    parts.append(body[:-1])
                    i += 1
                    while i < len(self.lines) and (
                        not self.lines[i].strip() or self.lines[i].lstrip().startswith("#")
                    ):
                        i += 1
                    if i >= len(self.lines):
                        break
                    raw = self.lines[i]
                    continue
                parts.append(body)
                i += 1
                break
            text = "".join(parts).strip()
            heredocs: list[tuple[str, str]] = []
            word = text.split(None, 1)[0].lower()
            if word in ("run", "copy", "add") and "<<" in text and not _is_exec_form(text):
                for m in _HEREDOC.finditer(text):
                    strip_tabs, name = m.group(1) == "-", m.group(3)
                    body_lines: list[str] = []
                    while True:
                        if i >= len(self.lines):
                            raise self.error(start, f"unterminated heredoc: expected a line '{name}'")
                        line = self.lines[i]
                        i += 1
                        check = line.lstrip("\t") if strip_tabs else line
                        if check == name:
                            break
                        body_lines.append(check)
                    heredocs.append((name, "".join(f"{x}\n" for x in body_lines)))
            out.append(_Line(start, text, heredocs))
        return out

    # -- words -----------------------------------------------------------------------------
    def split_words(self, text: str, lineno: int) -> list[str]:
        """Split on unquoted whitespace; each word comes back in canonical (unquoted) form."""
        words, cur, have = [], [], False
        i, n, esc = 0, len(text), self.escape
        quote: str | None = None
        while i < n:
            c = text[i]
            if quote == "'":
                if c == "'":
                    quote = None
                else:
                    cur.append(literal(c))
            elif quote == '"':
                if c == '"':
                    quote = None
                elif c == esc and i + 1 < n and text[i + 1] in ('"', "$", esc):
                    cur.append(literal(text[i + 1]))
                    i += 1
                elif c == "\\":
                    cur.append("\\\\")
                else:
                    cur.append(c)
            elif c in " \t":
                if have:
                    words.append("".join(cur))
                    cur, have = [], False
            elif c in "'\"":
                quote, have = c, True
            elif c == esc and i + 1 < n:
                cur.append(literal(text[i + 1]))
                have = True
                i += 1
            elif c == "\\":
                cur.append("\\\\")
                have = True
            else:
                cur.append(c)
                have = True
            i += 1
        if quote:
            raise self.error(lineno, f"unterminated {quote} quote: expected a closing {quote}")
        if have:
            words.append("".join(cur))
        return words

    def _flags(self, op: str, rest: str, lineno: int) -> tuple[dict[str, list[str]], str]:
        flags: dict[str, list[str]] = {}
        allowed = _FLAGS.get(op, set())
        while rest.startswith("--"):
            word, _, tail = rest.partition(" ")
            name, eq, value = word[2:].partition("=")
            if name not in allowed:
                expected = ", ".join(f"--{f}" for f in sorted(allowed)) or "no flags"
                raise self.error(lineno, f"unknown flag --{name} for {op.upper()}: expected {expected}")
            words = self.split_words(value, lineno) if eq else ["true"]
            flags.setdefault(name, []).append(words[0] if words else "")
            rest = tail.lstrip()
        return flags, rest

    def _key_values(self, op: str, rest: str, lineno: int, legacy: bool) -> list[list[str]]:
        words = self.split_words(rest, lineno)
        if not words:
            raise self.error(lineno, f"{op.upper()} requires at least one argument: expected KEY=VALUE")
        if legacy and "=" not in words[0]:
            key, _, value = rest.strip().partition(" ")
            if not value.strip():
                raise self.error(lineno, f"{op.upper()} {key}: expected a value (KEY VALUE or KEY=VALUE)")
            joined = self.split_words(value.strip(), lineno)
            return [[self.split_words(key, lineno)[0], " ".join(joined)]]
        pairs = []
        for w in words:
            key, eq, value = w.partition("=")
            if not eq or not key:
                raise self.error(lineno, f"{op.upper()}: expected KEY=VALUE, got {w!r}")
            pairs.append([key, value])
        return pairs

    def _command(self, rest: str, lineno: int, op: str) -> str | list[str]:
        if _is_exec_form(rest):
            try:
                value = json.loads(rest)
            except ValueError:
                value = None
            if isinstance(value, list) and all(isinstance(x, str) for x in value):
                return value
        if not rest.strip():
            raise self.error(
                lineno, f"{op.upper()} requires a command: expected a shell string or a JSON array"
            )
        return rest

    # -- instructions ------------------------------------------------------------------------
    def parse(self) -> BuildGraph:
        global_args: list[Step] = []
        stages: list[Stage] = []
        current: dict | None = None

        def close() -> None:
            if current is not None:
                stages.append(
                    Stage(
                        len(stages),
                        current["name"],
                        current["base"],
                        tuple(current["steps"]),
                        current["platform"],
                        current["line"],
                    )
                )

        for ln in self.logical_lines():
            word, _, rest = ln.text.partition(" ")
            if not rest and "\t" in word:
                word, _, rest = word.partition("\t")
            op = word.lower()
            rest = rest.strip()
            if op not in _KNOWN:
                raise self.error(ln.lineno, f"unknown instruction: {word.upper()}")
            if op == "from":
                close()
                current = self._from(rest, ln.lineno, len(stages))
                continue
            step = self.instruction(op, rest, ln)
            if current is None:
                if op != "arg":
                    raise self.error(ln.lineno, f"expected FROM (or a global ARG) before {word.upper()}")
                global_args.append(step)
            else:
                current["steps"].append(step)
        close()
        if not stages:
            raise self.error(len(self.lines) or 1, "no FROM instruction: expected at least one stage")
        names = [s.name.lower() for s in stages if s.name]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise self.error(1, f"duplicate stage name {sorted(dup)[0]!r}")
        return BuildGraph(self.file, tuple(global_args), tuple(stages))

    def _from(self, rest: str, lineno: int, index: int) -> dict:
        flags, rest = self._flags("from", rest, lineno)
        words = self.split_words(rest, lineno)
        name = None
        if len(words) == 3 and words[1].lower() == "as":
            name = words[2]
            if not re.match(r"^[a-zA-Z][a-zA-Z0-9_.-]*$", name):
                raise self.error(
                    lineno, f"invalid stage name {name!r}: expected letters, digits, '_', '.', '-'"
                )
        elif len(words) != 1:
            raise self.error(lineno, "FROM: expected 'FROM [--platform=P] IMAGE [AS NAME]'")
        platform = flags.get("platform", [None])[0]
        return {"name": name, "base": words[0], "platform": platform, "steps": [], "line": lineno}

    def instruction(self, op: str, rest: str, ln: _Line) -> Step:
        lineno = ln.lineno
        text = f"{op.upper()} {rest}".strip()
        if op == "from":
            raise self.error(lineno, "FROM is not allowed here (ONBUILD FROM)")
        flags, rest = self._flags(op, rest, lineno)
        if op == "arg":
            words = self.split_words(rest, lineno)
            if not words:
                raise self.error(lineno, "ARG requires an argument: expected NAME[=DEFAULT]")
            if len(words) > 1:
                # several ARGs on one line: keep the first as this step (others appended by the caller)
                pass
            steps = []
            for w in words:
                name, eq, default = w.partition("=")
                if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", name):
                    raise self.error(lineno, f"ARG: invalid name {name!r}: expected NAME[=DEFAULT]")
                steps.append({"name": name, "default": default if eq else None})
            return Step("arg", {"args": steps}, lineno, text)
        if op == "env":
            return Step("env", {"pairs": self._key_values(op, rest, lineno, legacy=True)}, lineno, text)
        if op == "label":
            return Step("label", {"pairs": self._key_values(op, rest, lineno, legacy=True)}, lineno, text)
        if op == "maintainer":
            return Step("label", {"pairs": [["maintainer", literal(rest)]]}, lineno, text)
        if op == "run":
            return self._run(flags, rest, ln, text)
        if op in ("copy", "add"):
            return self._copy(op, flags, rest, ln, text)
        if op in ("workdir", "user", "stopsignal"):
            words = self.split_words(rest, lineno)
            if len(words) != 1:
                raise self.error(lineno, f"{op.upper()} requires exactly one argument")
            key = {"workdir": "path", "user": "user", "stopsignal": "signal"}[op]
            return Step(op, {key: words[0]}, lineno, text)
        if op == "expose":
            words = self.split_words(rest, lineno)
            if not words:
                raise self.error(lineno, "EXPOSE requires at least one argument: expected PORT[/PROTO]")
            return Step("expose", {"ports": words}, lineno, text)
        if op == "volume":
            if _is_exec_form(rest):
                try:
                    paths = [literal(p) for p in json.loads(rest)]
                except (ValueError, TypeError):
                    raise self.error(lineno, "VOLUME: expected a JSON array of strings") from None
            else:
                paths = self.split_words(rest, lineno)
            if not paths:
                raise self.error(lineno, "VOLUME requires at least one argument")
            return Step("volume", {"paths": paths}, lineno, text)
        if op in ("entrypoint", "cmd"):
            return Step(op, {"command": self._command(rest, lineno, op)}, lineno, text)
        if op == "shell":
            cmd = self._command(rest, lineno, op)
            if not isinstance(cmd, list) or not cmd:
                raise self.error(
                    lineno, 'SHELL requires the arguments as a JSON array: expected ["sh", "-c"]'
                )
            return Step("shell", {"argv": cmd}, lineno, text)
        if op == "healthcheck":
            return self._healthcheck(flags, rest, lineno, text)
        if op == "onbuild":
            inner = rest.split(None, 1)[0].lower() if rest else ""
            if inner in ("onbuild", "from", "maintainer") or inner not in _KNOWN:
                raise self.error(
                    lineno, f"ONBUILD: expected an instruction other than ONBUILD/FROM, got {inner!r}"
                )
            return Step("onbuild", {"instruction": rest}, lineno, text)
        raise self.error(lineno, f"unknown instruction: {op.upper()}")

    def _run(self, flags: dict[str, list[str]], rest: str, ln: _Line, text: str) -> Step:
        lineno = ln.lineno
        if "security" in flags:
            raise self.error(lineno, "RUN --security is not supported by bock-build")
        network = flags.get("network", ["default"])[-1]
        if network not in ("default", "none", "host"):
            raise self.error(lineno, f"RUN --network={network}: expected default, none or host")
        mounts = [self._mount(m, lineno) for m in flags.get("mount", [])]
        if ln.heredocs:
            only = _HEREDOC.fullmatch(rest.strip())
            if only and len(ln.heredocs) == 1:
                body = ln.heredocs[0][1]
                # a script with a shebang runs as a file (BuildKit); otherwise through the shell
                command: str | list[str] | dict[str, str] = (
                    {"script": body} if body.startswith("#!") else body
                )
            else:
                command = rest + "\n" + "".join(f"{body}{name}\n" for name, body in ln.heredocs)
        else:
            command = self._command(rest, lineno, "run")
        return Step("run", {"command": command, "mounts": mounts, "network": network}, lineno, text)

    def _mount(self, spec: str, lineno: int) -> dict[str, str]:
        out: dict[str, str] = {}
        for field in spec.split(","):
            key, eq, value = field.partition("=")
            key = key.strip().lower()
            if key not in _MOUNT_KEYS:
                raise self.error(lineno, f"RUN --mount: unknown option {key!r}")
            key = {"dst": "target", "destination": "target", "src": "source", "readonly": "ro"}.get(key, key)
            if key == "rw" or key == "readwrite":
                out["rw"] = value or "true"
            else:
                out[key] = value if eq else "true"
        kind = out.setdefault("type", "bind")
        if kind not in ("bind", "cache", "tmpfs", "secret"):
            raise self.error(lineno, f"RUN --mount type={kind}: expected bind, cache, tmpfs or secret")
        if kind != "secret" and "target" not in out:
            raise self.error(lineno, f"RUN --mount type={kind}: expected a target=PATH")
        if kind == "secret" and "id" not in out and "target" not in out:
            raise self.error(lineno, "RUN --mount type=secret: expected id=ID or target=PATH")
        return out

    def _copy(self, op: str, flags: dict[str, list[str]], rest: str, ln: _Line, text: str) -> Step:
        lineno = ln.lineno
        if "parents" in flags or "keep-git-dir" in flags:
            raise self.error(lineno, f"{op.upper()} --parents/--keep-git-dir are not supported by bock-build")
        inline: dict[str, str] = {}
        if ln.heredocs:
            inline = dict(ln.heredocs)
            rest = _HEREDOC.sub(lambda m: m.group(3), rest)
        if _is_exec_form(rest):
            try:
                words = [literal(w) for w in json.loads(rest)]
            except (ValueError, TypeError):
                raise self.error(lineno, f"{op.upper()}: expected a JSON array of strings") from None
        else:
            words = self.split_words(rest, lineno)
        if len(words) < 2:
            raise self.error(lineno, f"{op.upper()} requires at least two arguments: expected SRC... DEST")
        args = {
            "sources": words[:-1],
            "dest": words[-1],
            "from": flags.get("from", [None])[-1],
            "chown": flags.get("chown", [None])[-1],
            "chmod": flags.get("chmod", [None])[-1],
            "add": op == "add",
            "inline": inline,
            "exclude": flags.get("exclude", []),
            "link": "link" in flags,
        }
        if op == "add" and "checksum" in flags:
            args["checksum"] = flags["checksum"][-1]
        return Step("copy", args, lineno, text)

    def _healthcheck(self, flags: dict[str, list[str]], rest: str, lineno: int, text: str) -> Step:
        kind, _, cmd = rest.partition(" ")
        if kind.upper() == "NONE" and not cmd.strip():
            return Step("healthcheck", {"test": ["NONE"]}, lineno, text)
        if kind.upper() != "CMD":
            raise self.error(lineno, "HEALTHCHECK: expected 'NONE' or '[OPTIONS] CMD command'")
        command = self._command(cmd.strip(), lineno, "healthcheck")
        test = ["CMD", *command] if isinstance(command, list) else ["CMD-SHELL", command]
        args: dict = {"test": test}
        for key in ("interval", "timeout", "start-period", "start-interval"):
            if key in flags:
                args[key.replace("-", "_")] = _duration(flags[key][-1], lambda m: self.error(lineno, m))
        if "retries" in flags:
            try:
                args["retries"] = int(flags["retries"][-1])
            except ValueError:
                raise self.error(lineno, "HEALTHCHECK --retries: expected an integer") from None
        return Step("healthcheck", args, lineno, text)


def _is_exec_form(text: str) -> bool:
    t = text.strip()
    return t.startswith("[") and t.endswith("]")


_UNITS = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
}


def _duration(text: str, error) -> int:
    """A Go duration (``30s``, ``1m30s``, ``500ms``) in nanoseconds."""
    total, pos = 0, 0
    for m in re.finditer(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)", text):
        if m.start() != pos:
            break
        total += int(float(m.group(1)) * _UNITS[m.group(2)])
        pos = m.end()
    if pos != len(text) or not text:
        raise error(f"invalid duration {text!r}: expected e.g. 30s, 1m30s, 500ms")
    return total


def parse_dockerfile(text: str, file: str = "Dockerfile") -> BuildGraph:
    return DockerfileParser(text, file).parse()


def parse_onbuild(text: str, file: str, lineno: int) -> Step:
    """One ONBUILD trigger (an instruction line) as a step."""
    parser = DockerfileParser(text, file)
    lines = parser.logical_lines()
    if len(lines) != 1:
        raise BuildfileError(file, lineno, f"ONBUILD trigger {text!r}: expected one instruction")
    word, _, rest = lines[0].text.partition(" ")
    return parser.instruction(word.lower(), rest.strip(), lines[0])


def load_dockerfile(path: Path) -> BuildGraph:
    return parse_dockerfile(path.read_text(), str(path))

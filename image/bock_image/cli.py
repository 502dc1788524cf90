"""The bock-image command line: parse, call the library, print. No logic of its own."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from .errors import ImageError, NotFound

DEFAULT_ROOT_HELP = "$BOCK_IMAGE_ROOT or /var/lib/bock/images"


def _json_list(text: str) -> list[str]:
    if text.startswith("["):
        try:
            value = json.loads(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"invalid JSON array: {exc}") from None
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise argparse.ArgumentTypeError("expected a JSON array of strings")
        return value
    return [text]


# The global options that take a value (for _command_in, which must not mistake one for a command).
_VALUED = ("--root", "--format", "--tls-verify", "--authfile", "--cert-dir", "--platform", "--jobs")
_FLAGS = ("--quiet", "-q")  # not -h: the whole help lists every command


def _command_in(argv: list[str]) -> str | None:
    """The command word of ``argv`` when it is plain to see, else None. Only global options spelt out in
    full may come before it (an abbreviation, which argparse accepts, makes it None)."""
    i = 0
    while i < len(argv):
        word = argv[i]
        if not word.startswith("-"):
            known = word in _COMMANDS or any(word in aliases for _, aliases, _ in _COMMANDS.values())
            return word if known else None
        name = word.split("=", 1)[0]
        if name in _VALUED:
            i += 1 if "=" in word else 2
        elif word in _FLAGS:
            i += 1
        else:
            return None
    return None


def _parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser; with ``command``, the sub-parser of that command only. Building all twenty costs
    ~7 ms, a sixth of a push's start-up, so ``main`` builds just the one named when it can tell."""
    p = argparse.ArgumentParser(
        prog="bock-image", description="OCI image store, registry client and bundle maker"
    )
    p.add_argument("--root", default=None, help=f"image store (default {DEFAULT_ROOT_HELP})")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress output")
    p.add_argument("--format", choices=("text", "json"), default="text", help="output format")
    p.add_argument(
        "--tls-verify", default="true", choices=("true", "false"), help="require TLS (except localhost)"
    )
    p.add_argument("--authfile", default=None, help="auth file (default: containers auth.json search order)")
    p.add_argument(
        "--cert-dir",
        default=None,
        help="TLS files for every registry: *.crt CAs, NAME.cert+NAME.key client pairs"
        " (default: certs.d/HOST[:PORT] under ~/.config/containers, /etc/containers, /etc/docker)",
    )
    p.add_argument("--platform", default=None, help="os/arch[/variant] to select from an index")
    p.add_argument("--jobs", type=int, default=6, help="parallel blob transfers")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (help_text, aliases, add) in _COMMANDS.items():
        if command is None or command == name or command in aliases:
            add(sub.add_parser(name, help=help_text, aliases=list(aliases)))
    return p


def _add_pull(s: argparse.ArgumentParser) -> None:
    s.add_argument("ref")
    s.add_argument("--name", help="local name (default: REF)")
    s.add_argument("--unpack", action="store_true", help="also unpack the layers (while downloading)")


def _add_copy(s: argparse.ArgumentParser) -> None:
    s.add_argument("src", help="registry reference (docker:// optional)")
    s.add_argument("dest", help="registry reference (docker:// optional)")
    s.add_argument(
        "--all", action="store_true", help="copy every platform of an index (default: --platform's)"
    )


def _add_push(s: argparse.ArgumentParser) -> None:
    s.add_argument("ref")
    s.add_argument("dest", nargs="?")
    s.add_argument("--chunk-size", type=int, default=None, help="chunked upload with this chunk size (bytes)")
    s.add_argument(
        "--mount-from", action="append", default=[], help="try a cross-repo mount from this repository"
    )


def _add_list(s: argparse.ArgumentParser) -> None:
    pass


def _add_inspect(s: argparse.ArgumentParser) -> None:
    s.add_argument("ref")
    s.add_argument("--remote", action="store_true")
    s.add_argument("--raw", action="store_true", help="print the manifest only")
    s.add_argument("--config", action="store_true", help="print the config only")


def _add_tags(s: argparse.ArgumentParser) -> None:
    s.add_argument("ref")


def _add_tag(s: argparse.ArgumentParser) -> None:
    s.add_argument("src")
    s.add_argument("dest")


def _add_rm(s: argparse.ArgumentParser) -> None:
    s.add_argument("refs", nargs="+")


def _add_gc(s: argparse.ArgumentParser) -> None:
    pass


def _add_verify(s: argparse.ArgumentParser) -> None:
    pass


def _add_import(s: argparse.ArgumentParser) -> None:
    s.add_argument("source")
    s.add_argument("ref")
    s.add_argument("--compression", choices=("gzip", "zstd", "none"), default="gzip")
    s.add_argument(
        "--cmd",
        type=_json_list,
        default=None,
        help='Cmd as a JSON array or one word, e.g. \'["sh", "-c", "id"]\'',
    )
    s.add_argument("--entrypoint", type=_json_list, default=None, help="Entrypoint, like --cmd")
    s.add_argument("--env", action="append", default=[])
    s.add_argument("--workdir", default=None)
    s.add_argument("--user", default=None)
    s.add_argument("--label", action="append", default=[], help="KEY=VALUE")
    s.add_argument("--author", default=None)


def _add_export(s: argparse.ArgumentParser) -> None:
    s.add_argument("ref")
    s.add_argument("file")


def _add_save(s: argparse.ArgumentParser) -> None:
    s.add_argument("refs", nargs="+")
    s.add_argument("--output", "-o", required=True)
    s.add_argument("--archive-format", choices=("oci-archive", "docker-archive"), default="oci-archive")


def _add_load(s: argparse.ArgumentParser) -> None:
    s.add_argument("file")
    s.add_argument("ref", nargs="?")


def _add_bundle(s: argparse.ArgumentParser) -> None:
    s.add_argument("ref")
    s.add_argument("dir")
    s.add_argument("--rootfs-mode", choices=("auto", "overlay", "copy"), default="auto")
    s.add_argument("--user", default=None)
    s.add_argument("--env", action="append", default=None)
    s.add_argument("--cwd", default=None)
    s.add_argument("--hostname", default=None)
    s.add_argument("--terminal", action="store_true")
    s.add_argument("args", nargs="*", help="command replacing Cmd (after --)")


def _add_unbundle(s: argparse.ArgumentParser) -> None:
    s.add_argument("dir")


def _add_login(s: argparse.ArgumentParser) -> None:
    s.add_argument("registry")
    s.add_argument("--username", "-u")
    s.add_argument("--password", "-p")
    s.add_argument("--password-stdin", action="store_true")


def _add_logout(s: argparse.ArgumentParser) -> None:
    s.add_argument("registry")


_COMMANDS: dict[str, tuple[str, tuple[str, ...], Any]] = {
    "pull": ("pull an image from a registry", (), _add_pull),
    "push": ("push a local image to a registry", (), _add_push),
    "copy": ("copy an image from one registry or repository to another", (), _add_copy),
    "list": ("list local images", ("ls",), _add_list),
    "inspect": ("inspect a local image (or a remote one with --remote or docker://)", (), _add_inspect),
    "tags": ("list the tags of a remote repository", (), _add_tags),
    "tag": ("give a local image another name", (), _add_tag),
    "rm": ("remove local names (blobs go at the next gc)", (), _add_rm),
    "gc": ("delete blobs and snapshots no name reaches", (), _add_gc),
    "verify": ("re-hash every blob and check every image is complete", (), _add_verify),
    "import": ("import a rootfs tarball or directory as a one-layer image", (), _add_import),
    "export": ("write the flattened filesystem of an image as a tarball", (), _add_export),
    "save": ("write images to an oci-archive or docker-archive", (), _add_save),
    "load": ("load an oci-archive or docker-archive (docker save)", (), _add_load),
    "bundle": ("write a runtime bundle (rootfs + config.json)", (), _add_bundle),
    "unbundle": ("unmount and delete a bundle made by `bundle`", (), _add_unbundle),
    "login": ("store credentials for a registry", (), _add_login),
    "logout": ("remove stored credentials", (), _add_logout),
}


def _emit(args: argparse.Namespace, data: Any, text: str) -> None:
    """Print ``data`` as JSON with --format json (``data`` may be a function making it), else ``text``."""
    if args.format == "json":
        print(json.dumps(data() if callable(data) else data, indent=2))
    elif text:
        print(text)


def _client(args: argparse.Namespace, **kw: Any):
    from ._progress import Reporter
    from ._registry import RegistryClient

    return RegistryClient(
        tls_verify=args.tls_verify == "true",
        authfile=args.authfile,
        cert_dir=args.cert_dir,
        jobs=args.jobs,
        progress=Reporter(quiet=args.quiet or args.format == "json"),
        **kw,
    )


def _config_from(args: argparse.Namespace) -> dict[str, Any]:
    labels = dict(label.split("=", 1) for label in args.label)
    return {
        "Cmd": args.cmd,
        "Entrypoint": args.entrypoint,
        "Env": args.env,
        "WorkingDir": args.workdir,
        "User": args.user,
        "Labels": labels,
    }


def run(args: argparse.Namespace) -> int:
    from ._models import Platform, to_dict
    from ._store import Store

    platform = Platform.parse(args.platform) if args.platform else None
    cmd = args.command
    if cmd in ("login", "logout"):
        from . import _auth
        from ._reference import parse_reference

        registry = (
            parse_reference(f"{args.registry}/x/y").registry if "/" not in args.registry else args.registry
        )
        if cmd == "logout":
            if not _auth.remove_credentials(registry, args.authfile):
                raise NotFound(f"not logged in to {registry}")
            _emit(args, {"registry": registry}, f"Removed login credentials for {registry}")
            return 0
        user = args.username or input("Username: ")
        if args.password_stdin:
            password = sys.stdin.readline().rstrip("\n")
        else:
            if args.password is not None:
                password = args.password
            else:
                import getpass

                password = getpass.getpass("Password: ")
        creds = _auth.Credentials(user, password)
        with _client(args) as client:
            client.check_login(registry, creds)
        path = _auth.save_credentials(registry, creds, args.authfile)
        _emit(args, {"registry": registry, "authfile": str(path)}, "Login Succeeded!")
        return 0
    if cmd == "tags":
        with _client(args) as client:
            tags = client.tags(args.ref)
        _emit(args, tags, "\n".join(tags))
        return 0
    if cmd == "copy":
        with _client(args) as client:
            desc = client.copy(args.src, args.dest, platform=platform, all_platforms=args.all)
        _emit(args, lambda: to_dict(desc), desc.digest if args.quiet else "")
        return 0
    from ._summary import summarize

    if cmd == "inspect" and (args.remote or args.ref.startswith("docker://")):
        with _client(args) as client:
            info = client.inspect(args.ref.removeprefix("docker://"), platform)
        data = (
            info["Manifest"]
            if args.raw
            else info["Config"]
            if args.config
            else {k: v for k, v in info.items() if k not in ("Manifest", "Config")}
        )
        print(json.dumps(data, indent=2))
        return 0
    if cmd == "unbundle":
        from ._bundle import remove_bundle

        remove_bundle(args.dir)
        return 0

    store = Store(args.root)
    if cmd == "pull":
        with _client(args) as client:
            desc = client.pull(store, args.ref, platform=platform, name=args.name, unpack=args.unpack)
        _emit(args, lambda: to_dict(desc), desc.digest if args.quiet else "")
    elif cmd == "push":
        with _client(args, chunk_size=args.chunk_size) as client:
            desc = client.push(store, args.ref, args.dest, mount_from=args.mount_from)
        _emit(args, lambda: to_dict(desc), desc.digest if args.quiet else "")
    elif cmd in ("list", "ls"):
        rows = [{"name": n, **to_dict(d)} for n, d in store.images()]
        text = "\n".join(f"{r['name'] or '<none>'}\t{r['digest']}\t{r['size']}" for r in rows)
        _emit(args, rows, text)
    elif cmd == "inspect":
        desc = store.resolve(args.ref)
        if args.raw:
            print(json.dumps(store.read_json(desc), indent=2))
            return 0
        mdesc = store.manifest_descriptor(desc, platform)
        manifest = store.manifest(mdesc)
        config = store.config(mdesc)
        if args.config:
            print(json.dumps(config, indent=2))
            return 0
        info = summarize(desc.ref_name or args.ref, mdesc, manifest, config)
        info["IndexDescriptor"] = to_dict(desc)
        print(json.dumps(info, indent=2))
    elif cmd == "tag":
        desc = store.tag(args.src, args.dest)
        _emit(args, to_dict(desc), "")
    elif cmd == "rm":
        for ref in args.refs:
            desc = store.rm(ref)
            _emit(args, {"removed": ref, "digest": desc.digest}, f"Untagged: {ref}")
    elif cmd == "gc":
        removed = store.gc()
        _emit(args, removed, "\n".join(f"removed {d}" for d in removed))
    elif cmd == "verify":
        problems = store.verify()
        _emit(args, problems, "\n".join(problems) or "ok")
        return 1 if problems else 0
    elif cmd == "import":
        from ._layers import import_rootfs

        desc = import_rootfs(
            store,
            args.source,
            args.ref,
            compression=args.compression,
            config=_config_from(args),
            platform=platform,
            author=args.author,
        )
        _emit(args, to_dict(desc), desc.digest)
    elif cmd == "export":
        from ._archive import export_rootfs

        export_rootfs(store, args.ref, args.file)
    elif cmd == "save":
        from ._archive import save_archive

        save_archive(store, args.refs, args.output, args.archive_format)
    elif cmd == "load":
        from ._archive import load_archive

        added = load_archive(store, args.file, args.ref)
        _emit(
            args,
            [{"name": n, **to_dict(d)} for n, d in added],
            "\n".join(f"Loaded image: {n or d.digest}" for n, d in added),
        )
    elif cmd == "bundle":
        from ._bundle import bundle

        overrides = {
            "user": args.user,
            "env": args.env,
            "cwd": args.cwd,
            "hostname": args.hostname,
            "terminal": args.terminal,
        }
        if args.args:
            overrides["args"] = args.args
        b = bundle(
            store,
            args.ref,
            args.dir,
            rootfs_mode=args.rootfs_mode,
            platform=platform,
            **{k: v for k, v in overrides.items() if v not in (None, False)},
        )
        _emit(args, {"bundle": str(b.path), "rootfs": b.rootfs.mode}, "")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    command = _command_in(argv)
    after: list[str] = []
    if command == "bundle" and "--" in argv:
        # bundle REF DIR [options] -- CMD...: argparse alone rejects options before "--" once the
        # "args" positional has matched nothing, so the command after "--" is taken off first
        at = argv.index("--")
        argv, after = argv[:at], argv[at + 1 :]
    args = _parser(command).parse_args(argv)
    if after:
        args.args = [*args.args, *after]
    try:
        return run(args)
    except ImageError as exc:
        print(f"bock-image: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except OSError as exc:
        print(f"bock-image: error: {exc}", file=sys.stderr)
        return 1


def entry() -> None:
    """The ``bock-image`` command: ``main``, then leave without the interpreter's teardown.

    Freeing every module and a last garbage collection cost 10-15 ms at the end of a push (measured
    with strace between the last response and exit_group). Every file bock-image writes is closed
    (and fsynced) by then, its threads are done, and its store lock goes with the process, so only
    the standard streams may hold output."""
    rc = main()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        sys.exit(rc)  # the interpreter reports a failed flush its own way (exit status 120)
    import os

    os._exit(rc)


if __name__ == "__main__":
    entry()

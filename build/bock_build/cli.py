"""bock-build: thin command line (parse, call the library, print)."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from .errors import BuildError


def _build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="bock-build", description="Build an OCI image from a Dockerfile or a Bockfile."
    )
    p.add_argument("--root", help="bock-image store (default: $BOCK_IMAGE_ROOT or /var/lib/bock/images)")
    p.add_argument(
        "-t", "--tag", action="append", default=[], help="name the image in the store (repeatable)"
    )
    p.add_argument("-f", "--file", help="Dockerfile or Bockfile (default: CONTEXT/Dockerfile, else Bockfile)")
    p.add_argument("--build-arg", action="append", default=[], metavar="K=V")
    p.add_argument("--target", help="build this stage (default: the last)")
    p.add_argument(
        "--platform", help="os/arch[/variant] of base images taken from an index (RUN runs natively)"
    )
    p.add_argument("--no-cache", action="store_true", help="do not use cached steps")
    p.add_argument(
        "--runtime",
        default=os.environ.get("BOCK_BUILD_RUNTIME", "bock"),
        help="OCI runtime CLI (bock, runc path)",
    )
    p.add_argument("--jobs", type=int, default=4, help="stages built in parallel")
    p.add_argument("--secret", action="append", default=[], metavar="id=ID,src=FILE|env=VAR")
    p.add_argument(
        "--output", "-o", action="append", default=[], metavar="oci-archive:FILE|docker-archive:FILE|oci:DIR"
    )
    p.add_argument(
        "--push", action="store_true", help="push every -t name through bock-image's registry client"
    )
    p.add_argument("--tls-verify", default="true", choices=["true", "false"])
    p.add_argument("--compression", default="gzip", choices=["gzip", "zstd", "none"])
    p.add_argument("--source-date-epoch", type=int, default=None, help="default: $SOURCE_DATE_EPOCH")
    p.add_argument(
        "-q", "--quiet", action="store_true", help="no step output; print only the manifest digest"
    )
    p.add_argument("context", help="build context directory")
    return p


def _kv(items: list[str], what: str) -> dict[str, str]:
    out = {}
    for item in items:
        k, eq, v = item.partition("=")
        if not k:
            raise BuildError(f"--{what} {item!r}: expected KEY=VALUE")
        if not eq:
            if k not in os.environ:
                continue
            v = os.environ[k]
        out[k] = v
    return out


def _secrets(items: list[str]) -> dict[str, dict[str, str]]:
    out = {}
    for item in items:
        fields = dict(f.partition("=")[::2] for f in item.split(","))
        sid = fields.get("id")
        if not sid:
            raise BuildError(f"--secret {item!r}: expected id=ID,src=FILE or id=ID,env=VAR")
        if "src" in fields or "source" in fields:
            src = fields.get("src") or fields["source"]
            if not os.path.isfile(src):
                raise BuildError(f"--secret {sid}: file {src!r} not found")
            out[sid] = {"src": os.path.abspath(src)}
        else:
            out[sid] = {"env": fields.get("env", sid)}
    return out


def cmd_build(argv: list[str]) -> int:
    args = _build_parser().parse_args(argv)
    from bock_image import Store

    from ._builder import Builder, BuildOptions
    from ._frontend import find_file, load

    context = Path(args.context).absolute()
    if not context.is_dir():
        raise BuildError(f"build context {args.context!r} is not a directory")
    path = find_file(context, args.file)
    graph = load(path)
    epoch = args.source_date_epoch
    if epoch is None and os.environ.get("SOURCE_DATE_EPOCH"):
        try:
            epoch = int(os.environ["SOURCE_DATE_EPOCH"])
        except ValueError:
            raise BuildError(
                f"SOURCE_DATE_EPOCH={os.environ['SOURCE_DATE_EPOCH']!r}: expected an integer"
            ) from None
    opts = BuildOptions(
        context=context,
        tags=args.tag,
        build_args=_kv(args.build_arg, "build-arg"),
        target=args.target,
        no_cache=args.no_cache,
        runtime=args.runtime,
        jobs=args.jobs,
        secrets=_secrets(args.secret),
        source_date_epoch=epoch,
        compression=args.compression,
        quiet=args.quiet,
        dockerfile=path,
        platform=args.platform,
    )
    outputs = [_parse_output(o) for o in args.output]
    if args.push and not args.tag:
        raise BuildError("--push needs at least one -t NAME")
    store = Store(args.root)
    t0 = time.monotonic()
    result = Builder(store, graph, opts).build()
    digest = result.manifest["digest"]
    ref = args.tag[0] if args.tag else digest
    for kind, dest in outputs:
        from ._outputs import write_output

        write_output(store, ref, kind, dest)
    if args.push:
        from bock_image import RegistryClient

        with RegistryClient(tls_verify=args.tls_verify == "true") as client:
            for tag in args.tag:
                client.push(store, tag)
                if not args.quiet:
                    print(f"pushed {tag}")
    if args.quiet:
        print(digest)
    else:
        names = ", ".join(args.tag) or "(untagged)"
        print(
            f"built {names} {digest} in {time.monotonic() - t0:.2f}s "
            f"({result.steps} layer steps, {result.cached} cached)"
        )
    return 0


def _parse_output(text: str) -> tuple[str, str]:
    kind, sep, dest = text.partition(":")
    if kind.startswith("type="):  # --output type=oci-archive,dest=FILE
        fields = dict(f.partition("=")[::2] for f in text.split(","))
        kind, dest, sep = fields.get("type", ""), fields.get("dest", ""), ":"
    if not sep or kind not in ("oci-archive", "docker-archive", "oci") or not dest:
        raise BuildError(f"--output {text!r}: expected oci-archive:FILE, docker-archive:FILE or oci:DIR")
    return kind, dest


def cmd_convert(argv: list[str]) -> int:
    p = argparse.ArgumentParser(
        prog="bock-build convert", description="Print the Bockfile equivalent of a Dockerfile."
    )
    p.add_argument("dockerfile")
    args = p.parse_args(argv)
    from ._bockfile import dump_bockfile
    from ._dockerfile import parse_dockerfile

    try:
        text = Path(args.dockerfile).read_text()
    except OSError as exc:
        raise BuildError(f"cannot read {args.dockerfile}: {exc.strerror}") from None
    sys.stdout.write(dump_bockfile(parse_dockerfile(text, args.dockerfile)))
    return 0


def cmd_cache(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="bock-build cache")
    p.add_argument("--root")
    sub = p.add_subparsers(dest="action", required=True)
    sub.add_parser("list", aliases=["ls"])
    pr = sub.add_parser("prune")
    pr.add_argument("--keep-storage", metavar="SIZE")
    pr.add_argument("--filter", action="append", default=[], metavar="until=DURATION")
    sub.add_parser("clear")
    args = p.parse_args(argv)
    from bock_image import Store

    from ._cache import Cache, parse_duration, parse_size

    cache = Cache(Store(args.root))
    if args.action in ("list", "ls"):
        recs = sorted(cache.records(), key=lambda r: r.last_used)
        print(f"{'KEY':<20} {'SIZE':>10} {'LAST USED':<20} STEP")
        for r in recs:
            used = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(r.last_used))
            print(f"{r.key[7:19]:<20} {r.size:>10} {used:<20} {r.created_by[:70]}")
        print(f"{len(recs)} entries, {sum(r.size for r in recs)} bytes")
        return 0
    if args.action == "clear":
        n, freed = cache.clear()
    else:
        until = None
        for f in args.filter:
            k, _, v = f.partition("=")
            if k != "until":
                raise BuildError(f"--filter {f!r}: expected until=DURATION")
            until = parse_duration(v)
        keep = parse_size(args.keep_storage) if args.keep_storage else None
        n, freed = cache.prune(keep_storage=keep, until=until)
    print(f"removed {n} cache entries, {freed} bytes freed")
    return 0


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    import signal

    signal.signal(signal.SIGTERM, _interrupt)  # unwind: unmount, delete containers, no half layers
    try:
        if argv and argv[0] == "convert":
            return cmd_convert(argv[1:])
        if argv and argv[0] == "cache":
            return cmd_cache(argv[1:])
        if argv and argv[0] == "build":
            argv = argv[1:]
        return cmd_build(argv)
    except BuildError as exc:
        print(f"bock-build: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("bock-build: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # bock-image errors and OS errors: one line, no traceback
        from bock_image import ImageError

        if isinstance(exc, (ImageError, OSError)):
            print(f"bock-build: error: {exc}", file=sys.stderr)
            return 1
        raise


if __name__ == "__main__":
    sys.exit(main())

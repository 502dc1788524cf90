"""``bock-conformance``: parse our options, run the bundled cases with pytest, write the reports."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from bock_conformance._errors import ConformanceError, UsageError

CASES = Path(__file__).resolve().parent / "cases"


def parse(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(
        prog="bock-conformance",
        allow_abbrev=False,
        description="Hold an OCI runtime binary to the runtime-spec and the runc CLI contract. "
        "Unknown options are passed to pytest (-k EXPR, -n 2, -x, -v ...).",
    )
    parser.add_argument("--runtime", required=True, help="path of the runtime binary under test")
    parser.add_argument("--compare", help="a second runtime: report every divergence from the first")
    parser.add_argument("--junit", help="write pytest's JUnit XML here")
    parser.add_argument("--report", help="write a per-section report (FILE.md or FILE.html)")
    return parser.parse_known_args(argv)


def pytest_args(opts: argparse.Namespace, junit: str, rest: list[str]) -> list[str]:
    from bock_conformance._kit import which_runtime

    args = [
        str(CASES),
        "-c",
        str(CASES / "conformance.ini"),
        "--rootdir",
        str(CASES),
        "-p",
        "bock_conformance._plugin",
        "--conf-runtime",
        which_runtime(opts.runtime),
        "--junitxml",
        junit,
    ]
    if opts.compare:
        args += ["--conf-compare", which_runtime(opts.compare)]
    return args + rest


def main(argv: list[str] | None = None) -> int:
    import pytest

    from bock_conformance._report import build_report, runtime_version

    opts, rest = parse(sys.argv[1:] if argv is None else argv)
    try:
        if opts.report and not opts.report.endswith((".md", ".html")):
            raise UsageError("--report FILE must end in .md or .html")
        if os.geteuid() != 0:
            raise UsageError("bock-conformance needs root (real namespaces, mounts and cgroups)")
        with tempfile.TemporaryDirectory(prefix="bock-conf-junit-") as tmp:
            junit = opts.junit or str(Path(tmp) / "junit.xml")
            code = int(pytest.main(pytest_args(opts, junit, rest)))
            if opts.report and Path(junit).exists():
                runtimes = [runtime_version(opts.runtime)]
                if opts.compare:
                    runtimes.append(runtime_version(opts.compare))
                text = build_report(
                    junit, fmt="html" if opts.report.endswith(".html") else "md", runtimes=runtimes
                )
                Path(opts.report).write_text(text)
        return code
    except ConformanceError as exc:
        print(f"bock-conformance: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

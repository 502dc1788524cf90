"""Front ends without containers: Dockerfile parsing, Bockfile schema errors, convert, .dockerignore,
variable substitution."""

from __future__ import annotations

import os as _os
import sys as _sys

import pytest
import yaml
from bock_build import BuildfileError, dump_bockfile, load_bockfile, parse_dockerfile
from bock_build._expand import expand
from bock_build._ignore import IgnoreRules

_sys.path.insert(0, _os.path.dirname(__file__))
from buildtest_helpers import bock_build

DOCKERFILE = """\
# escape=`
ARG BASE=busybox
FROM ${BASE} AS build
ARG V=1
ENV A=1 B="two words" `
    C='$lit'
RUN echo hi && `
    echo there
RUN ["echo", "exec"]
RUN --mount=type=cache,target=/c,sharing=locked --network=none <<EOF
echo from heredoc
EOF
COPY --chown=1:1 --chmod=0755 a b /dst/
COPY <<hello /x.txt
hi there
hello
HEALTHCHECK --interval=5s --retries=2 CMD true
ONBUILD RUN echo child
FROM build
SHELL ["/bin/sh", "-ec"]
ENTRYPOINT ["/bin/sh"]
CMD ["-c", "echo x"]
EXPOSE 80 53/udp
"""


def test_dockerfile_instructions():
    g = parse_dockerfile(DOCKERFILE, "Dockerfile")
    assert [a["name"] for s in g.global_args for a in s.args["args"]] == ["BASE"]
    build, final = g.stages
    assert (build.name, build.base, final.base) == ("build", "${BASE}", "build")
    ops = [s.op for s in build.steps]
    assert ops == ["arg", "env", "run", "run", "run", "copy", "copy", "healthcheck", "onbuild"]
    env = build.steps[1].args["pairs"]
    assert env == [["A", "1"], ["B", "two words"], ["C", "\\$lit"]]
    assert build.steps[2].args["command"] == "echo hi &&     echo there"  # backtick escape joins lines
    assert build.steps[3].args["command"] == ["echo", "exec"]
    heredoc = build.steps[4].args
    assert heredoc["command"] == "echo from heredoc\n"
    assert heredoc["mounts"] == [{"type": "cache", "target": "/c", "sharing": "locked"}]
    assert heredoc["network"] == "none"
    copy = build.steps[5].args
    assert (copy["sources"], copy["dest"], copy["chown"], copy["chmod"]) == (
        ["a", "b"],
        "/dst/",
        "1:1",
        "0755",
    )
    assert build.steps[6].args["inline"] == {"hello": "hi there\n"}
    assert build.steps[7].args == {"test": ["CMD-SHELL", "true"], "interval": 5_000_000_000, "retries": 2}
    assert build.steps[8].args == {"instruction": "RUN echo child"}
    assert [s.op for s in final.steps] == ["shell", "entrypoint", "cmd", "expose"]


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("FROM busybox\nFOO bar\n", 2, "unknown instruction: FOO"),
        ("RUN true\n", 1, "expected FROM"),
        ("FROM busybox\nCOPY onlyone\n", 2, "expected SRC... DEST"),
        ("FROM busybox\nRUN --network=bridge true\n", 2, "expected default, none or host"),
        ("FROM busybox\nRUN --mount=type=nfs,target=/x true\n", 2, "expected bind, cache, tmpfs or secret"),
        ("FROM busybox\nRUN <<EOT\necho\n", 2, "unterminated heredoc"),
        ("FROM busybox\nENV A\n", 2, "expected a value"),
        ("FROM busybox\nSHELL sh -c\n", 2, "JSON array"),
        ("FROM busybox as\n", 1, "expected 'FROM [--platform=P] IMAGE [AS NAME]'"),
        ("FROM busybox\n\nCOPY --bogus=1 a b\n", 3, "unknown flag --bogus"),
        ("FROM busybox\nHEALTHCHECK --interval=5x CMD true\n", 2, "invalid duration"),
        ('FROM busybox\nENV A="open\n', 2, "unterminated"),
    ],
)
def test_dockerfile_syntax_errors_name_file_line_and_expectation(text, line, words):
    with pytest.raises(BuildfileError) as err:
        parse_dockerfile(text, "ctx/Dockerfile")
    assert err.value.file == "ctx/Dockerfile"
    assert err.value.line == line
    assert words in str(err.value)
    assert str(err.value).startswith(f"ctx/Dockerfile:{line}:")


BOCKFILE_BAD = """\
version: 1
stages:
  - name: app
    from: busybox
    steps:
      - run: echo ok
      - copy: a.txt
        dest: /x
"""


def test_bockfile_schema_error_names_line_and_rule():
    with pytest.raises(BuildfileError) as err:
        load_bockfile(BOCKFILE_BAD, "Bockfile")
    msg = str(err.value)
    assert err.value.line == 7
    assert "rule:" in msg and "stages[0].steps[1]" in msg
    with pytest.raises(BuildfileError) as err:
        load_bockfile("stages:\n  - from: busybox\n    steps:\n      - frobnicate: 1\n", "Bockfile")
    assert err.value.line == 4 and "exactly one of run, copy" in str(err.value)
    with pytest.raises(BuildfileError) as err:
        load_bockfile(
            "stages:\n  - from: busybox\n    config:\n      healthcheck: {test: true, interval: soon}\n"
        )
    assert err.value.line == 4 and "rule:" in str(err.value)
    with pytest.raises(BuildfileError) as err:
        load_bockfile("stages: [\n", "Bockfile")
    assert "invalid YAML" in str(err.value)


def test_convert_round_trips_to_the_same_graph(tmp_path):
    df = tmp_path / "Dockerfile"
    df.write_text(DOCKERFILE)
    out = bock_build("convert", str(df)).stdout
    data = yaml.safe_load(out)
    assert data["stages"][0]["from"] == "${BASE}"
    assert data["stages"][1]["config"]["entrypoint"] == ["/bin/sh"]
    original = parse_dockerfile(DOCKERFILE)
    converted = load_bockfile(out)
    for a, b in zip(original.stages, converted.stages, strict=True):
        steps_a = sorted((s.op, repr(s.args)) for s in a.steps)
        steps_b = sorted((s.op, repr(s.args)) for s in b.steps)
        assert steps_a == steps_b
    assert dump_bockfile(converted) == out


def test_convert_error_is_one_line(tmp_path):
    df = tmp_path / "Dockerfile"
    df.write_text("FROM busybox\nCOPY x\n")
    res = bock_build("convert", str(df), check=False)
    assert res.returncode == 1
    assert (
        res.stderr.strip()
        == f"bock-build: error: {df}:2: COPY requires at least two arguments: expected SRC... DEST"
    )


def test_dockerignore_semantics():
    rules = IgnoreRules(["*.log", "/build", "docs/**/*.md", "!docs/keep.md", "# comment", "tmp*/"])
    assert rules.ignored("a.log")
    assert not rules.ignored("sub/a.log")  # '*' is one level, unlike gitignore
    assert rules.ignored("build/x/y")  # a matched directory excludes everything below
    assert rules.ignored("docs/a/b.md") and rules.ignored("docs/x.md")
    assert not rules.ignored("docs/keep.md")  # the last matching line wins
    assert rules.ignored("tmp1/file")
    assert not rules.prunable("docs")


def test_expand():
    env = {"A": "hello", "E": "", "P": "/usr/lib/file.tar.gz"}
    assert expand("$A ${A} \\$A", env) == "hello hello $A"
    assert expand("${E:-d} ${E-d} ${U-d} ${A:+set} ${U+set}", env) == "d  d set "
    assert (
        expand("${P##*/} ${P%.*} ${P%%.*} ${P#/usr}", env)
        == "file.tar.gz /usr/lib/file.tar /usr/lib/file /lib/file.tar.gz"
    )
    assert expand("${A/l/L} ${A//l/L}", env) == "heLlo heLLo"


def test_readme_bockfile_example_is_valid():
    from pathlib import Path

    readme = (Path(__file__).parents[1] / "README.md").read_text()
    example = readme.split("```yaml\n", 1)[1].split("```", 1)[0]
    graph = load_bockfile(example, "README.md")
    assert [s.name for s in graph.stages] == ["builder", None]
    assert graph.stages[1].steps[0].args["from"] == "builder"

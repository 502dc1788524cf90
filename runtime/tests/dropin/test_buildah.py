"""buildah 1.28 ``build --isolation oci --runtime X``: RUN steps through runc and bock.

buildah calls create/start/state/delete with no ``--root``: the runtime's default
state directory must work across processes.
"""

from __future__ import annotations

import os
import uuid

import pytest

pytestmark = pytest.mark.root


@pytest.fixture(params=["seccomp", "unconfined"])
def build(request, buildah, busybox_image, runtime_path, require_seccomp, tmp_path):
    """``build(containerfile_text)`` -> CompletedProcess; built images are removed afterwards."""
    if request.param == "seccomp":
        require_seccomp()
    sec = ["--security-opt", "seccomp=unconfined"] if request.param == "unconfined" else []
    tags: list[str] = []

    def run(text: str):
        ctx = tmp_path / "ctx"
        ctx.mkdir(exist_ok=True)
        (ctx / "Containerfile").write_text(text.replace("IMAGE", busybox_image["name"]))
        tag = "localhost/t/" + uuid.uuid4().hex[:12]
        tags.append(tag)
        argv = ["build", "--pull=never", "--network", "none", "--isolation", "oci", "--runtime", runtime_path]
        out = buildah(*argv, *sec, "-t", tag, "-f", str(ctx / "Containerfile"), str(ctx), check=False)
        out.tag = tag
        out.sec = sec
        return out

    try:
        yield run
    finally:
        for tag in tags:
            buildah("rmi", "-f", tag, check=False)


def test_build_run_steps_succeed(build, buildah, runtime_path):
    out = build(
        "FROM IMAGE\n"
        "RUN echo built > /built.txt && ls /bin | wc -l > /applets.txt\n"
        "RUN test -s /built.txt && echo step-two-$(cat /built.txt)\n"
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "step-two-built" in out.stdout
    name = "t-" + uuid.uuid4().hex[:12]
    buildah("from", "--pull=never", *out.sec, "--name", name, out.tag)
    try:
        got = buildah("run", "--isolation", "oci", "--runtime", runtime_path, name, "cat", "/built.txt")
        assert got.stdout == "built\n"
    finally:
        buildah("rm", name, check=False)
    assert not os.path.exists(f"/run/bock/buildah-{name}")


def test_build_failing_run_step(build):
    out = build("FROM IMAGE\nRUN echo before\nRUN sh -c 'echo failing-step >&2; exit 3'\nRUN echo never\n")
    assert out.returncode != 0
    assert "failing-step" in out.stderr + out.stdout
    assert "exit status 3" in out.stderr
    assert "never" not in out.stdout.replace("RUN echo never", "")

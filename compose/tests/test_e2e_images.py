"""Images end to end: `build:` sections through bock-build (from a Dockerfile FROM the offline busybox
image), and pulls from a real docker-registry on 127.0.0.1 with every pull_policy."""

from __future__ import annotations

import subprocess
import sys

import pytest
from bockrose._testimages import import_busybox
from bockrose_helpers import REPO, RUNC, ps_json

pytestmark = [pytest.mark.root, pytest.mark.timeout(300)]

if str(REPO / "image" / "tests") not in sys.path:
    sys.path.insert(0, str(REPO / "image" / "tests"))
from bock_image_testlib import Registry  # noqa: E402


def _bock_image(root: str, *args: str) -> subprocess.CompletedProcess:
    p = subprocess.run(
        [sys.executable, "-m", "bock_image.cli", "--root", root, "--quiet", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p.returncode == 0, p.stderr
    return p


def _digest(root: str, ref: str) -> str:
    import bock_image

    return bock_image.Store(root).resolve(ref).digest


def _pid(c, service: str) -> int:
    return c.state().containers[f"{c.name}-{service}-1"].pid


@pytest.mark.parametrize("runtime", [pytest.param(None, id="bock"), pytest.param(RUNC, id="runc")])
def test_build_then_up_and_rebuild_recreates(compose, runtime):
    c = compose(runtime)
    app = c.dir / "app"
    app.mkdir()
    dockerfile = app / "Dockerfile"
    dockerfile.write_text(
        'FROM busybox\nRUN echo "built v1" > /built.txt\nCMD ["sh", "-c", "cat /built.txt; exec sleep 3600"]\n'
    )
    c.write("services:\n  app:\n    build: ./app\n  side:\n    image: busybox\n    command: sleep 3600\n")
    ref = f"{c.name}-app"
    p = c.run("up", "-d", "--no-build", check=False)
    assert p.returncode == 1 and f"image {ref} is not built yet (--no-build" in p.stderr, p.stderr
    p = c.run("build")
    assert "Building" in p.stdout + p.stderr
    first = _digest(c.image_root, ref)
    c.run("up", "-d")
    c.wait_for(lambda: "built v1" in c.run("logs", "app").stdout, what="the built image's output")
    pid = _pid(c, "app")
    # no change: no build, no recreation
    p = c.run("up", "-d")
    assert "Building" not in p.stdout + p.stderr and "Recreate" not in p.stdout + p.stderr
    assert _pid(c, "app") == pid and _digest(c.image_root, ref) == first
    # a changed Dockerfile with --build: rebuilt, the new image's container replaces the old one
    dockerfile.write_text(dockerfile.read_text().replace("built v1", "built v2"))
    p = c.run("up", "-d", "--build")
    out = p.stdout + p.stderr
    assert "Building" in out and f"Container {c.name}-app-1  Recreate" in out, out
    assert f"Container {c.name}-side-1  Running" in out  # an unrelated service is untouched
    assert _digest(c.image_root, ref) != first
    c.wait_for(lambda: "built v2" in c.run("logs", "app").stdout, what="the rebuilt image's output")
    assert _pid(c, "app") != pid
    assert c.exec("app", "cat", "/built.txt").stdout.strip() == "built v2"
    # `build` alone then `up`: the new image recreates too (as docker compose does)
    dockerfile.write_text(dockerfile.read_text().replace("built v2", "built v3"))
    c.run("build", "app")
    pid = _pid(c, "app")
    p = c.run("up", "-d")
    assert "Recreate" in p.stdout + p.stderr
    assert c.exec("app", "cat", "/built.txt").stdout.strip() == "built v3" and _pid(c, "app") != pid


@pytest.fixture
def registry(tmp_path):
    reg = Registry(tmp_path / "registry")
    yield reg
    reg.stop()


def test_pull_and_pull_policies(compose, image_root, registry, tmp_path):
    v1 = f"{registry.host}/bockrose/bb:1"
    _bock_image(image_root, "push", "busybox:latest", v1)
    fresh = str(tmp_path / "fresh-images")  # the project's own store starts empty
    c = compose(images=fresh)
    c.write(f"""
services:
  nev:
    image: {v1}
    pull_policy: never
    command: sleep 3600
  mis:
    image: {v1}
    pull_policy: missing
    command: sleep 3600
  alw:
    image: {registry.host}/bockrose/bb:moving
    pull_policy: always
    command: sh -c 'cat /marker 2>/dev/null || echo no-marker; exec sleep 3600'
""")
    # never + a missing image: a clear error, nothing started
    p = c.run("up", "-d", "nev", check=False)
    assert p.returncode == 1
    assert f"no such image: {v1}" in p.stderr and "pull_policy is never" in p.stderr, p.stderr
    assert c.state() is None
    # missing: pulled once, then not again
    p = c.run("up", "-d", "mis")
    assert f"Image {v1}  Pulled" in p.stdout + p.stderr
    p = c.run("up", "-d", "nev", "mis")  # nev's image is present now
    assert "Pulling" not in p.stdout + p.stderr
    assert {x["Service"] for x in ps_json(c)} == {"nev", "mis"}
    # `pull`: never is skipped, missing is skipped when present, always is pulled
    moving = f"{registry.host}/bockrose/bb:moving"
    _bock_image(image_root, "push", "busybox:latest", moving)
    p = c.run("pull")
    out = p.stdout + p.stderr
    assert f"Image {v1}  Skipped (pull_policy never)" in out
    assert f"Image {v1}  Skipped - Image is already present locally" in out
    assert f"Image {moving}  Pulled" in out
    assert _digest(fresh, moving) == _digest(image_root, "busybox:latest")
    c.run("up", "-d")
    c.wait_for(lambda: "no-marker" in c.run("logs", "alw").stdout, what="alw's first image")
    pids = {s: _pid(c, s) for s in ("nev", "mis", "alw")}
    # always: a no-change up still pulls; the same digest recreates nothing
    p = c.run("up", "-d")
    assert f"Image {moving}  Pulled" in p.stdout + p.stderr and "Recreate" not in p.stdout + p.stderr
    assert {s: _pid(c, s) for s in pids} == pids
    # a new image under the same tag: `up` pulls it and recreates only that service
    import_busybox(image_root, "busybox:marked", cmd=["sh"])
    marked_root = tmp_path / "marked"
    marked_root.mkdir()
    (marked_root / "Dockerfile").write_text("FROM busybox:marked\nRUN echo from-v2 > /marker\n")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "bock_build.cli",
            "--root",
            image_root,
            "-q",
            "-t",
            "bb-marked:2",
            str(marked_root),
        ],
        check=True,
        capture_output=True,
        timeout=180,
    )
    _bock_image(image_root, "push", "bb-marked:2", moving)
    p = c.run("up", "-d")
    assert f"Container {c.name}-alw-1  Recreate" in p.stdout + p.stderr
    c.wait_for(lambda: "from-v2" in c.run("logs", "alw").stdout, what="alw's new image")
    assert _pid(c, "nev") == pids["nev"] and _pid(c, "mis") == pids["mis"]
    # with the registry gone: missing and never need nothing, always fails clearly
    registry.stop()
    c.run("up", "-d", "nev", "mis")
    p = c.run("up", "-d", "alw", check=False)
    assert p.returncode == 1 and f"pull {moving} failed" in p.stderr

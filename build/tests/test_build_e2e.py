"""End-to-end builds with real parts: busybox imported offline through bock-image, RUN steps as
real containers (bock, and runc), results run with bock/runc and inspected with skopeo and umoci."""

from __future__ import annotations

import os
import os as _os
import shutil
import subprocess
import sys as _sys
import tarfile

import pytest

_sys.path.insert(0, _os.path.dirname(__file__))
from buildtest_helpers import (
    bock_build,
    bock_image,
    config_of,
    layer_members,
    manifest_of,
    no_mounts_under,
    run_image,
    skopeo_json,
)

pytestmark = pytest.mark.root
RUNTIMES = ["bock", "runc"]


def _runtime_args(runtime: str) -> list[str]:
    return ["--runtime", "/usr/sbin/runc"] if runtime == "runc" else []


def build(store, ctx, *extra, runtime="bock", file=None, check=True, env=None):
    args = ["--root", str(store), *extra, *_runtime_args(runtime)]
    if file is not None:
        args += ["-f", str(file)]
    return bock_build(*args, str(ctx), check=check, env=env)


def _counts(out: str) -> tuple[int, int]:
    line = [x for x in out.splitlines() if x.startswith("built ")][-1]
    inner = line.rsplit("(", 1)[1]
    steps = int(inner.split(" layer steps")[0])
    cached = int(inner.split(", ")[1].split(" cached")[0])
    return steps, cached


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_build_run_and_inspect(store, ctx, tmp_path, runtime):
    (ctx / "hello.txt").write_text("hello from context\n")
    (ctx / "script.sh").write_text("#!/bin/sh\necho script ran\n")
    os.chmod(ctx / "script.sh", 0o755)
    (ctx / "Dockerfile").write_text(
        "FROM busybox\n"
        "ENV GREETING=hi APP=/app\n"
        "WORKDIR $APP\n"
        'RUN echo "built by $(id -u) in $(pwd)" > built.txt && echo live-output-line\n'
        "COPY hello.txt script.sh ./\n"
        "COPY --chown=alice:staff --chmod=0600 hello.txt /home/alice/secret.txt\n"
        "USER alice\n"
        "RUN id -u > /home/alice/uid.txt\n"
        "USER root\n"
        "LABEL org.example.kind=test\n"
        "EXPOSE 8080\n"
        "STOPSIGNAL SIGINT\n"
        'HEALTHCHECK --interval=2s CMD ["true"]\n'
        "ONBUILD RUN echo triggered > /onbuild.txt\n"
        'CMD ["sh", "-c", "cat built.txt hello.txt; ./script.sh; cat /home/alice/uid.txt; echo $GREETING"]\n'
    )
    res = build(store, ctx, "-t", "demo:1", runtime=runtime)
    assert "[0 3/14] live-output-line" in res.stdout  # streamed, prefixed with the step
    info = bock_image(store, "inspect", "demo:1").stdout
    digest = manifest_of(store, "demo:1")["Digest"]
    assert digest in info
    out = run_image(store, "demo:1", tmp_path, runtime=runtime)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split("\n")[:5] == [
        "built by 0 in /app",
        "hello from context",
        "script ran",
        "1000",
        "hi",
    ]
    oci_config = skopeo_json("inspect", "--config", f"oci:{store}:demo:1")
    assert oci_config["config"]["Labels"] == {"org.example.kind": "test"}
    config = config_of(store, "demo:1")  # skopeo's OCI view drops the Docker-only fields; read the blob
    cfg = config["config"]
    assert cfg["Labels"] == {"org.example.kind": "test"}
    assert cfg["ExposedPorts"] == {"8080/tcp": {}}
    assert cfg["StopSignal"] == "SIGINT"
    assert cfg["Healthcheck"] == {"Test": ["CMD", "true"], "Interval": 2_000_000_000}
    assert cfg["OnBuild"] == ["RUN echo triggered > /onbuild.txt"]
    assert cfg["WorkingDir"] == "/app" and "GREETING=hi" in cfg["Env"]
    assert len(config["rootfs"]["diff_ids"]) == 5  # busybox + 2 RUN + 2 COPY
    # umoci unpacks it and sees modes and owners
    bundle = tmp_path / "umoci-bundle"
    subprocess.run(
        ["umoci", "unpack", "--image", f"{store}:demo:1", str(bundle)], check=True, capture_output=True
    )
    try:
        st = os.lstat(bundle / "rootfs/home/alice/secret.txt")
        assert (st.st_uid, st.st_gid, st.st_mode & 0o7777) == (1000, 50, 0o600)
        assert os.access(bundle / "rootfs/app/script.sh", os.X_OK)
    finally:
        shutil.rmtree(bundle)
    # ONBUILD fires in a child image and is cleared there
    child = tmp_path / "child"
    child.mkdir()
    (child / "Dockerfile").write_text("FROM demo:1\nRUN cat /onbuild.txt\n")
    res = build(store, child, "-t", "child:1", runtime=runtime)
    assert "triggered" in res.stdout
    assert "OnBuild" not in config_of(store, "child:1")["config"]


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_multistage_copy_from_and_unneeded_stage_skipped(store, ctx, tmp_path, runtime):
    (ctx / "src.txt").write_text("source\n")
    (ctx / "Dockerfile").write_text(
        "FROM busybox AS builder\n"
        "COPY src.txt /src/\n"
        "RUN mkdir /out && tr a-z A-Z < /src/src.txt > /out/artefact && chown 1000:50 /out/artefact\n"
        "FROM busybox AS unused\n"
        "RUN echo this stage must not run && exit 7\n"
        "FROM scratch AS tools\n"
        "COPY --from=builder /bin/busybox /bin/busybox\n"
        "FROM busybox\n"
        "COPY --from=builder /out/ /app/\n"
        "COPY --from=tools /bin/busybox /tools/busybox\n"
        'CMD ["sh", "-c", "cat /app/artefact; stat -c %u:%g /app/artefact; /tools/busybox true && echo tools-ok"]\n'
    )
    res = build(store, ctx, "-t", "multi:1", "--jobs", "3", runtime=runtime)
    assert "must not run" not in res.stdout
    out = run_image(store, "multi:1", tmp_path, runtime=runtime)
    assert out.stdout.split("\n")[:3] == ["SOURCE", "1000:50", "tools-ok"], out.stderr
    # --target builds an intermediate stage
    build(store, ctx, "-t", "multi:builder", "--target", "builder", runtime=runtime)
    assert (
        "/out/artefact"
        in run_image(store, "multi:builder", tmp_path, "ls", "/out/artefact", runtime=runtime).stdout
    )


def test_arg_scoping(store, ctx, tmp_path):
    dockerfile = tmp_path / "elsewhere" / "args.Dockerfile"  # -f FILE outside the context
    dockerfile.parent.mkdir()
    dockerfile.write_text(
        "ARG BASE=busybox\n"
        "ARG GLOBAL=g-default\n"
        "FROM ${BASE}\n"
        'RUN echo "before:[${GLOBAL}]" > /args\n'
        "ARG GLOBAL\n"
        'RUN echo "redeclared:[${GLOBAL}]" >> /args\n'
        "ARG LOCAL=l-default\n"
        "ENV LOCAL=from-env\n"
        'RUN echo "local:[$LOCAL] usedefault:[${UNSET:-fallback}]" >> /args\n'
        'CMD ["cat", "/args"]\n'
    )
    build(store, ctx, "-t", "args:1", file=dockerfile)
    out = run_image(store, "args:1", tmp_path).stdout.splitlines()
    assert out == ["before:[]", "redeclared:[g-default]", "local:[from-env] usedefault:[fallback]"]
    build(
        store,
        ctx,
        "-t",
        "args:2",
        "--build-arg",
        "GLOBAL=cli",
        "--build-arg",
        "LOCAL=cli-local",
        file=dockerfile,
    )
    out = run_image(store, "args:2", tmp_path).stdout.splitlines()
    assert out == ["before:[]", "redeclared:[cli]", "local:[from-env] usedefault:[fallback]"]
    cfg = skopeo_json("inspect", "--config", f"oci:{store}:args:2")
    assert not any(e.startswith("GLOBAL=") for e in cfg["config"]["Env"])  # ARGs stay out of the image


def test_cache_hits_and_precise_invalidation(store, ctx):
    (ctx / "a.txt").write_text("a1\n")
    (ctx / "data").mkdir()
    for i in range(20):
        (ctx / "data" / f"f{i}").write_text(f"{i}\n")
    (ctx / "Dockerfile").write_text(
        "FROM busybox\n"
        "RUN echo one > /one\n"
        "COPY a.txt /a.txt\n"
        "RUN cat /a.txt > /a.copy\n"
        "COPY data/ /data/\n"
        "RUN ls /data | wc -l > /count\n"
    )
    assert _counts(build(store, ctx, "-t", "c:1").stdout) == (5, 0)
    assert _counts(build(store, ctx, "-t", "c:1").stdout) == (5, 5)
    os.utime(ctx / "a.txt", (1, 1))  # mtime is not content
    assert _counts(build(store, ctx, "-t", "c:1").stdout) == (5, 5)
    (ctx / "data" / "f7").write_text("changed\n")
    res = build(store, ctx, "-t", "c:2")
    assert _counts(res.stdout) == (5, 3)  # exactly COPY data/ and the RUN after it rebuilt
    assert "COPY data/ /data/  (cached)" not in res.stdout
    os.chmod(ctx / "a.txt", 0o600)  # mode is content
    assert _counts(build(store, ctx, "-t", "c:3").stdout) == (5, 1)
    assert _counts(build(store, ctx, "-t", "c:3", "--no-cache").stdout) == (5, 0)
    # cache commands
    listing = bock_build("cache", "--root", str(store), "list").stdout
    assert "RUN ls /data" in listing
    pruned = bock_build("cache", "--root", str(store), "prune", "--keep-storage", "1KB").stdout
    assert "removed" in pruned and not pruned.startswith("removed 0 ")
    bock_build("cache", "--root", str(store), "prune", "--filter", "until=1h")
    bock_build("cache", "--root", str(store), "clear")
    assert bock_build("cache", "--root", str(store), "list").stdout.strip().endswith("0 entries, 0 bytes")
    assert _counts(build(store, ctx, "-t", "c:4").stdout) == (5, 0)
    bad = bock_build("cache", "--root", str(store), "prune", "--keep-storage", "lots", check=False)
    assert bad.returncode == 1 and "invalid size 'lots'" in bad.stderr


def test_cache_mount_persists_and_stays_out_of_layers(store, ctx, tmp_path):
    (ctx / "Dockerfile").write_text(
        "FROM busybox\n"
        "RUN --mount=type=cache,target=/var/cache/app echo x >> /var/cache/app/runs && wc -l < /var/cache/app/runs > /runs\n"
        'CMD ["cat", "/runs"]\n'
    )
    build(store, ctx, "-t", "cm:1")
    build(store, ctx, "-t", "cm:2", "--no-cache")
    assert run_image(store, "cm:2", tmp_path).stdout.strip() == "2"
    top = manifest_of(store, "cm:2")["Layers"][-1]
    assert not any("var/cache/app" in m for m in layer_members(store, top))


def test_secret_in_no_layer(store, ctx, tmp_path):
    secret = tmp_path / "token"
    secret.write_text("s3cr3t-value-42")
    (ctx / "Dockerfile").write_text(
        "FROM busybox\n"
        "RUN --mount=type=secret,id=tok test $(md5sum < /run/secrets/tok | cut -c1-8) = 3eb20ed1 && echo ok > /ok\n"
        "RUN --mount=type=secret,id=tok,env=TOKEN,target=/etc/tok.txt test ${#TOKEN} = 15 && test -s /etc/tok.txt\n"
    )
    res = build(store, ctx, "-t", "sec:1", "--secret", f"id=tok,src={secret}")
    assert "s3cr3t" not in res.stdout
    for layer in manifest_of(store, "sec:1")["Layers"]:
        names = layer_members(store, layer)
        assert not any("secrets" in n or "tok" in n for n in names), names
        alg, _, hexpart = layer.partition(":")
        with tarfile.open(store / "blobs" / alg / hexpart) as tar:
            for m in tar.getmembers():
                if m.isfile():
                    assert b"s3cr3t" not in tar.extractfile(m).read()
    missing = build(store, ctx, "-t", "sec:2", "--no-cache", check=False)
    assert missing.returncode == 1 and "exit code" in missing.stderr  # not given: not mounted, step fails


def test_dockerignore(store, ctx, tmp_path):
    (ctx / "keep.txt").write_text("keep\n")
    (ctx / "skip.log").write_text("skip\n")
    (ctx / "node_modules").mkdir()
    (ctx / "node_modules" / "big").write_text("x\n")
    (ctx / "docs").mkdir()
    (ctx / "docs" / "a.md").write_text("a\n")
    (ctx / "docs" / "keep.md").write_text("k\n")
    (ctx / ".dockerignore").write_text("*.log\nnode_modules\ndocs/*.md\n!docs/keep.md\n")
    (ctx / "Dockerfile").write_text('FROM busybox\nCOPY . /ctx/\nCMD ["find", "/ctx", "-type", "f"]\n')
    build(store, ctx, "-t", "ign:1")
    files = sorted(run_image(store, "ign:1", tmp_path).stdout.split())
    assert files == ["/ctx/.dockerignore", "/ctx/Dockerfile", "/ctx/docs/keep.md", "/ctx/keep.txt"]
    (ctx / "Dockerfile").write_text("FROM busybox\nCOPY skip.log /\n")
    res = build(store, ctx, "-t", "ign:2", check=False)
    assert res.returncode == 1 and "'skip.log' is excluded by .dockerignore" in res.stderr


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_whiteouts_and_opaque_dirs(store, ctx, tmp_path, runtime):
    (ctx / "Dockerfile").write_text(
        "FROM busybox\n"
        "RUN rm /bin/vi && rm -rf /home/alice && rm -rf /etc && mkdir /etc && echo fresh > /etc/only\n"
        'CMD ["sh", "-c", "ls /etc; ls /home; test -e /bin/vi || echo vi-gone"]\n'
    )
    build(store, ctx, "-t", "wh:1", runtime=runtime)
    top = manifest_of(store, "wh:1")["Layers"][-1]
    names = layer_members(store, top)
    assert "bin/.wh.vi" in names and "home/.wh.alice" in names
    assert "etc/.wh..wh..opq" in names
    out = run_image(store, "wh:1", tmp_path, runtime=runtime).stdout.split()
    assert out == ["only", "vi-gone"]


def test_reproducible_digests(store, ctx, tmp_path, busybox_tarball):
    (ctx / "f.txt").write_text("same\n")
    (ctx / "Dockerfile").write_text("FROM busybox\nRUN echo x > /x && touch /y\nCOPY f.txt /f.txt\n")
    other = tmp_path / "store2"
    bock_image(other, "import", str(busybox_tarball), "busybox:latest")
    base1 = manifest_of(store, "busybox")["Digest"]
    base2 = manifest_of(other, "busybox")["Digest"]
    env = {"SOURCE_DATE_EPOCH": "1700000000"}
    build(store, ctx, "-t", "r:1", env=env)
    build(other, ctx, "-t", "r:1", "--no-cache", env=env)
    d1, d2 = manifest_of(store, "r:1")["Digest"], manifest_of(other, "r:1")["Digest"]
    if base1 == base2:
        assert d1 == d2
    cfg = skopeo_json("inspect", "--config", f"oci:{store}:r:1")
    assert cfg["created"] == "2023-11-14T22:13:20Z"
    # same store, no cache, built twice: identical
    build(store, ctx, "-t", "r:2", "--no-cache", env=env)
    assert manifest_of(store, "r:2")["Digest"] == d1
    top = manifest_of(store, "r:2")["Layers"][1]
    alg, _, hexpart = top.partition(":")
    with tarfile.open(store / "blobs" / alg / hexpart) as tar:
        assert all(m.mtime <= 1700000000 for m in tar.getmembers())


def test_failing_run_leaves_store_as_it_was(store, ctx, tmp_path):
    (ctx / "Dockerfile").write_text("FROM busybox\nRUN echo line-one && echo line-two && exit 3\n")
    index_before = (store / "index.json").read_bytes()
    res = build(store, ctx, "-t", "fail:1", check=False)
    assert res.returncode == 1
    assert "RUN echo line-one" in res.stderr and "exit code 3" in res.stderr and "line-two" in res.stderr
    assert (store / "index.json").read_bytes() == index_before
    assert list((store / ".bock" / "ingest").iterdir()) == []
    assert list((store / ".bock-build" / "tmp").iterdir()) == []
    assert no_mounts_under(store)


def test_clear_errors(store, ctx, tmp_path):
    (ctx / "Dockerfile").write_text("FROM nosuch/image:9\nRUN true\n")
    res = build(store, ctx, check=False)
    assert res.returncode == 1 and "base image 'nosuch/image:9' not found" in res.stderr
    outside = tmp_path / "outside.txt"
    outside.write_text("x")
    (ctx / "Dockerfile").write_text("FROM busybox\nCOPY ../outside.txt /\n")
    res = build(store, ctx, check=False)
    assert res.returncode == 1 and "'../outside.txt' is outside the build context" in res.stderr
    os.symlink(str(outside), ctx / "link")
    (ctx / "Dockerfile").write_text("FROM busybox\nCOPY link /\n")
    res = build(store, ctx, check=False)
    assert res.returncode == 1 and "outside the build context" in res.stderr and str(outside) in res.stderr
    (ctx / "Dockerfile").write_text("FROM busybox\nRUN true\nFROBNICATE\n")
    res = build(store, ctx, check=False)
    assert res.returncode == 1 and res.stderr.strip().endswith(":3: unknown instruction: FROBNICATE")


def test_bockfile_build_and_outputs(store, ctx, tmp_path):
    (ctx / "app.txt").write_text("app\n")
    (ctx / "Bockfile").write_text(
        "version: 1\n"
        "args: {BASE: busybox}\n"
        "stages:\n"
        "  - name: app\n"
        "    from: ${BASE}\n"
        "    steps:\n"
        "      - env: {MODE: prod}\n"
        "      - workdir: /srv\n"
        "      - copy: app.txt\n"
        "        to: ./\n"
        '      - run: echo "$MODE costs \\$5" > note\n'
        "      - copy: inline.txt\n"
        "        to: /srv/inline.txt\n"
        '        content: "written inline\\n"\n'
        "    config:\n"
        "      cmd: [sh, -c, 'cat app.txt note inline.txt']\n"
        "      healthcheck: {test: [CMD, 'true'], interval: 10s, retries: 2}\n"
    )
    archive = tmp_path / "out.tar"
    docker_archive = tmp_path / "docker.tar"
    layout = tmp_path / "layout"
    build(store, ctx, "-t", "bockfile:1", "--output", f"oci-archive:{archive}", "--output",
          f"docker-archive:{docker_archive}", "--output", f"oci:{layout}")  # fmt: skip
    out = run_image(store, "bockfile:1", tmp_path).stdout
    assert out == "app\nprod costs $5\nwritten inline\n"
    digest = manifest_of(store, "bockfile:1")["Digest"]
    for src in (f"oci-archive:{archive}", f"docker-archive:{docker_archive}"):
        assert skopeo_json("inspect", src)["Layers"]
    assert skopeo_json("inspect", f"oci:{layout}:bockfile:1")["Digest"] == digest


def test_add_extracts_local_tarballs_and_copy_keeps_symlinks(store, ctx, tmp_path):
    src = tmp_path / "tree"
    (src / "pkg").mkdir(parents=True)
    (src / "pkg" / "tool.sh").write_text("#!/bin/sh\necho tool\n")
    os.chmod(src / "pkg" / "tool.sh", 0o750)
    os.symlink("tool.sh", src / "pkg" / "link")
    subprocess.run(["tar", "-C", str(src), "-czf", str(ctx / "vendor.tgz"), "pkg"], check=True)
    shutil.copytree(src / "pkg", ctx / "plain", symlinks=True)
    (ctx / "Dockerfile").write_text(
        "FROM busybox\n"
        "ADD vendor.tgz /opt/\n"
        "COPY vendor.tgz /archives/\n"
        "COPY plain /plain\n"
        'CMD ["sh", "-c", "/opt/pkg/link; stat -c %a /opt/pkg/tool.sh; readlink /plain/link; ls /archives"]\n'
    )
    build(store, ctx, "-t", "add:1")
    out = run_image(store, "add:1", tmp_path).stdout.split()
    assert out == ["tool", "750", "tool.sh", "vendor.tgz"]


def test_independent_stages_run_in_parallel(store, ctx):
    """Two stages that can only finish if they run at the same time (a rendezvous in a shared cache
    mount): with --jobs 2 the build succeeds; stage skipping and ordering still hold."""
    wait = "for i in $(seq 150); do test -e /rv/{other} && exit 0; sleep 0.1; done; exit 1"
    (ctx / "Dockerfile").write_text(
        "FROM busybox AS left\n"
        f"RUN --mount=type=cache,id=rendezvous,target=/rv touch /rv/left && {wait.format(other='right')}\n"
        "FROM busybox AS right\n"
        f"RUN --mount=type=cache,id=rendezvous,target=/rv touch /rv/right && {wait.format(other='left')}\n"
        "FROM busybox\n"
        "COPY --from=left /bin/true /left-done\n"
        "COPY --from=right /bin/true /right-done\n"
    )
    res = build(store, ctx, "-t", "par:1", "--jobs", "2")
    assert _counts(res.stdout) == (4, 0)


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_bind_and_tmpfs_mounts_and_network_modes(store, ctx, tmp_path, runtime):
    (ctx / "scripts").mkdir()
    (ctx / "scripts" / "gen.sh").write_text("echo generated-v1\n")
    (ctx / "Dockerfile").write_text(
        "FROM busybox\n"
        "RUN --mount=type=bind,source=scripts,target=/scripts sh /scripts/gen.sh > /gen.txt\n"
        "RUN --mount=type=tmpfs,target=/scratch touch /scratch/x && grep -q ' /scratch tmpfs' /proc/mounts\n"
        "RUN ls /sys/class/net > /net-none\n"
        "RUN --network=host ls /sys/class/net > /net-host\n"
        'CMD ["sh", "-c", "cat /gen.txt; cat /net-none; wc -l < /net-host; ls /scripts /scratch 2>&1 | wc -l"]\n'
    )
    assert _counts(build(store, ctx, "-t", "mnt:1", runtime=runtime).stdout) == (4, 0)
    out = run_image(store, "mnt:1", tmp_path, runtime=runtime).stdout.split("\n")
    assert out[0] == "generated-v1" and out[1] == "lo"  # network none: a new netns with only lo
    assert int(out[2]) >= 2  # host network: the host's interfaces
    assert int(out[3]) == 2  # two "No such file" lines: mount points left no trace
    for layer in manifest_of(store, "mnt:1")["Layers"][1:]:
        assert not any(n.startswith(("scripts", "scratch")) for n in layer_members(store, layer))
    (ctx / "scripts" / "gen.sh").write_text("echo generated-v2\n")  # a bind source is part of the key
    assert _counts(build(store, ctx, "-t", "mnt:2", runtime=runtime).stdout) == (4, 0)
    assert run_image(store, "mnt:2", tmp_path, runtime=runtime).stdout.startswith("generated-v2\n")


def test_sigterm_stops_the_build_and_cleans_up(store, ctx):
    import signal
    import sys
    import time

    (ctx / "Dockerfile").write_text("FROM busybox\nRUN echo started-sleeping && sleep 60\n")  # killed early
    proc = subprocess.Popen(
        [sys.executable, "-m", "bock_build.cli", "--root", str(store), "-t", "term:1", str(ctx)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        for line in proc.stdout:
            if line.rstrip().endswith("] started-sleeping"):  # the output, not the step banner
                break
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        try:
            rc = proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise AssertionError(proc.communicate()) from None
        assert time.monotonic() - t0 < 20  # the step's container was killed, not waited out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert rc in (1, 130), proc.stderr.read()
    assert no_mounts_under(store)
    assert list((store / ".bock-build" / "tmp").iterdir()) == []
    assert "term:1" not in bock_image(store, "list").stdout


def test_cache_survives_bock_image_gc_by_rebuilding(store, ctx, tmp_path):
    (ctx / "Dockerfile").write_text("FROM busybox\nRUN echo kept > /kept\n")
    assert _counts(build(store, ctx, "-t", "gc:1").stdout) == (1, 0)
    bock_image(store, "rm", "gc:1")
    bock_image(store, "gc")  # deletes the cached layer: no image names it
    assert _counts(build(store, ctx, "-t", "gc:1").stdout) == (1, 0)  # a miss, not an error
    assert run_image(store, "gc:1", tmp_path, "cat", "/kept").stdout == "kept\n"
    assert _counts(build(store, ctx, "-t", "gc:1").stdout) == (1, 1)


def test_heredocs(store, ctx, tmp_path):
    (ctx / "Dockerfile").write_text(
        "FROM busybox\n"
        "RUN <<EOF\n"
        "echo plain-heredoc > /one\n"
        "echo second-line >> /one\n"
        "EOF\n"
        "RUN <<EOF\n"
        "#!/bin/sh -e\n"
        'echo "ran as $0" > /two\n'
        "EOF\n"
        "RUN cat > /three <<-END\n"
        "\tindented\n"
        "\tEND\n"
        "COPY <<EOF /four\n"
        "inline file\n"
        "EOF\n"
        'CMD ["sh", "-c", "cat /one /two /three /four; ls /dev/pipes 2>&1 | wc -l"]\n'
    )
    build(store, ctx, "-t", "hd:1")
    out = run_image(store, "hd:1", tmp_path).stdout.split("\n")
    assert out[:6] == [
        "plain-heredoc",
        "second-line",
        "ran as /dev/pipes/script",
        "indented",
        "inline file",
        "1",
    ]
    converted = bock_build("convert", str(ctx / "Dockerfile")).stdout
    assert "script: |" in converted
    bockfile = tmp_path / "Bockfile"
    bockfile.write_text(converted)
    build(store, ctx, "-t", "hd:2", file=bockfile)
    assert run_image(store, "hd:2", tmp_path).stdout.split("\n")[:6] == out[:6]


def test_copy_from_keyed_by_content_not_by_the_source_stage(store, ctx, tmp_path):
    df = "FROM busybox AS builder\nRUN echo {v} > /note && mkdir /out && echo same > /out/artefact\n" \
        "FROM busybox\nCOPY --from=builder /out/ /app/\nRUN cat /app/artefact > /copied\n"  # fmt: skip
    (ctx / "Dockerfile").write_text(df.format(v="v1"))
    assert _counts(build(store, ctx, "-t", "cf:1").stdout) == (3, 0)
    (ctx / "Dockerfile").write_text(df.format(v="v2"))  # builder changes, /out stays the same
    res = build(store, ctx, "-t", "cf:2")
    assert _counts(res.stdout) == (3, 2)  # only the builder's RUN re-ran
    assert "COPY --from=builder /out/ /app/  (cached)" in res.stdout
    (ctx / "Dockerfile").write_text(df.format(v="v3").replace("echo same", "echo different"))
    assert _counts(build(store, ctx, "-t", "cf:3").stdout) == (3, 0)
    assert run_image(store, "cf:3", tmp_path, "cat", "/copied").stdout == "different\n"


def test_run_bind_mount_from_a_stage(store, ctx, tmp_path):
    (ctx / "Dockerfile").write_text(
        "FROM busybox AS tools\nRUN mkdir /t && echo 'echo from-tools-stage' > /t/run.sh\n"
        "FROM busybox\nRUN --mount=type=bind,from=tools,source=/t,target=/mnt/t sh /mnt/t/run.sh > /out\n"
    )
    build(store, ctx, "-t", "bf:1")
    assert run_image(store, "bf:1", tmp_path, "cat", "/out").stdout == "from-tools-stage\n"
    top = manifest_of(store, "bf:1")["Layers"][-1]
    assert not any(n.startswith("mnt") for n in layer_members(store, top))


def test_forty_run_layers(store, ctx, tmp_path):
    """More layers than one mount(2) option page holds: each RUN mounts all the layers below it."""
    if tuple(int(x) for x in _os.uname().release.split(".")[:2]) < (6, 8):
        pytest.skip("more than ~30 overlay layers need lowerdir+ (Linux 6.8)")
    steps = "".join(f"RUN echo {i} > /n{i:02d}\n" for i in range(40))
    (ctx / "Dockerfile").write_text(f'FROM busybox\n{steps}CMD ["sh", "-c", "cat /n* | wc -l"]\n')
    build(store, ctx, "-t", "tall:1")
    assert len(manifest_of(store, "tall:1")["Layers"]) == 41
    assert run_image(store, "tall:1", tmp_path).stdout.split() == ["40"]

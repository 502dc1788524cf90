#!/usr/bin/env python3
"""bock-build vs buildah 1.28, side by side in one run (the lab's builder scenario,
../shared/lab/bench-build.sh): a cold build of FROM busybox + ENV + WORKDIR + 5 RUN + 2 COPY (one of
them 500 files x 100 KiB = 50 MiB), a no-change rebuild, a rebuild after one copied file changed,
and a cold 2-stage build. Prints median (min-max) per tool and the median ratio bock-build/buildah.

buildah runs isolated (own root/runroot/storage.conf/containers.conf/HOME/TMPDIR under BASE), overlay
storage, `--isolation oci --runtime /usr/sbin/runc --network none --layers`, default_ulimits within
this host's hard limits. bock-build runs with runc (same runtime as buildah) and with bock.

Usage: bench_build.py [-n N] [--base /tmp/bock-build-bench] [--skip-bock-runtime]
Writes only under BASE (plus buildah's blob-info cache and the runtimes' state dirs while steps run).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

SYSPATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
RUNC = "/usr/sbin/runc"
DOCKERFILE = """\
FROM docker.io/library/busybox:latest
ENV APP_HOME=/app APP_MODE=bench
WORKDIR /app
RUN echo "step 1" > /app/step1.txt
RUN mkdir -p /app/etc /app/var && ls /bin | wc -l > /app/etc/applets
COPY config.txt /app/etc/config.txt
RUN sed -e 's/^/cfg: /' /app/etc/config.txt > /app/etc/config.out
COPY data/ /app/data/
RUN du -sk /app/data > /app/data.size && ls /app/data | wc -l > /app/data.count
RUN echo "app:x:1000:1000::/app:/bin/sh" >> /etc/passwd && chown -R 1000 /app/var
CMD ["sh", "-c", "cat /app/data.size /app/data.count"]
"""
DOCKERFILE_2STAGE = """\
FROM docker.io/library/busybox:latest AS builder
WORKDIR /src
COPY data/ /src/data/
RUN mkdir /out && sha256sum /src/data/* > /out/manifest && cat /src/data/f0*.bin | head -c 1048576 > /out/artefact.bin

FROM docker.io/library/busybox:latest
WORKDIR /app
COPY --from=builder /out/ /app/
CMD ["sh", "-c", "wc -l /app/manifest"]
"""
IMG = "docker.io/library/busybox:latest"


def sh(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)


class Buildah:
    name = "buildah"

    def __init__(self, base: Path, archive: Path) -> None:
        self.base = base / "buildah"
        for d in ("home", "tmp"):
            (self.base / d).mkdir(parents=True, exist_ok=True)
        hard_nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        hard_nproc = resource.getrlimit(resource.RLIMIT_NPROC)[1]
        pid_max = int(Path("/proc/sys/kernel/pid_max").read_text())
        if hard_nproc == resource.RLIM_INFINITY or hard_nproc > pid_max:
            hard_nproc = pid_max
        (self.base / "containers.conf").write_text(
            "[containers]\n"
            f'default_ulimits = ["nofile={hard_nofile}:{hard_nofile}", "nproc={hard_nproc}:{hard_nproc}"]\n'
            '[engine]\ncgroup_manager = "cgroupfs"\n'
        )
        (self.base / "storage.conf").write_text(
            f'[storage]\ndriver = "overlay"\ngraphroot = "{self.base}/root"\nrunroot = "{self.base}/runroot"\n'
        )
        self.env = {
            "PATH": SYSPATH,
            "HOME": str(self.base / "home"),
            "TMPDIR": str(self.base / "tmp"),
            "CONTAINERS_CONF": str(self.base / "containers.conf"),
            "CONTAINERS_STORAGE_CONF": str(self.base / "storage.conf"),
        }
        self.cmd = [
            "buildah",
            "--root",
            f"{self.base}/root",
            "--runroot",
            f"{self.base}/runroot",
            "--storage-driver",
            "overlay",
        ]
        if subprocess.run(
            [*self.cmd, "inspect", "--type", "image", IMG], env=self.env, capture_output=True
        ).returncode:
            sh([*self.cmd, "pull", "--quiet", f"oci-archive:{archive}"], env=self.env)
            image_id = sh([*self.cmd, "images", "-q"], env=self.env).stdout.split()[0]
            sh([*self.cmd, "tag", image_id, IMG], env=self.env)

    def build(self, ctx: Path, dockerfile: str, tag: str) -> list[str]:
        return [*self.cmd, "build", "--quiet", "--pull=never", "--network", "none", "--isolation", "oci",
                "--runtime", RUNC, "--layers", "-t", tag, "-f", str(ctx / dockerfile), str(ctx)]  # fmt: skip

    def reset(self) -> None:
        for args in (["rm", "-a"], ["rmi", "-f", "localhost/bench/app:latest", "localhost/bench/app2:latest"],
                     ["rmi", "--prune"], ["rmi", "--prune"]):  # fmt: skip
            subprocess.run([*self.cmd, *args], env=self.env, capture_output=True)


class BockBuild:
    def __init__(self, base: Path, tarball: Path, runtime: str) -> None:
        self.name = f"bock-build ({os.path.basename(runtime)})"
        self.runtime = runtime
        self.store = base / f"store-{os.path.basename(runtime)}"
        self.env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{SYSPATH}"}
        self.env.pop("SOURCE_DATE_EPOCH", None)
        exe = Path(sys.executable).parent
        self.bock_build = str(exe / "bock-build")
        self.bock_image = str(exe / "bock-image")
        if subprocess.run(
            [self.bock_image, "--root", str(self.store), "inspect", IMG], capture_output=True
        ).returncode:
            sh([self.bock_image, "--root", str(self.store), "import", str(tarball), IMG])

    def build(self, ctx: Path, dockerfile: str, tag: str) -> list[str]:
        return [self.bock_build, "--root", str(self.store), "-q", "--runtime", self.runtime, "-t", tag,
                "-f", str(ctx / dockerfile), str(ctx)]  # fmt: skip

    def reset(self) -> None:
        """Cold: no built image, no cached step, no layer of ours, no memoised context hash (only the
        base image stays, as buildah keeps busybox)."""
        for tag in ("localhost/bench/app:latest", "localhost/bench/app2:latest"):
            subprocess.run([self.bock_image, "--root", str(self.store), "rm", tag], capture_output=True)
        sh([self.bock_build, "cache", "--root", str(self.store), "clear"])
        (self.store / ".bock-build" / "context-hashes.json").unlink(missing_ok=True)


def make_context(base: Path) -> Path:
    ctx = base / "ctx"
    data = ctx / "data"
    if not data.is_dir() or len(os.listdir(data)) != 500:
        shutil.rmtree(data, ignore_errors=True)
        data.mkdir(parents=True)
        for i in range(1, 501):
            (data / f"f{i:03d}.bin").write_bytes(os.urandom(102400))
    (ctx / "config.txt").write_text("mode=bench\n")
    (ctx / "Dockerfile").write_text(DOCKERFILE)
    (ctx / "Dockerfile.2stage").write_text(DOCKERFILE_2STAGE)
    return ctx


def make_busybox(base: Path) -> tuple[Path, Path]:
    """A busybox-static rootfs tarball, and an oci-archive of it (via bock-image) for buildah."""
    tarball = base / "busybox.tar.gz"
    archive = base / "busybox-oci.tar"
    if not tarball.exists():
        root = base / "bb-rootfs"
        shutil.rmtree(root, ignore_errors=True)
        for d in ("bin", "etc", "tmp", "root"):
            (root / d).mkdir(parents=True)
        shutil.copy2("/bin/busybox", root / "bin/busybox")
        for applet in sh(["/bin/busybox", "--list"]).stdout.split():
            if applet != "busybox":
                os.symlink("busybox", root / "bin" / applet)
        (root / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
        (root / "etc/group").write_text("root:x:0:\n")
        os.chmod(root / "tmp", 0o1777)
        sh(["tar", "-C", str(root), "--numeric-owner", "-czf", str(tarball), "."])
    if not archive.exists():
        bi = str(Path(sys.executable).parent / "bock-image")
        tmpstore = base / "export-store"
        sh([bi, "--root", str(tmpstore), "import", str(tarball), IMG])
        sh([bi, "--root", str(tmpstore), "save", "-o", str(archive), IMG])
    return tarball, archive


def timed(cmd: list[str], env: dict) -> float:
    os.sync()
    t0 = time.perf_counter()
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    dt = time.perf_counter() - t0
    if res.returncode != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{res.stdout}\n{res.stderr}")
    return dt


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", type=int, default=5, help="timed runs per figure (after 1 warm-up)")
    ap.add_argument("--base", default="/tmp/bock-build-bench")
    ap.add_argument("--skip-bock-runtime", action="store_true", help="only bock-build with runc")
    args = ap.parse_args()
    base = Path(args.base)
    base.mkdir(parents=True, exist_ok=True)
    # installed packages carry bytecode; this sandbox sets PYTHONDONTWRITEBYTECODE, so compile once
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    import bock_build
    import bock_image

    for pkg in (bock_build, bock_image):
        subprocess.run(
            [sys.executable, "-m", "compileall", "-q", os.path.dirname(pkg.__file__)],
            env=env,
            capture_output=True,
        )
    ctx = make_context(base)
    tarball, archive = make_busybox(base)
    tools = [Buildah(base, archive), BockBuild(base, tarball, RUNC)]
    if not args.skip_bock_runtime:
        tools.append(BockBuild(base, tarball, shutil.which("bock") or "bock"))

    def touch_one() -> None:
        (ctx / "data" / "f250.bin").write_bytes(os.urandom(102400))

    scenarios = [
        ("cold (1-stage)", "Dockerfile", "localhost/bench/app:latest", "reset"),
        ("rebuild, no change", "Dockerfile", "localhost/bench/app:latest", None),
        ("rebuild, 1 copied file changed", "Dockerfile", "localhost/bench/app:latest", "touch"),
        ("2-stage cold", "Dockerfile.2stage", "localhost/bench/app2:latest", "reset"),
    ]
    print(
        f"# bench_build.py, {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}, n={args.n} (+1 warm-up), {os.cpu_count()} CPUs"
    )
    print(
        f"# {sh(['buildah', '--version']).stdout.strip()}; {sh([RUNC, '--version']).stdout.splitlines()[0]}"
    )
    results: dict[tuple[str, str], list[float]] = {}
    for label, dockerfile, tag, setup in scenarios:
        for tool in tools:
            if setup is None:  # prime: one build so that everything is cached
                timed(tool.build(ctx, dockerfile, tag), tool.env)
            samples = []
            for i in range(args.n + 1):
                if setup == "reset":
                    tool.reset()
                elif setup == "touch":
                    touch_one()
                dt = timed(tool.build(ctx, dockerfile, tag), tool.env)
                if i > 0:
                    samples.append(dt)
            results[(label, tool.name)] = samples
    width = max(len(t.name) for t in tools)
    print()
    print(f"{'scenario':<32} {'tool':<{width}} {'median':>8} {'min-max':>15} {'ratio':>7}")
    for label, *_ in scenarios:
        ref = statistics.median(results[(label, "buildah")])
        for tool in tools:
            s = results[(label, tool.name)]
            med = statistics.median(s)
            print(
                f"{label:<32} {tool.name:<{width}} {med:8.3f} {min(s):7.3f}-{max(s):<7.3f} {med / ref:6.2f}x"
            )
    print("\nratio = median(tool) / median(buildah); goals: cold <= 1.0x, no-change <= 0.5x")
    for tool in tools:
        tool.reset()
    return 0


if __name__ == "__main__":
    sys.exit(main())

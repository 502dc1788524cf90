#!/usr/bin/env python3
"""bock-image vs skopeo (and skopeo+umoci), side by side in one run, median ratios.

Usage: bench_image.py [--runs N] [--layout DIR:REF | --rootfs DIR | --synthetic] [--only CASE]... [--peer-topdir]

Image: ``--layout`` an OCI layout (e.g. shared/lab/mk-debian-image.sh's /tmp/lab/img-deb/oci:latest,
a ~90 MiB gzip single-layer Debian bookworm minbase), ``--rootfs`` a directory imported as one gzip
layer (e.g. a debootstrap tree), or ``--synthetic`` (default when neither is given): ~90 MiB of
gzip layer made from random and text files, offline. A real docker-registry is started on a free
port; every trial starts from a fresh destination (untimed setup), with `sync` before the timed part.
Peak RSS is the child's ru_maxrss.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from bock_image_testlib import Registry  # noqa: E402  (the test suite's real docker-registry starter)

GOALS = {"pull": 1.0, "pull+unpack": 0.6, "push (cold)": 1.0}


def bock_cmd() -> list[str]:
    script = Path(sys.executable).with_name("bock-image")
    return [str(script)] if script.exists() else [sys.executable, "-m", "bock_image.cli"]


def run(cmd: list[str]) -> tuple[float, int, float]:
    """Wall seconds, peak RSS (KiB) and CPU seconds (user+sys) of one command."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode() if proc.stderr else ""
    if proc.returncode != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{err}")
    return elapsed, usage.ru_maxrss, usage.ru_utime + usage.ru_stime


BUNDLE = "@BUNDLE@"  # replaced by each trial's bundle directory
_bundle: list[Path] = []  # the current one (a new random name per trial: see fresh_pull)


def trial(setup, steps: list[list[str]]) -> tuple[float, int, float]:
    setup()
    subprocess.run(["sync"], check=True)
    total, peak, cpu_total = 0.0, 0, 0.0
    for cmd in steps:
        cmd = [a.replace(BUNDLE, str(_bundle[-1])) if _bundle else a for a in cmd]
        t, rss, cpu = run(cmd)
        total += t
        peak = max(peak, rss)
        cpu_total += cpu
    return total, peak, cpu_total


def rmtree(*paths: Path) -> None:
    for p in paths:
        if p.exists():
            subprocess.run(["rm", "-rf", "--one-file-system", str(p)], check=True)


def synthetic_rootfs(dest: Path, mib: int = 90) -> None:
    """~mib MiB of gzip layer: incompressible files plus many small text files (a realistic entry count)."""
    import random

    rng = random.Random(42)
    words = [f"word{i}" for i in range(500)]
    for i in range(5000):
        d = dest / "usr" / "share" / f"pkg{i % 200}"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"doc{i}.txt").write_text(" ".join(rng.choice(words) for _ in range(rng.randint(20, 400))))
    left = mib << 20
    i = 0
    while left > 0:
        size = min(left, rng.randint(16 << 10, 1 << 20))
        d = dest / "usr" / "lib" / f"lib{i % 50}"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"blob{i}.so").write_bytes(os.urandom(size))
        left -= size
        i += 1


def fmt(ts: list[float]) -> str:
    return f"{statistics.median(ts) * 1000:7.0f} ms ({min(ts) * 1000:.0f}-{max(ts) * 1000:.0f})"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--layout", help="OCI layout and ref, DIR:REF")
    ap.add_argument("--rootfs", help="directory to import as a one-layer gzip image")
    ap.add_argument("--synthetic", action="store_true")
    ap.add_argument("--workdir", default=None, help="scratch directory (default: a new one under /tmp)")
    ap.add_argument(
        "--peer-topdir",
        action="store_true",
        help="flag the scratch directory (umoci's bundle parent) chattr +T as bock-image flags its"
        " snapshot directory, so both get fresh ext4 block groups (see _fsutil.mark_topdir)",
    )
    ap.add_argument(
        "--only", action="append", default=[], help="run only this case (repeatable), e.g. pull+unpack"
    )
    args = ap.parse_args()

    work = Path(args.workdir or tempfile.mkdtemp(prefix="bock-image-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    if args.peer_topdir:
        from bock_image._fsutil import mark_topdir

        if not mark_topdir(work):
            raise SystemExit(f"--peer-topdir: cannot set the top-directory flag on {work}")
    bock = bock_cmd()
    src = work / "src"
    if args.layout:
        layout, _, ref = args.layout.partition(":")
        src_ref = f"{layout}:{ref or 'latest'}"
        what = f"layout {src_ref}"
    else:
        tree = Path(args.rootfs) if args.rootfs else work / "synthetic-rootfs"
        if not args.rootfs and not tree.exists():
            synthetic_rootfs(tree)
        rmtree(src)
        subprocess.run(
            [*bock, "--root", str(src), "import", str(tree), "bench:latest", "--cmd", "/bin/sh"],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        src_ref = f"{src}:bench:latest"
        what = f"{'rootfs ' + str(tree) if args.rootfs else 'synthetic'} imported as one gzip layer"
    raw = json.loads(
        subprocess.run(
            ["skopeo", "inspect", "--raw", f"oci:{src_ref}"], capture_output=True, check=True
        ).stdout
    )
    size = sum(d["size"] for d in raw["layers"])
    print(
        f"# image: {what}; {len(raw['layers'])} layer(s), {size / 1048576:.1f} MiB compressed;"
        f" runs={args.runs}{'; peer bundle parent chattr +T' if args.peer_topdir else ''}"
    )

    reg = Registry(work / "registry")
    push_reg = Registry(work / "registry-push")
    try:
        subprocess.run(
            [
                "skopeo",
                "copy",
                "-q",
                "--dest-tls-verify=false",
                f"oci:{src_ref}",
                f"docker://{reg.host}/bench/img:latest",
            ],
            check=True,
        )
        remote = f"{reg.host}/bench/img:latest"
        sk_dir, bk_dir, bundle_dir = work / "sk", work / "bk", BUNDLE
        push_store = work / "push-store"
        rmtree(push_store)
        subprocess.run(
            [*bock, "-q", "--root", str(push_store), "pull", remote, "--name", "push:latest"],
            check=True,
            stdout=subprocess.DEVNULL,
        )

        def fresh_pull() -> None:
            if _bundle and _bundle[-1].exists():
                subprocess.run([*bock, "unbundle", str(_bundle[-1])], check=True)
            rmtree(sk_dir, bk_dir, *_bundle)
            # a new name each time: ext4 places a directory by a hash of its name (Orlov)
            _bundle[:] = [work / f"bundle-{os.urandom(4).hex()}"]

        def fresh_push() -> None:
            rmtree(work / "registry-push" / "data" / "docker")

        def blobs_present() -> None:
            """The destination already has every blob: what is left is start-up and a few requests."""
            if not (work / "registry-push/data/docker/registry/v2/repositories/bench/present").exists():
                dest = f"{push_reg.host}/bench/present:latest"
                cmd = [*bock, "-q", "--root", str(push_store), "push", "push:latest", dest]
                subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)

        skopeo_pull = [
            "skopeo",
            "copy",
            "-q",
            "--src-tls-verify=false",
            f"docker://{remote}",
            f"oci:{sk_dir}:latest",
        ]
        bock_pull = [*bock, "-q", "--root", str(bk_dir), "pull", remote]
        umoci_unpack = ["umoci", "unpack", "--image", f"{sk_dir}:latest", bundle_dir]
        cases = {
            "pull": ([skopeo_pull], [bock_pull], fresh_pull),
            "pull+unpack": (
                [skopeo_pull, umoci_unpack],
                [
                    [*bock_pull, "--unpack"],
                    [*bock, "-q", "--root", str(bk_dir), "bundle", remote, bundle_dir],
                ],
                fresh_pull,
            ),
            "pull, then bundle (overlay)": (
                [skopeo_pull, umoci_unpack],
                [bock_pull, [*bock, "-q", "--root", str(bk_dir), "bundle", remote, bundle_dir]],
                fresh_pull,
            ),
            "pull, then bundle (copy)": (
                [skopeo_pull, umoci_unpack],
                [
                    bock_pull,
                    [
                        *bock,
                        "-q",
                        "--root",
                        str(bk_dir),
                        "bundle",
                        "--rootfs-mode",
                        "copy",
                        remote,
                        bundle_dir,
                    ],
                ],
                fresh_pull,
            ),
            "push (cold)": (
                [
                    [
                        "skopeo",
                        "copy",
                        "-q",
                        "--dest-tls-verify=false",
                        f"oci:{push_store}:push:latest",
                        f"docker://{push_reg.host}/bench/pushed:latest",
                    ]
                ],
                [
                    [
                        *bock,
                        "-q",
                        "--root",
                        str(push_store),
                        "push",
                        "push:latest",
                        f"{push_reg.host}/bench/pushed:latest",
                    ]
                ],
                fresh_push,
            ),
            "push (blobs present)": (
                [
                    [
                        "skopeo",
                        "copy",
                        "-q",
                        "--dest-tls-verify=false",
                        f"oci:{push_store}:push:latest",
                        f"docker://{push_reg.host}/bench/present:latest",
                    ]
                ],
                [
                    [
                        *bock,
                        "-q",
                        "--root",
                        str(push_store),
                        "push",
                        "push:latest",
                        f"{push_reg.host}/bench/present:latest",
                    ]
                ],
                blobs_present,
            ),
            "copy (registry to registry)": (
                [
                    [
                        "skopeo",
                        "copy",
                        "-q",
                        "--src-tls-verify=false",
                        "--dest-tls-verify=false",
                        f"docker://{remote}",
                        f"docker://{push_reg.host}/bench/copied:latest",
                    ]
                ],
                [[*bock, "-q", "copy", remote, f"{push_reg.host}/bench/copied:latest"]],
                fresh_push,
            ),
        }
        print(f"load average at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
        print(
            f"{'operation':28} {'peer':>30} {'bock-image':>26} {'ratio':>6} {'min-ratio':>9} {'goal':>6}"
            "  peak RSS peer/bock  CPU s peer/bock"
        )
        worst_rss = 0
        for name, (peer, ours, setup) in cases.items():
            if args.only and name not in args.only:
                continue
            pt, bt, prss, brss, pcpu, bcpu = [], [], 0, 0, [], []
            for _ in range(args.runs):
                t, r, c = trial(setup, peer)
                pt.append(t)
                pcpu.append(c)
                prss = max(prss, r)
                t, r, c = trial(setup, ours)
                bt.append(t)
                bcpu.append(c)
                brss = max(brss, r)
            setup()
            worst_rss = max(worst_rss, brss)
            ratio = statistics.median(bt) / statistics.median(pt)
            min_ratio = min(bt) / min(pt)
            goal = GOALS.get(name)
            verdict = "" if goal is None else ("ok" if ratio <= goal else "MISS")
            peer_name = "skopeo+umoci" if len(peer) > 1 else "skopeo"
            print(
                f"{name:28} {peer_name:>12} {fmt(pt)} {fmt(bt)} {ratio:5.2f}x {min_ratio:8.2f}x"
                f" {('<=' + str(goal)) if goal else '':>6} "
                f" {prss / 1024:7.0f}/{brss / 1024:.0f} MiB"
                f"   {statistics.median(pcpu):5.2f}/{statistics.median(bcpu):.2f} {verdict}"
            )
        print(
            f"bock-image peak RSS {worst_rss / 1024:.0f} MiB"
            f" (goal < 100 MiB: {'ok' if worst_rss < 100 * 1024 else 'MISS'})"
        )
    finally:
        reg.stop()
        push_reg.stop()
        if not args.workdir:
            if _bundle and _bundle[-1].exists():
                subprocess.run([*bock, "unbundle", str(_bundle[-1])], check=False)
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

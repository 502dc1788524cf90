#!/usr/bin/python3
"""bock vs runc, side by side in one run, on the same busybox bundle.

Prints the median wall time of each operation for both runtimes and the ratio
bock/runc, plus the memory (PSS and RSS) of a created, waiting container init.
The two runtimes alternate, iteration by iteration, so load on the machine hits both.

    python3 runtime/bench/bench_runtime.py [-n 20] [--bock PATH] [--runc PATH] [--cap CAP_X ...]

``--cap`` adds a capability to the containers' bounding, effective and permitted sets
(``--cap CAP_SYS_PTRACE``: the path where bock's waiting init runs a sealed interpreter).
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
import uuid


def make_bundle(base: str, args: list[str], caps: list[str] = ()) -> str:
    bundle = os.path.join(base, "bundle-" + args[0])
    rootfs = os.path.join(base, "rootfs")
    if not os.path.isdir(rootfs):
        os.makedirs(os.path.join(rootfs, "bin"))
        for d in ("etc", "proc", "sys", "dev", "tmp"):
            os.makedirs(os.path.join(rootfs, d), exist_ok=True)
        shutil.copy2("/bin/busybox", os.path.join(rootfs, "bin", "busybox"))
        applets = subprocess.run(["/bin/busybox", "--list"], capture_output=True, text=True).stdout.split()
        for a in applets:
            if a != "busybox":
                os.symlink("busybox", os.path.join(rootfs, "bin", a))
    os.makedirs(bundle)
    subprocess.run(["runc", "spec", "--bundle", bundle], check=True)
    path = os.path.join(bundle, "config.json")
    with open(path) as f:
        cfg = json.load(f)
    cfg["process"]["terminal"] = False
    cfg["process"]["args"] = args
    cfg["root"]["path"] = rootfs
    for kind in ("bounding", "effective", "permitted"):
        cfg["process"]["capabilities"][kind] += [
            c for c in caps if c not in cfg["process"]["capabilities"][kind]
        ]
    with open(path, "w") as f:
        json.dump(cfg, f)
    return bundle


def timed(cmd: list[str]) -> float:
    # stderr to a file, not a pipe: a created container's init keeps the runtime's stdio open
    with tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)
        dt = time.perf_counter() - t0
        if proc.returncode != 0:
            err.seek(0)
            raise SystemExit(f"failed: {' '.join(cmd)}: {err.read().decode().strip()}")
    return dt * 1000


def memory(pid: int) -> tuple[float, float]:
    pss = rss = 0
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            if line.startswith("Pss:"):
                pss = int(line.split()[1])
            elif line.startswith("Rss:"):
                rss = int(line.split()[1])
    return pss / 1024, rss / 1024


def state(rt: list[str], cid: str) -> dict:
    out = subprocess.run(rt + ["state", cid], capture_output=True, text=True, check=True).stdout
    return json.loads(out)


def bench(name: str, binary: str, root: str, true_b: str, sleep_b: str, results: dict) -> None:
    rt = [binary, "--root", root]
    r = results.setdefault(name, {})

    def add(key: str, value: float) -> None:
        r.setdefault(key, []).append(value)

    cid = "bench-" + uuid.uuid4().hex[:10]
    add("run true", timed(rt + ["run", "--bundle", true_b, cid]))
    cid = "bench-" + uuid.uuid4().hex[:10]
    add("create", timed(rt + ["create", "--bundle", true_b, cid]))
    pid = state(rt, cid)["pid"]
    pss, rss = memory(pid)
    add("init PSS MiB", pss)
    add("init RSS MiB", rss)
    add("state", timed(rt + ["state", cid]))
    add("start", timed(rt + ["start", cid]))
    for _ in range(2000):
        if state(rt, cid)["status"] == "stopped":
            break
        time.sleep(0.001)
    add("delete", timed(rt + ["delete", cid]))
    cid = "bench-" + uuid.uuid4().hex[:10]
    subprocess.run(rt + ["create", "--bundle", sleep_b, cid], check=True, stdin=subprocess.DEVNULL,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    add("delete --force (created)", timed(rt + ["delete", "--force", cid]))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=20, help="iterations (default 20)")
    ap.add_argument("--bock", default=os.environ.get("BOCK_BINARY") or shutil.which("bock"))
    ap.add_argument("--runc", default=shutil.which("runc") or "/usr/sbin/runc")
    ap.add_argument("--cap", action="append", default=[], help="add a capability to the containers")
    a = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("the benchmark needs root")
    if not a.bock:
        raise SystemExit("bock not found (install ./runtime or pass --bock)")
    base = tempfile.mkdtemp(prefix="bock-bench-")
    try:
        true_b = make_bundle(base, ["true"], a.cap)
        sleep_b = make_bundle(base, ["sleep", "1000"], a.cap)
        results: dict = {}
        runtimes = {"runc": a.runc, "bock": a.bock}
        for name, binary in runtimes.items():  # warm-up, not counted
            bench(name, binary, os.path.join(base, "warm-" + name), true_b, sleep_b, {})
        for _ in range(a.n):
            for name, binary in runtimes.items():
                bench(name, binary, os.path.join(base, "root-" + name), true_b, sleep_b, results)
        print(
            f"# {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} {os.uname().release} {os.cpu_count()} cpus"
            + (f" caps +{','.join(a.cap)}" if a.cap else "")
        )
        for name, binary in runtimes.items():
            print(
                f"# {name}: {binary}: {subprocess.run([binary, '--version'], capture_output=True, text=True).stdout.splitlines()[0]}"
            )
        print(f"{'operation (median of ' + str(a.n) + ')':34} {'runc':>10} {'bock':>10} {'bock/runc':>10}")
        for key in results["runc"]:
            rv = statistics.median(results["runc"][key])
            bv = statistics.median(results["bock"][key])
            unit = "" if "MiB" in key else " ms"
            print(f"{key:34} {rv:8.2f}{unit:3} {bv:8.2f}{unit:3} {bv / rv:9.2f}x")
    finally:
        subprocess.run(["rm", "-rf", "--one-file-system", base])
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/python3
"""bock vs runc with ``--systemd-cgroup``, side by side in one run, against a real systemd.

Boots the host's systemd as PID 1 of private namespaces (the tests' fixture,
runtime/tests/_support/systemd_fixture.py: no systemd needs to run on the host), then times
``create`` (a transient scope with a typical containerd resources block) and ``delete --force``
(StopUnit) for both runtimes, alternating iteration by iteration, inside the fixture.
The same runs with the cgroupfs driver show what the systemd driver itself costs each runtime.
Prints the medians and the ratio bock/runc. As root:

    python3 runtime/bench/bench_systemd.py [-n 20] [--bock PATH] [--runc PATH]
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

HERE = os.path.dirname(os.path.abspath(__file__))
RUNTIME = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(RUNTIME, "tests"))

from _support.systemd_fixture import SystemdFixture  # noqa: E402

sys.path.insert(0, HERE)
from bench_runtime import make_bundle  # noqa: E402

RESOURCES = {
    "devices": [{"allow": False, "access": "rwm"}],
    "memory": {"limit": 256 << 20},
    "cpu": {"shares": 512, "quota": 50000, "period": 100000},
    "pids": {"limit": 1000},
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=20)
    ap.add_argument("--bock", default=shutil.which("bock") or "bock")
    ap.add_argument("--runc", default=shutil.which("runc") or "runc")
    opts = ap.parse_args()
    base = tempfile.mkdtemp(prefix="bench-systemd-")
    bundle = make_bundle(base, ["sleep", "600"])
    with open(os.path.join(bundle, "config.json")) as f:
        cfg = json.load(f)
    cfg["linux"]["resources"] = RESOURCES
    bock = os.path.realpath(opts.bock)
    # the checkout is read-only inside the fixture: byte-compile it here, or bock would
    # compile its modules on every call there
    subprocess.run([sys.executable, "-m", "compileall", "-q", os.path.join(RUNTIME, "bock")], check=True)
    fx = SystemdFixture(
        binds_rw=[base],
        binds_ro=sorted({sys.prefix, os.path.dirname(RUNTIME), os.path.dirname(bock)}),
    )
    fx.start()
    # (runtime, driver): the cgroupfs runs tell what the systemd driver itself costs
    runs = [(n, d) for d in ("systemd", "cgroupfs") for n in ("bock", "runc")]
    times: dict[tuple[str, str], dict[str, list[float]]] = {run: {} for run in runs}
    binaries = {"bock": bock, "runc": opts.runc}
    try:
        for _ in range(opts.n):
            for name, driver in runs:
                cid = f"b-{uuid.uuid4().hex[:12]}"
                if driver == "systemd":
                    cfg["linux"]["cgroupsPath"] = f"system.slice:{name}:{cid}"
                    flags = ["--systemd-cgroup"]
                else:
                    cfg["linux"]["cgroupsPath"] = f"/bench/{cid}"
                    flags = []
                with open(os.path.join(bundle, "config.json"), "w") as f:
                    json.dump(cfg, f)
                root = os.path.join(base, f"state-{name}")
                for op, argv in (
                    ("create", [*flags, "create", "--bundle", bundle, cid]),
                    ("delete", ["delete", "--force", cid]),
                ):
                    t0 = time.perf_counter()
                    with tempfile.TemporaryFile() as err:
                        r = fx.run(
                            [binaries[name], "--root", root, *argv],
                            check=False,
                            stdout=err,
                            stderr=err,
                            capture_output=False,
                        )
                        if r.returncode != 0:
                            err.seek(0)
                            raise SystemExit(f"{name} {op} failed: {err.read().decode().strip()}")
                    times[(name, driver)].setdefault(op, []).append((time.perf_counter() - t0) * 1000)
        fx.run(["sh", "-c", "rmdir /sys/fs/cgroup/*/bench"], check=False)
    finally:
        left = fx.stop()
        shutil.rmtree(base, ignore_errors=True)
    print(f"{opts.n} rounds, median ms (nsenter into the fixture included for all)")
    print(f"{'op':8} {'driver':9} {'bock':>8} {'runc':>8} {'bock/runc':>10}")
    for op in ("create", "delete"):
        for driver in ("systemd", "cgroupfs"):
            b = statistics.median(times[("bock", driver)][op])
            r = statistics.median(times[("runc", driver)][op])
            print(f"{op:8} {driver:9} {b:8.1f} {r:8.1f} {b / r:10.2f}")
    if left:
        print("left behind:", left)


if __name__ == "__main__":
    main()

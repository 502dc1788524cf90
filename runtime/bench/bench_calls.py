#!/usr/bin/python3
"""Where the time of ``ctr run --rm`` and ``podman run --rm`` goes, call by call, bock vs runc.

Each runtime is put behind a small bash wrapper that logs the wall time of every call the
client makes (create, start, delete, delete --force) and the gap before it (the client's
own work). Runs alternate between the runtimes, so machine load hits both; the table
shows medians. The image, containerd and podman are set up exactly as in bench_clients.py.

    /usr/bin/python3 runtime/bench/bench_calls.py [-n 7] [--bock PATH] [--runc PATH]
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_clients as bc

WRAPPER = """#!/bin/bash
s=$EPOCHREALTIME
{real} "$@"
rc=$?
echo "$s $EPOCHREALTIME $rc $*" >> {log}
exit $rc
"""


def wrapper(base: str, name: str, real: str) -> tuple[str, str]:
    """``<base>/wrap-<name>/<name>``: podman decides on --log-format by the runtime's name."""
    path, log = f"{base}/wrap-{name}/{name}", f"{base}/calls-{name}.log"
    os.makedirs(os.path.dirname(path))
    with open(path, "w") as f:
        f.write(WRAPPER.format(real=real, log=log))
    os.chmod(path, 0o755)
    return path, log


def call_name(argv: str) -> str:
    words = [w for w in argv.split() if not w.startswith("-") and "/" not in w and w != "json"]
    return (words[0] if words else "?") + (" --force" if "--force" in argv.split() else "")


def main() -> int:
    a = bc.parse_args(__doc__, 7)
    base = tempfile.mkdtemp(prefix="bcalls-", dir="/tmp")
    ns = "bk" + uuid.uuid4().hex[:8]
    runtimes = {name: wrapper(base, name, real) for name, real in (("runc", a.runc), ("bock", a.bock))}
    pm_argv, pm_env = bc.podman_setup(f"{base}/pm")
    cd = None
    res: dict[str, dict[str, dict[str, list[float]]]] = {}
    try:
        cd, ctr = bc.start_clients(base, ns, pm_argv, pm_env)

        def ctr_run(name: str) -> float:
            flags = ["--runc-binary", runtimes[name][0], "--runc-root", f"{base}/cd/{name}"]
            return bc.timed(*ctr, "run", "--rm", *flags, bc.IMAGE, "b-" + uuid.uuid4().hex[:12], "true")

        def podman_run(name: str) -> float:
            argv = [
                *pm_argv,
                "--runtime",
                runtimes[name][0],
                "run",
                "--rm",
                "--network",
                "none",
                bc.IMAGE,
                "true",
            ]
            return bc.timed(*argv, env=pm_env)

        for label, fn in (("ctr run --rm", ctr_run), ("podman run --rm", podman_run)):
            for name in runtimes:
                fn(name)  # warm-up
            for _ in range(a.n):
                for name, (_path, log) in runtimes.items():
                    if os.path.exists(log):
                        os.unlink(log)
                    t0 = time.time()
                    total = fn(name)
                    time.sleep(0.3)  # podman's cleanup (delete --force) runs after `run` returns
                    per = res.setdefault(label, {}).setdefault(name, {})
                    per.setdefault("whole run", []).append(total)
                    prev = t0
                    with open(log) as f:
                        for line in f:
                            start, end, _rc, argv = line.split(None, 3)
                            key = call_name(argv)
                            per.setdefault(key, []).append((float(end) - float(start)) * 1000)
                            per.setdefault(f"  gap before {key}", []).append((float(start) - prev) * 1000)
                            prev = float(end)
    finally:
        bc.stop_clients(base, ns, cd, pm_argv, pm_env)
    for label, per in res.items():
        print(f"{label} (median of {a.n}) {'runc ms':>12} {'bock ms':>9} {'bock-runc':>10}")
        for key in per["runc"]:
            r, b = statistics.median(per["runc"][key]), statistics.median(per["bock"].get(key, [0.0]))
            print(f"  {key:30} {r:9.1f} {b:9.1f} {b - r:+10.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

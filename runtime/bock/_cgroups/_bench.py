"""Cost of the cgroup work on bock's create path (not imported by the runtime).

    cd runtime && /usr/bin/python3 -S -m bock._cgroups._bench [N]   (as root)

Times, for a typical containerd ``linux.resources`` block (its device allow-list, a
memory limit, cpu shares/quota/period, a pids limit), median over N rounds:
for_container + create (mkdir + limits), apply (join a live process in every
hierarchy), destroy. The process is moved back out between rounds (not timed).
Also: the import of bock._cgroups alone, in a fresh interpreter.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid


def _median(xs: list[float]) -> float:
    xs = sorted(xs)
    return xs[len(xs) // 2]


TYPICAL = {
    "devices": [
        {"allow": False, "access": "rwm"},
        *({"allow": True, "type": "c", "major": 1, "minor": n, "access": "rwm"} for n in (3, 5, 7, 8, 9)),
        *({"allow": True, "type": "c", "major": 5, "minor": n, "access": "rwm"} for n in (0, 1, 2)),
        {"allow": True, "type": "c", "major": 136, "access": "rwm"},
    ],
    "memory": {"limit": 256 << 20},
    "cpu": {"shares": 1024, "quota": 100000, "period": 100000},
    "pids": {"limit": 1024},
}


def main(rounds: int = 50) -> None:
    from bock._cgroups import CgroupManager
    from bock._spec.resources import LinuxResources

    parent = f"bock-bench-{uuid.uuid4().hex[:8]}"
    child = subprocess.Popen(["/bin/sleep", "600"])
    home = CgroupManager.for_container("x", "/")  # the hierarchies' roots
    times: dict[str, list[float]] = {"create": [], "apply": [], "destroy": [], "total": []}
    try:
        for i in range(rounds):
            t0 = time.perf_counter()
            m = CgroupManager.for_container(f"c{i}", f"/{parent}/c{i}")
            m.create(LinuxResources.from_json(TYPICAL))
            t1 = time.perf_counter()
            m.apply(child.pid)
            t2 = time.perf_counter()
            home.apply(child.pid)  # out again: not timed
            t3 = time.perf_counter()
            m.destroy()
            t4 = time.perf_counter()
            times["create"].append(t1 - t0)
            times["apply"].append(t2 - t1)
            times["destroy"].append(t4 - t3)
            times["total"].append((t2 - t0) + (t4 - t3))
    finally:
        child.kill()
        child.wait()
        for d in home._dirs():
            try:
                os.rmdir(f"{d}/{parent}")
            except OSError:
                pass
    imports = []
    for _ in range(11):
        out = subprocess.run(
            [
                sys.executable,
                "-I",
                "-S",
                "-X",
                "importtime",
                "-c",
                "import sys; sys.path[:0] = sys.argv[1:]; import bock._cgroups",
                *sys.path[:1],
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stderr
        line = [x for x in out.splitlines() if x.rstrip().endswith("| bock._cgroups")][-1]
        imports.append(int(line.split("|")[1]) / 1000)
    print(f"mode: {m.mode}, {len(m._dirs())} cgroup directories per container, {rounds} rounds")
    for key, xs in times.items():
        print(
            f"{key:>8}: median {_median(xs) * 1000:.2f} ms  (min {min(xs) * 1000:.2f}, max {max(xs) * 1000:.2f})"
        )
    print(f"  import bock._cgroups (cumulative, fresh interpreter): median {_median(imports):.2f} ms")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 50)

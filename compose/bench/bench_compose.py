"""bockrose vs podman-compose (on an isolated podman 4.3 + runc), side by side in one run.

Scenarios (the same compose files for both tools, the same busybox image content):
  a  10 independent services `sleep 3600` on the default network
  b  a 3-service chain db <- api <- web, each gated by `depends_on: condition: service_healthy`,
     healthcheck ["CMD", "true"] every 1 s (podman-compose 1.6 skips health conditions on podman 4.3)
Operations: cold `up -d` (after down), no-change `up -d`, `ps`, `down -t 0`; for b also the time
until the last service is really healthy (bockrose waits for it inside `up`).

Usage (root): compose-venv/bin/python compose/bench/bench_compose.py [-n RUNS] [--runtime PATH] [--grace]
podman-compose must be installed in the same venv (pip install podman-compose==1.6.0)."""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = pathlib.Path(__file__).resolve()
REPO = HERE.parents[2]
for sub in ("compose", "image", "runtime"):
    sys.path.insert(0, str(REPO / sub))

IMG = "docker.io/library/busybox:latest"
SYSPATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def compose_a(name: str) -> str:
    lines = [f"name: {name}", "services:"]
    for i in range(1, 11):
        lines += [f"  s{i}:", f"    image: {IMG}", '    command: ["sleep", "3600"]']
    return "\n".join(lines) + "\n"


def compose_b(name: str) -> str:
    out = [f"name: {name}", "services:"]
    prev = None
    for s in ("db", "api", "web"):
        out += [
            f"  {s}:",
            f"    image: {IMG}",
            '    command: ["sleep", "3600"]',
            "    healthcheck:",
            '      test: ["CMD", "true"]',
            "      interval: 1s",
        ]
        if prev:
            out += ["    depends_on:", f"      {prev}:", "        condition: service_healthy"]
        prev = s
    return "\n".join(out) + "\n"


class Podman:
    """podman with its own root, runroot, tmp, config and runc; a wrapper first on PATH."""

    def __init__(self, base: pathlib.Path) -> None:
        self.base = base
        pb = base / "podman"
        for d in ("root", "runroot", "tmp", "volumes", "home", "networks", "bin"):
            (pb / d).mkdir(parents=True, exist_ok=True)
        import resource

        hard_n = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        nproc = resource.getrlimit(resource.RLIMIT_NPROC)[1]
        pid_max = int(pathlib.Path("/proc/sys/kernel/pid_max").read_text())
        nproc = pid_max if nproc == resource.RLIM_INFINITY or nproc > pid_max else nproc
        (pb / "containers.conf").write_text(f"""[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "{pb}/events.log"
tmp_dir = "{pb}/tmp"
volume_path = "{pb}/volumes"
runtime = "runc"
[containers]
log_driver = "k8s-file"
default_ulimits = ["nofile={hard_n}:{hard_n}", "nproc={nproc}:{nproc}"]
[network]
network_backend = "netavark"
network_config_dir = "{pb}/networks"
""")
        (pb / "storage.conf").write_text(
            f'[storage]\ndriver = "overlay"\ngraphroot = "{pb}/root"\nrunroot = "{pb}/runroot"\n'
        )
        wrapper = pb / "bin" / "podman"
        wrapper.write_text(f"""#!/bin/sh
exec env -i PATH={SYSPATH} HOME={pb}/home CONTAINERS_CONF={pb}/containers.conf \\
  CONTAINERS_STORAGE_CONF={pb}/storage.conf /usr/bin/podman --root {pb}/root --runroot {pb}/runroot \\
  --tmpdir {pb}/tmp --volumepath {pb}/volumes --cgroup-manager cgroupfs --events-backend file \\
  --runtime /usr/sbin/runc "$@"
""")
        wrapper.chmod(0o755)
        self.bin = pb / "bin"
        self.home = pb / "home"

    def podman(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run([str(self.bin / "podman"), *args], capture_output=True, text=True, check=check)

    def env(self) -> dict[str, str]:
        return {"PATH": f"{self.bin}:{SYSPATH}", "HOME": str(self.home)}


def timed(argv: list[str], env: dict[str, str], cwd: pathlib.Path) -> float:
    t0 = time.perf_counter()
    p = subprocess.run(argv, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    dt = time.perf_counter() - t0
    if p.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed: {p.stderr[-2000:]}")
    return dt


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=5, help="timed runs per figure (one untimed warm-up first)")
    ap.add_argument("--runtime", default=None, help="bockrose's runtime (default: bock)")
    ap.add_argument("--grace", action="store_true", help="also time `down` with the default 10 s grace")
    args = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("needs root")
    pc = shutil.which("podman-compose", path=os.path.dirname(sys.executable))
    if pc is None:
        raise SystemExit("podman-compose is not installed in this venv: pip install podman-compose==1.6.0")
    import bock_image
    from bockrose._testimages import import_busybox

    base = pathlib.Path(tempfile.mkdtemp(prefix="bockrose-bench-", dir="/tmp"))
    tag = base.name.rsplit("-", 1)[-1].lower().replace("_", "")
    results: dict[str, dict[str, list[float]]] = {}
    pod = Podman(base)
    try:
        img_root = base / "images"
        import_busybox(str(img_root), IMG, cmd=["sh"])
        archive = base / "busybox-oci.tar"
        store = bock_image.Store(str(img_root))
        bock_image.save_archive(store, [IMG], str(archive), "oci-archive")
        pod.podman("load", "-q", "-i", str(archive))
        br_env = {
            "PATH": f"{os.path.dirname(sys.executable)}:{SYSPATH}",
            "HOME": str(base),
            "BOCK_IMAGE_ROOT": str(img_root),
            "BOCKROSE_ROOT": str(base / "bockrose"),
        }
        br = [sys.executable, "-m", "bockrose.cli"] + (["--runtime", args.runtime] if args.runtime else [])
        tools = {"bockrose": (br, br_env), "podman-compose": ([pc], pod.env())}
        # the tools alternate run by run, so that the load of a shared machine hits both alike
        for scen, make in (("a", compose_a), ("b", compose_b)):
            dirs = {}
            for tool, (argv, env) in tools.items():
                d = base / f"{tool}-{scen}"
                d.mkdir()
                project = f"bench{tag}{scen}{'br' if tool == 'bockrose' else 'pc'}"
                (d / "compose.yaml").write_text(make(project))
                dirs[tool] = (d, project)
                subprocess.run(argv + ["down", "-t", "0"], env=env, cwd=d, capture_output=True)
            for i in range(args.n + 1):
                for tool, (argv, env) in tools.items():
                    d, project = dirs[tool]
                    r = results.setdefault(f"{scen} {tool}", {})
                    figs = {
                        "up -d cold": timed(argv + ["up", "-d"], env, d),
                        "up -d no-change": timed(argv + ["up", "-d"], env, d),
                        "ps": timed(argv + ["ps"], env, d),
                    }
                    if scen == "b":
                        figs["healthy after up start"] = figs["up -d cold"] + _wait_healthy(
                            tool, argv, env, d, pod, project
                        )
                    figs["down -t 0"] = timed(argv + ["down", "-t", "0"], env, d)
                    time.sleep(0.3)
                    if i == 0:
                        continue  # warm-up
                    for k, v in figs.items():
                        r.setdefault(k, []).append(v)
            if args.grace and scen == "a":
                for tool, (argv, env) in tools.items():
                    d, _ = dirs[tool]
                    for _ in range(2):
                        timed(argv + ["up", "-d"], env, d)
                        results[f"a {tool}"].setdefault("down (default grace)", []).append(
                            timed(argv + ["down"], env, d)
                        )
        _report(results, args)
    finally:
        for scen in ("a", "b"):
            for tool, (argv, env) in {"bockrose": (br, br_env), "podman-compose": ([pc], pod.env())}.items():
                d = base / f"{tool}-{scen}"
                if d.exists():
                    subprocess.run(argv + ["down", "-t", "0"], env=env, cwd=d, capture_output=True)
        pod.podman("rm", "-a", "-f", "-t", "0", check=False)
        pod.podman("pod", "rm", "-a", "-f", check=False)
        for n in pod.podman("network", "ls", "--format", "{{.Name}}", check=False).stdout.split():
            if n != "podman":
                pod.podman("network", "rm", "-f", n, check=False)
        pod.podman("system", "reset", "-f", check=False)
        subprocess.run(["rm", "-rf", "--one-file-system", str(base)], capture_output=True)
    return 0


def _wait_healthy(
    tool: str, argv: list[str], env: dict[str, str], d: pathlib.Path, pod: Podman, project: str
) -> float:
    """After `up -d` returned: how long until all three services report healthy (at most 30 s; 5 s
    for podman-compose, whose containers never become healthy here)."""
    t0 = time.perf_counter()
    limit = 30 if tool == "bockrose" else 5
    while time.perf_counter() - t0 < limit:
        if tool == "bockrose":
            out = subprocess.run(
                argv + ["ps", "--format", "json"], env=env, cwd=d, capture_output=True, text=True
            ).stdout
            health = [json.loads(x)["Health"] for x in out.splitlines() if x.strip()]
        else:
            out = pod.podman(
                "ps",
                "--filter",
                f"label=io.podman.compose.project={project}",
                "--format",
                "{{.Status}}",
                check=False,
            ).stdout
            health = ["healthy" if "(healthy)" in x else x for x in out.splitlines() if x.strip()]
        if len(health) >= 3 and all(h == "healthy" for h in health):
            return time.perf_counter() - t0
        time.sleep(0.05)
    return float("nan")


def _report(results: dict[str, dict[str, list[float]]], args) -> None:
    print(
        f"# bench_compose.py, {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}, n={args.n}, "
        f"{os.cpu_count()} CPUs, bockrose runtime: {args.runtime or 'bock'}; podman-compose 1.6.0 -> podman 4.3 "
        "-> runc; medians in ms (min-max)"
    )
    ops = [
        "up -d cold",
        "up -d no-change",
        "ps",
        "down -t 0",
        "down (default grace)",
        "healthy after up start",
    ]
    print(f"{'scenario / op':34} {'bockrose':>22} {'podman-compose':>22} {'ratio':>7}")
    for scen in ("a", "b"):
        for op in ops:
            b = results.get(f"{scen} bockrose", {}).get(op)
            p = results.get(f"{scen} podman-compose", {}).get(op)
            if not b and not p:
                continue

            def fmt(xs):
                if not xs or any(x != x for x in xs):
                    return "never" if xs else "-"
                return f"{statistics.median(xs) * 1000:.0f} ({min(xs) * 1000:.0f}-{max(xs) * 1000:.0f})"

            ratio = ""
            if b and p and all(x == x for x in b + p):
                ratio = f"{statistics.median(b) / statistics.median(p):.2f}x"
            print(f"{scen + ': ' + op:34} {fmt(b):>22} {fmt(p):>22} {ratio:>7}")
    print(
        "b/podman-compose: podman 4.3 runs health probes only through systemd timers (none here), so "
        "podman-compose 1.6 skips service_healthy with a warning and its containers never become healthy "
        "(never: not healthy 5 s after `up -d` returned)."
    )


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/python3
"""bock vs runc under real clients, side by side in one run: median wall times and ratios.

- ``ctr run --rm IMAGE ID true`` through a private containerd (four runtime calls per run);
- ``podman run --rm --network none IMAGE true`` through an isolated podman + conmon;
- direct calls on a running busybox container: ``exec true``, ``ps --format json``,
  ``pause`` + ``resume``, ``events --stats``.

The runtimes alternate iteration by iteration, so machine load hits both. Everything is
built offline under a private /tmp directory (busybox image with umoci + skopeo) and
torn down at the end (daemons, shims, mounts).

    /usr/bin/python3 runtime/bench/bench_clients.py [-n 15] [--bock PATH] [--runc PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

IMAGE = "docker.io/library/busybox:latest"
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def sh(*argv: str, env: dict | None = None, check: bool = True) -> subprocess.CompletedProcess:
    # stdio to files: a container left running would keep a pipe open forever
    with tempfile.TemporaryFile("w+") as out:
        proc = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=out)
        out.seek(0)
        text = out.read()
    if check and proc.returncode != 0:
        raise SystemExit(f"failed ({proc.returncode}): {' '.join(argv)}\n{text}")
    return subprocess.CompletedProcess(argv, proc.returncode, text, "")


def timed(*argv: str, env: dict | None = None) -> float:
    t0 = time.perf_counter()
    sh(*argv, env=env)
    return (time.perf_counter() - t0) * 1000


def rootfs(dest: str) -> None:
    os.makedirs(os.path.join(dest, "bin"))
    for d in ("dev", "etc", "proc", "sys", "tmp"):
        os.makedirs(os.path.join(dest, d), exist_ok=True)
    shutil.copy2("/bin/busybox", os.path.join(dest, "bin", "busybox"))
    for name in subprocess.run(["/bin/busybox", "--list"], capture_output=True, text=True).stdout.split():
        if name != "busybox":
            os.symlink("busybox", os.path.join(dest, "bin", name))


def build_image(base: str) -> tuple[str, str]:
    layout, unpacked = f"{base}/oci", f"{base}/unpacked"
    sh("umoci", "init", "--layout", layout)
    sh("umoci", "new", "--image", f"{layout}:latest")
    sh("umoci", "unpack", "--image", f"{layout}:latest", unpacked)
    rootfs(f"{unpacked}/rootfs/x")
    for name in os.listdir(f"{unpacked}/rootfs/x"):
        os.rename(f"{unpacked}/rootfs/x/{name}", f"{unpacked}/rootfs/{name}")
    os.rmdir(f"{unpacked}/rootfs/x")
    sh("umoci", "repack", "--image", f"{layout}:latest", unpacked)
    sh("umoci", "config", "--image", f"{layout}:latest", "--config.cmd", "sh", "--config.env", f"PATH={PATH}")
    shutil.rmtree(unpacked)
    oci, docker = f"{base}/bb-oci.tar", f"{base}/bb-docker.tar"
    sh("skopeo", "copy", "--quiet", f"oci:{layout}:latest", f"oci-archive:{oci}:{IMAGE}")
    sh("skopeo", "copy", "--quiet", f"oci:{layout}:latest", f"docker-archive:{docker}:{IMAGE}")
    return oci, docker


def start_containerd(base: str) -> subprocess.Popen:
    os.makedirs(base)
    with open(f"{base}/config.toml", "w") as f:
        f.write(
            f'version = 2\nroot = "{base}/root"\nstate = "{base}/state"\n'
            'disabled_plugins = ["io.containerd.grpc.v1.cri"]\n'
            f'[grpc]\n  address = "{base}/c.sock"\n[ttrpc]\n  address = "{base}/c.sock.ttrpc"\n'
        )
    with open(f"{base}/containerd.log", "wb") as log:
        proc = subprocess.Popen(
            ["containerd", "--config", f"{base}/config.toml"],
            env={"PATH": PATH},
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
    for _ in range(200):
        if sh("ctr", "-a", f"{base}/c.sock", "version", check=False).returncode == 0:
            return proc
        time.sleep(0.05)
    raise SystemExit("containerd did not come up")


def podman_setup(base: str) -> tuple[list[str], dict]:
    for d in ("root", "runroot", "tmp", "home"):
        os.makedirs(f"{base}/{d}")
    nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    nproc = resource.getrlimit(resource.RLIMIT_NPROC)[1]
    with open("/proc/sys/kernel/pid_max") as f:
        pid_max = int(f.read())
    nproc = pid_max if nproc == resource.RLIM_INFINITY or nproc > pid_max else nproc
    with open(f"{base}/containers.conf", "w") as f:
        f.write(
            f'[containers]\ndefault_ulimits = ["nofile={nofile}:{nofile}", "nproc={nproc}:{nproc}"]\n'
            f'[engine]\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\n'
            f'events_logfile_path = "{base}/events.log"\n'
            'runtime_supports_json = ["bock", "runc", "crun"]\n'
        )
    with open(f"{base}/storage.conf", "w") as f:
        f.write(f'[storage]\ndriver = "overlay"\ngraphroot = "{base}/root"\nrunroot = "{base}/runroot"\n')
    env = {
        "PATH": PATH,
        "HOME": f"{base}/home",
        "CONTAINERS_CONF": f"{base}/containers.conf",
        "CONTAINERS_STORAGE_CONF": f"{base}/storage.conf",
    }
    argv = ["podman", "--root", f"{base}/root", "--runroot", f"{base}/runroot", "--tmpdir", f"{base}/tmp"]
    return argv + ["--cgroup-manager", "cgroupfs", "--events-backend", "file"], env


def direct_container(base: str, name: str, binary: str) -> tuple[list[str], str]:
    bundle = f"{base}/bundle"
    if not os.path.isdir(bundle):
        rootfs(f"{bundle}/rootfs")
        sh("/usr/sbin/runc", "spec", "-b", bundle)
        with open(f"{bundle}/config.json") as f:
            cfg = json.load(f)
        cfg["process"].update(terminal=False, args=["sleep", "100000"])
        with open(f"{bundle}/config.json", "w") as f:
            json.dump(cfg, f)
    cid = "b-" + uuid.uuid4().hex[:12]
    with open(f"{bundle}/config.json") as f:
        cfg = json.load(f)
    cfg["linux"]["cgroupsPath"] = f"/{cid}"
    with open(f"{bundle}/config.json", "w") as f:
        json.dump(cfg, f)
    rt = [binary, "--root", f"{base}/state-{name}"]
    sh(*rt, "run", "-d", "-b", bundle, cid)
    return rt, cid


def parse_args(doc: str, default_n: int) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=doc.split("\n")[0])
    ap.add_argument(
        "-n", type=int, default=default_n, help=f"iterations per measurement (default {default_n})"
    )
    ap.add_argument("--bock", default=os.path.join(os.path.dirname(sys.executable), "bock"))
    ap.add_argument("--runc", default="/usr/sbin/runc")
    a = ap.parse_args()
    if not os.access(a.bock, os.X_OK):
        a.bock = shutil.which("bock") or sys.exit("bock not found: pass --bock PATH")
    return a


def start_clients(base: str, ns: str, pm_argv: list[str], pm_env: dict) -> tuple[subprocess.Popen, list[str]]:
    """The busybox image in a private containerd (namespace ``ns``) and in podman; (containerd, ctr argv)."""
    oci, docker = build_image(base)
    cd = start_containerd(f"{base}/cd")
    ctr = ["ctr", "-a", f"{base}/cd/c.sock", "-n", ns]
    sh(*ctr, "images", "import", docker)
    sh(*pm_argv, "load", "-i", oci, env=pm_env)
    return cd, ctr


def stop_clients(base: str, ns: str, cd: subprocess.Popen | None, pm_argv: list[str], pm_env: dict) -> None:
    """Tear everything down: podman's containers, containerd and its shims, mounts, cgroups, files."""
    sh(*pm_argv, "rm", "-a", "-f", "-t", "0", env=pm_env, check=False)
    if cd is not None:
        cd.terminate()
        cd.wait(10)
    for pid in _pids_mentioning(base):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    time.sleep(0.2)
    _unmount_under(base)
    for hierarchy in os.listdir("/sys/fs/cgroup"):
        try:
            os.rmdir(f"/sys/fs/cgroup/{hierarchy}/{ns}")
        except OSError:
            pass
    subprocess.run(["rm", "-rf", "--one-file-system", base], check=False)


def main() -> int:
    a = parse_args(__doc__, 15)
    runtimes = {"runc": a.runc, "bock": a.bock}
    base = tempfile.mkdtemp(prefix="bc-", dir="/tmp")
    ns = "bc" + uuid.uuid4().hex[:8]  # containerd namespace = the containers' parent cgroup
    cd = None
    results: dict[str, dict[str, list[float]]] = {}
    direct: dict[str, tuple[list[str], str]] = {}
    pm_argv, pm_env = podman_setup(f"{base}/pm")
    try:
        cd, ctr = start_clients(base, ns, pm_argv, pm_env)
        for name, binary in runtimes.items():
            direct[name] = direct_container(base, name, binary)

        def ctr_run(name: str) -> float:
            flags = ["--runc-binary", runtimes[name], "--runc-root", f"{base}/cd/{name}"]
            return timed(*ctr, "run", "--rm", *flags, IMAGE, "b-" + uuid.uuid4().hex[:12], "true")

        def podman_run(name: str) -> float:
            return timed(
                *pm_argv,
                "--runtime",
                runtimes[name],
                "run",
                "--rm",
                "--network",
                "none",
                IMAGE,
                "true",
                env=pm_env,
            )

        def exec_true(name: str) -> float:
            rt, cid = direct[name]
            return timed(*rt, "exec", cid, "true")

        def ps(name: str) -> float:
            rt, cid = direct[name]
            return timed(*rt, "ps", "--format", "json", cid)

        def pause_resume(name: str) -> float:
            rt, cid = direct[name]
            return timed(*rt, "pause", cid) + timed(*rt, "resume", cid)

        def events(name: str) -> float:
            rt, cid = direct[name]
            return timed(*rt, "events", "--stats", cid)

        cases = [
            ("ctr run --rm true", ctr_run),
            ("podman run --rm true", podman_run),
            ("exec true", exec_true),
            ("ps --format json", ps),
            ("pause + resume", pause_resume),
            ("events --stats", events),
        ]
        for label, fn in cases:
            for name in runtimes:
                fn(name)  # warm-up (page cache, first-run setup)
            for _ in range(a.n):
                for name in runtimes:
                    results.setdefault(label, {}).setdefault(name, []).append(fn(name))
    finally:
        for rt, cid in direct.values():
            sh(*rt, "delete", "-f", cid, check=False)
        stop_clients(base, ns, cd, pm_argv, pm_env)
    print(f"{'operation':24} {'runc ms':>9} {'bock ms':>9} {'bock/runc':>10}   (median of {a.n})")
    for label, per in results.items():
        r, b = statistics.median(per["runc"]), statistics.median(per["bock"])
        print(f"{label:24} {r:9.1f} {b:9.1f} {b / r:9.2f}x")
    return 0


def _pids_mentioning(text: str) -> list[int]:
    out = []
    for name in os.listdir("/proc"):
        if name.isdigit() and int(name) != os.getpid():
            try:
                with open(f"/proc/{name}/cmdline", "rb") as f:
                    if text.encode() in f.read():
                        out.append(int(name))
            except OSError:
                pass
    return out


def _unmount_under(base: str) -> None:
    with open("/proc/self/mountinfo") as f:
        points = [line.split()[4] for line in f if line.split()[4].startswith(base + "/")]
    for point in sorted(points, key=len, reverse=True):
        if subprocess.run(["umount", point], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", point], capture_output=True)


if __name__ == "__main__":
    sys.exit(main())

"""Fixtures for the drop-in tests: real containerd, podman and buildah driving runc and bock.

Everything lives under a private ``/tmp/bd-*`` directory per pytest worker (short
paths: unix socket names are limited to 108 bytes). Every fixture tears down in a
``finally``: containers killed, daemons and shims stopped, mounts under the base
unmounted (deepest first) before the directory is removed with ``--one-file-system``.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid

import pytest

RUNC = "/usr/sbin/runc"
BUSYBOX = "/bin/busybox"
IMAGE = "docker.io/library/busybox:latest"
CLEAN_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

pytestmark = pytest.mark.root


def bock_binary() -> str:
    """The installed ``bock`` script (absolute shebang), next to the test interpreter first."""
    env = os.environ.get("BOCK_BIN")
    if env:
        return env
    here = os.path.join(os.path.dirname(sys.executable), "bock")
    if os.access(here, os.X_OK):
        return here
    found = shutil.which("bock")
    if not found:
        pytest.skip("bock is not installed in this environment")
    return found


def new_id() -> str:
    return "t-" + uuid.uuid4().hex[:12]


def bock_has(module: str) -> bool:
    """Whether the installed bock has an optional module (cgroups, seccomp: built by others)."""
    with open(bock_binary()) as f:
        interpreter = f.readline()[2:].split()[0]  # "#!/venv/bin/python3 -IS"
    return subprocess.run([interpreter, "-c", f"import {module}"], capture_output=True).returncode == 0


def needs_cgroups(runtime: str) -> None:
    if runtime == "bock" and not bock_has("bock._cgroups"):
        pytest.xfail("bock's cgroup manager (bock._cgroups) is not in this build")


def needs_seccomp(runtime: str) -> None:
    if runtime == "bock" and not bock_has("bock._security.seccomp"):
        pytest.xfail("bock's seccomp support (bock._security.seccomp) is not in this build")


# -- mounts and processes -----------------------------------------------------------------


def mounts_under(base: str) -> list[str]:
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            point = line.split()[4].replace("\\040", " ")
            if point == base or point.startswith(base.rstrip("/") + "/"):
                out.append(point)
    return out


def unmount_all(base: str) -> None:
    for _ in range(3):
        points = sorted(set(mounts_under(base)), key=len, reverse=True)
        if not points:
            return
        for point in points:
            if subprocess.run(["umount", point], capture_output=True).returncode != 0:
                subprocess.run(["umount", "-l", point], capture_output=True)


def pids_with_cmdline(fragment: str) -> list[int]:
    out = []
    me = os.getpid()
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == me:
            continue
        try:
            with open(f"/proc/{name}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if fragment in cmd:
            out.append(int(name))
    return out


def kill_pids(pids: list[int]) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def remove_base(base: str) -> None:
    unmount_all(base)
    left = mounts_under(base)
    if left:
        raise RuntimeError(f"still mounted under {base}: {left}")
    subprocess.run(["rm", "-rf", "--one-file-system", base], check=False)


@pytest.fixture(scope="session")
def base_dir():
    base = tempfile.mkdtemp(prefix="bd-", dir="/tmp")
    try:
        yield base
    finally:
        kill_pids(pids_with_cmdline(base))
        time.sleep(0.2)
        remove_base(base)


@pytest.fixture(params=["runc", "bock"])
def runtime(request) -> str:
    return request.param


@pytest.fixture
def runtime_path(runtime) -> str:
    return RUNC if runtime == "runc" else bock_binary()


# -- the image ----------------------------------------------------------------------------


def _busybox_rootfs(dest: str) -> None:
    os.makedirs(os.path.join(dest, "bin"))
    for d in ("dev", "etc", "proc", "sys", "tmp", "root"):
        os.makedirs(os.path.join(dest, d), exist_ok=True)
    os.chmod(os.path.join(dest, "tmp"), 0o1777)
    shutil.copy2(BUSYBOX, os.path.join(dest, "bin", "busybox"))
    applets = subprocess.run([BUSYBOX, "--list"], capture_output=True, text=True, check=True).stdout.split()
    for name in applets:
        if name != "busybox":
            os.symlink("busybox", os.path.join(dest, "bin", name))
    with open(os.path.join(dest, "etc", "passwd"), "w") as f:
        f.write("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n")
    with open(os.path.join(dest, "etc", "group"), "w") as f:
        f.write("root:x:0:\nnobody:x:65534:\n")


@pytest.fixture(scope="session")
def busybox_image(base_dir) -> dict:
    """A one-layer busybox OCI image built offline with umoci; archives for each client."""
    out = os.path.join(base_dir, "img")
    layout = os.path.join(out, "oci")
    unpacked = os.path.join(out, "unpacked")
    os.makedirs(out)

    def run(*argv: str) -> None:
        subprocess.run(argv, check=True, capture_output=True)

    run("umoci", "init", "--layout", layout)
    run("umoci", "new", "--image", f"{layout}:latest")
    run("umoci", "unpack", "--image", f"{layout}:latest", unpacked)
    _busybox_rootfs(os.path.join(unpacked, "rootfs", "x"))  # build aside, then move in
    rootfs = os.path.join(unpacked, "rootfs")
    for name in os.listdir(os.path.join(rootfs, "x")):
        os.rename(os.path.join(rootfs, "x", name), os.path.join(rootfs, name))
    os.rmdir(os.path.join(rootfs, "x"))
    run("umoci", "repack", "--image", f"{layout}:latest", unpacked)
    run(
        "umoci", "config", "--image", f"{layout}:latest", "--config.cmd", "sh",
        "--config.env", f"PATH={CLEAN_PATH}", "--config.workingdir", "/",
    )  # fmt: skip
    run("umoci", "gc", "--layout", layout)
    shutil.rmtree(unpacked)
    oci_tar = os.path.join(out, "busybox-oci.tar")
    docker_tar = os.path.join(out, "busybox-docker.tar")
    run("skopeo", "copy", "--quiet", f"oci:{layout}:latest", f"oci-archive:{oci_tar}:{IMAGE}")
    run("skopeo", "copy", "--quiet", f"oci:{layout}:latest", f"docker-archive:{docker_tar}:{IMAGE}")
    return {"oci": oci_tar, "docker": docker_tar, "name": IMAGE}


# -- containerd ---------------------------------------------------------------------------


class Containerd:
    def __init__(self, base: str) -> None:
        self.base = base
        self.sock = os.path.join(base, "containerd.sock")
        # the namespace names the containers' parent cgroup (/<ns>/<id>): one per fixture
        self.ns = "t" + uuid.uuid4().hex[:8]
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        for d in ("root", "state", "fifo", "runc", "bock"):
            os.makedirs(os.path.join(self.base, d), exist_ok=True)
        config = os.path.join(self.base, "config.toml")
        with open(config, "w") as f:
            f.write(
                f'version = 2\nroot = "{self.base}/root"\nstate = "{self.base}/state"\n'
                'disabled_plugins = ["io.containerd.grpc.v1.cri"]\n'
                f'[grpc]\n  address = "{self.sock}"\n[ttrpc]\n  address = "{self.sock}.ttrpc"\n'
                f'[debug]\n  address = "{self.base}/debug.sock"\n[metrics]\n  address = ""\n'
            )
        with open(os.path.join(self.base, "containerd.log"), "wb") as log:
            self.proc = subprocess.Popen(
                ["containerd", "--config", config],
                env={"PATH": CLEAN_PATH},
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                close_fds=True,
                start_new_session=True,
            )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.ctr("version", check=False).returncode == 0:
                return
            time.sleep(0.1)
        with open(f"{self.base}/containerd.log") as f:
            raise RuntimeError("containerd did not come up: " + f.read()[-2000:])

    def ctr(self, *args: str, check: bool = True, timeout: float = 60, **kw) -> subprocess.CompletedProcess:
        argv = ["ctr", "-a", self.sock, "-n", self.ns, *args]
        out = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kw)
        if check and out.returncode != 0:
            raise AssertionError(f"{argv} exited {out.returncode}: {out.stdout}{out.stderr}")
        return out

    def run_flags(self, runtime: str, runtime_path: str) -> list[str]:
        return [
            "--runc-binary", runtime_path,
            "--runc-root", os.path.join(self.base, runtime),
            "--fifo-dir", os.path.join(self.base, "fifo"),
        ]  # fmt: skip

    def cleanup_tasks(self) -> None:
        tasks = self.ctr("task", "ls", "-q", check=False).stdout.split()
        for t in tasks:
            self.ctr("task", "kill", "-a", "-s", "SIGKILL", t, check=False)
        for t in tasks:
            for _ in range(50):
                if self.ctr("task", "delete", t, check=False).returncode == 0:
                    break
                time.sleep(0.1)
        for c in self.ctr("container", "ls", "-q", check=False).stdout.split():
            self.ctr("container", "delete", c, check=False)

    def stop(self) -> None:
        try:
            self.cleanup_tasks()
        except Exception:
            pass
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shims = pids_with_cmdline(self.sock)  # shims: -address <sock>
        sockets = [self._shim_socket(pid) for pid in shims]
        kill_pids(shims)
        for path in sockets:  # a killed shim leaves its socket behind
            if path and os.path.exists(path):
                os.unlink(path)
        self._remove_namespace_cgroups()

    def _remove_namespace_cgroups(self) -> None:
        """The parent cgroup ("/<ns>") the containers' cgroupsPath made, in every hierarchy
        (wherever it is: the memory one nests under our own cgroup here); after the shims,
        so that it is empty by then."""
        from _support.cgroups import find_named, remove_tree

        for path in find_named(self.ns):
            remove_tree(path)

    def _shim_socket(self, pid: int) -> str | None:
        """containerd 1.6's SocketAddress: /run/containerd/s/sha256(<address>/<ns>/<id>)."""
        import hashlib

        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                argv = f.read().decode().split("\0")
        except OSError:
            return None
        opts = {argv[i]: argv[i + 1] for i in range(len(argv) - 1) if argv[i].startswith("-")}
        if "-id" not in opts or "-namespace" not in opts:
            return None
        key = os.path.join(self.sock, opts["-namespace"], opts["-id"])
        return "/run/containerd/s/" + hashlib.sha256(key.encode()).hexdigest()


@pytest.fixture(scope="session")
def containerd(base_dir, busybox_image):
    if not shutil.which("containerd") or not shutil.which("ctr"):
        pytest.skip("containerd is not installed")
    cd = Containerd(os.path.join(base_dir, "cd"))
    try:
        cd.start()
        cd.ctr("images", "import", busybox_image["docker"], timeout=120)
        yield cd
    finally:
        cd.stop()


# -- podman -------------------------------------------------------------------------------


def limits_conf() -> str:
    """default_ulimits no higher than our hard limits (no CAP_SYS_RESOURCE in a sandbox)."""
    import resource

    nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    nproc = resource.getrlimit(resource.RLIMIT_NPROC)[1]
    with open("/proc/sys/kernel/pid_max") as f:
        pid_max = int(f.read())
    if nproc == resource.RLIM_INFINITY or nproc > pid_max:
        nproc = pid_max
    return f'default_ulimits = ["nofile={nofile}:{nofile}", "nproc={nproc}:{nproc}"]'


class Podman:
    def __init__(self, base: str) -> None:
        self.base = base
        for d in ("root", "runroot", "tmp", "volumes", "home"):
            os.makedirs(os.path.join(base, d), exist_ok=True)
        self.conf = os.path.join(base, "containers.conf")
        self.storage = os.path.join(base, "storage.conf")
        with open(self.conf, "w") as f:
            f.write(
                "[containers]\n"
                f"{limits_conf()}\n"
                'log_driver = "k8s-file"\n'
                "[engine]\n"
                'cgroup_manager = "cgroupfs"\n'
                'events_logger = "file"\n'
                f'events_logfile_path = "{base}/events.log"\n'
                f'tmp_dir = "{base}/tmp"\n'
                f'volume_path = "{base}/volumes"\n'
                'runtime = "runc"\n'
                'runtime_supports_json = ["bock", "runc", "crun"]\n'
                'runtime_supports_nocgroups = ["crun"]\n'
                "[engine.runtimes]\n"
                f'bock = ["{bock_binary()}"]\n'
                f'runc = ["{RUNC}"]\n'
            )
        with open(self.storage, "w") as f:
            f.write(f'[storage]\ndriver = "overlay"\ngraphroot = "{base}/root"\nrunroot = "{base}/runroot"\n')

    def env(self) -> dict[str, str]:
        return {
            "PATH": CLEAN_PATH,
            "HOME": os.path.join(self.base, "home"),
            "CONTAINERS_CONF": self.conf,
            "CONTAINERS_STORAGE_CONF": self.storage,
        }

    def argv(self, runtime: str | None, *args: str) -> list[str]:
        b = self.base
        out = ["podman", "--root", f"{b}/root", "--runroot", f"{b}/runroot", "--tmpdir", f"{b}/tmp"]
        out += ["--volumepath", f"{b}/volumes", "--cgroup-manager", "cgroupfs", "--events-backend", "file"]
        if runtime:
            out += ["--runtime", runtime]
        return out + list(args)

    def __call__(self, runtime: str | None, *args: str, check: bool = True, timeout: float = 120, **kw):
        argv = self.argv(runtime, *args)
        out = subprocess.run(argv, env=self.env(), capture_output=True, text=True, timeout=timeout, **kw)
        if check and out.returncode != 0:
            raise AssertionError(f"{argv} exited {out.returncode}: {out.stdout}{out.stderr}")
        return out

    def cleanup(self) -> None:
        self(None, "rm", "-a", "-f", "-t", "0", check=False)
        kill_pids(pids_with_cmdline(os.path.join(self.base, "root")))  # conmon


@pytest.fixture(scope="session")
def podman(base_dir, busybox_image):
    if not shutil.which("podman") or not shutil.which("conmon"):
        pytest.skip("podman is not installed")
    p = Podman(os.path.join(base_dir, "pm"))
    try:
        p(None, "load", "-i", busybox_image["oci"])
        yield p
    finally:
        p.cleanup()


# -- buildah ------------------------------------------------------------------------------


class Buildah:
    def __init__(self, base: str) -> None:
        self.base = base
        for d in ("root", "runroot", "tmp", "home", "ctx"):
            os.makedirs(os.path.join(base, d), exist_ok=True)
        self.conf = os.path.join(base, "containers.conf")
        self.storage = os.path.join(base, "storage.conf")
        with open(self.conf, "w") as f:
            f.write(f'[containers]\n{limits_conf()}\n[engine]\ncgroup_manager = "cgroupfs"\n')
        with open(self.storage, "w") as f:
            f.write(f'[storage]\ndriver = "overlay"\ngraphroot = "{base}/root"\nrunroot = "{base}/runroot"\n')

    def __call__(self, *args: str, check: bool = True, timeout: float = 180, **kw):
        b = self.base
        argv = ["buildah", "--root", f"{b}/root", "--runroot", f"{b}/runroot", "--storage-driver", "overlay"]
        argv += list(args)
        env = {
            "PATH": CLEAN_PATH,
            "HOME": f"{b}/home",
            "TMPDIR": f"{b}/tmp",
            "CONTAINERS_CONF": self.conf,
            "CONTAINERS_STORAGE_CONF": self.storage,
        }
        out = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout, **kw)
        if check and out.returncode != 0:
            raise AssertionError(f"{argv} exited {out.returncode}: {out.stdout}{out.stderr}")
        return out


@pytest.fixture(scope="session")
def buildah(base_dir, busybox_image):
    if not shutil.which("buildah"):
        pytest.skip("buildah is not installed")
    b = Buildah(os.path.join(base_dir, "bh"))
    try:
        b("pull", "--quiet", f"oci-archive:{busybox_image['oci']}")
        yield b
    finally:
        b("rm", "--all", check=False)
        kill_pids(pids_with_cmdline(os.path.join(b.base, "root")))


# -- direct runtime calls on a busybox bundle ---------------------------------------------


class Bundle:
    """A busybox bundle + a private state root; ``rt(...)`` runs the runtime on it."""

    def __init__(self, base: str, runtime_path: str) -> None:
        self.dir = os.path.join(base, "bundle")
        self.root = os.path.join(base, "state")
        self.runtime = runtime_path
        _busybox_rootfs(os.path.join(self.dir, "rootfs"))
        subprocess.run([RUNC, "spec", "-b", self.dir], check=True)
        with open(os.path.join(self.dir, "config.json")) as f:
            self.config = json.load(f)
        self.config["process"]["terminal"] = False
        self.config["process"]["args"] = ["sleep", "1000"]
        self.ids: list[str] = []

    def write_config(self, cgroups_path: str) -> None:
        self.config["linux"]["cgroupsPath"] = cgroups_path
        with open(os.path.join(self.dir, "config.json"), "w") as f:
            json.dump(self.config, f)

    def rt(
        self, *args: str, check: bool = True, timeout: float = 30, detached: bool = False, **kw
    ) -> subprocess.CompletedProcess:
        """Run the runtime. ``detached``: what it leaves running keeps its stdio, so give it
        files instead of pipes (a pipe would never reach EOF)."""
        argv = [self.runtime, "--root", self.root, *args]
        if detached:
            import tempfile as tf

            with tf.TemporaryFile("w+") as o, tf.TemporaryFile("w+") as e:
                rc = subprocess.run(
                    argv, stdin=subprocess.DEVNULL, stdout=o, stderr=e, timeout=timeout
                ).returncode
                o.seek(0)
                e.seek(0)
                out = subprocess.CompletedProcess(argv, rc, o.read(), e.read())
        else:
            kw.setdefault("capture_output", True)
            out = subprocess.run(argv, text=True, timeout=timeout, **kw)
        if check and out.returncode != 0:
            raise AssertionError(f"{argv} exited {out.returncode}: {out.stdout}{out.stderr}")
        return out

    def start_container(self, *, started: bool = True) -> str:
        """A container left running (``run -d``), or only created (``started=False``)."""
        cid = new_id()
        self.write_config(f"/{cid}")
        self.ids.append(cid)
        # the container keeps its stdio: give it files, not our pipes (no EOF would ever come)
        err_path = os.path.join(os.path.dirname(self.dir), f"{cid}.stderr")
        with open(err_path, "w+") as err:
            verb = ["run", "-d"] if started else ["create"]
            argv = [self.runtime, "--root", self.root, *verb, "-b", self.dir, cid]
            rc = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=err, stderr=err, timeout=30).returncode
            if rc != 0:
                err.seek(0)
                raise AssertionError(f"{argv} exited {rc}: {err.read()}")
        return cid

    def cleanup(self) -> None:
        for cid in self.ids:
            self.rt("delete", "-f", cid, check=False)


@pytest.fixture
def bundle(runtime_path):
    base = tempfile.mkdtemp(prefix="bd-b-", dir="/tmp")
    b = None
    try:
        b = Bundle(base, runtime_path)
        yield b
    finally:
        if b is not None:
            b.cleanup()
        kill_pids(pids_with_cmdline(base))
        remove_base(base)


@pytest.fixture
def require_cgroups(runtime) -> None:
    """pause/ps/update/events/metrics need bock's cgroup manager: xfail until it is built in."""
    needs_cgroups(runtime)


@pytest.fixture
def require_seccomp(runtime):
    """A callable: xfail the test for bock when its seccomp module is not in this build."""
    return lambda: needs_seccomp(runtime)

"""The per-project monitor: a detached process (own session) that is the subreaper parent of the
project's containers. It creates/starts/stops them through the runtime's CLI, captures their
output into JSON-lines logs, runs health checks and restart policies, serves the embedded DNS,
keeps the project's bridges, netns and NAT rules, and records state.json for the CLI.

Run as: python -m bockrose._monitor STATE_ROOT PROJECT   (the CLI starts it; see _client.py)."""

from __future__ import annotations

import contextlib
import ctypes
import errno
import hashlib
import ipaddress
import json
import os
import secrets
import select
import signal
import socket
import struct
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from typing import Any

from . import _console, _dns, _graph, _nat, _network, _proc, _spec
from ._models import LABEL, duration, service_hash, service_networks
from ._runtime import Runtime
from ._state import (
    ContainerState,
    NetworkState,
    PortBinding,
    ProjectState,
    container_dir,
    load_state,
    log_path,
    project_dir,
    save_state,
    socket_address,
)
from .errors import ComposeError, DependencyError, MonitorError

PR_SET_CHILD_SUBREAPER = 36
TRACE = os.environ.get("BOCKROSE_TRACE")  # a file to append phase timings to
BACKOFF_START = 0.1
BACKOFF_MAX = 30.0


class _Stop(Exception):
    pass


class Monitor:
    def __init__(self, root: str, name: str) -> None:
        self.root = root
        self.name = name
        self.pdir = project_dir(root, name)
        st = load_state(root, name)
        if st is None:
            raise MonitorError(f"no state for project {name} under {root}")
        self.state: ProjectState = st
        self.key = st.key
        self.lock = threading.RLock()
        self.cond = threading.Condition(self.lock)
        self.runtime = Runtime(st.runtime, st.runtime_root)
        self.exited: dict[str, threading.Event] = {}
        self.generation: dict[str, int] = {}
        self.stopping: set[str] = set()
        self.dns = _dns.DnsServer()
        self._exec_mode: str | None = None
        self._store = None
        self.quit = threading.Event()
        self.events_path = os.path.join(self.pdir, "events.jsonl")
        self._listener: socket.socket | None = None
        self._networks_ready = _Ready.done()
        self._op_lock = threading.Lock()
        self._image_digests: dict[str, str] = {}  # service -> manifest digest of its image (up)

    # -- helpers ---------------------------------------------------------------------------
    def save(self) -> None:
        with self.lock:
            save_state(self.root, self.state)
            self.cond.notify_all()

    def event(self, action: str, c: ContainerState | None = None, **attrs: Any) -> None:
        rec = {"time": time.time(), "type": "container", "action": action}
        if c is not None:
            rec.update({"id": c.name, "service": c.service, "attributes": {"name": c.name, **attrs}})
        with contextlib.suppress(OSError), open(self.events_path, "a") as f:
            f.write(json.dumps(rec) + "\n")

    def store(self):
        if self._store is None:
            import bock_image

            self._store = bock_image.Store(self.state.image_root or None)
        return self._store

    def exec_mode(self) -> str:
        if self._exec_mode is None:
            self._exec_mode = "runtime" if self.runtime.supports("exec") else "nsenter"
        return self._exec_mode

    # -- networks --------------------------------------------------------------------------
    def ensure_networks(self, networks: dict[str, dict[str, Any]], used: set[str]) -> None:
        for key in sorted(used):
            if key in self.state.networks:
                continue
            cfg = networks.get(key) or {}
            name = cfg.get("name") or f"{self.name}_{key}"
            if cfg.get("external"):
                bridge = name[:15]
                subnet, gw = _network.ensure_bridge(bridge, None, None)
            else:
                bridge = _network.bridge_name(self.key, key)
                ipam = ((cfg.get("ipam") or {}).get("config") or [{}])[0]
                subnet, gw = _network.ensure_bridge(bridge, ipam.get("subnet"), ipam.get("gateway"))
            ns = NetworkState(
                key=key,
                name=name,
                bridge=bridge,
                subnet=subnet,
                gateway=gw,
                internal=bool(cfg.get("internal")),
                external=bool(cfg.get("external")),
            )
            self.state.networks[key] = ns
            self.save()
        for key, ns in self.state.networks.items():
            try:
                self.dns.listen(key, ns.gateway)
            except OSError as exc:
                raise MonitorError(
                    f"DNS: cannot listen on {ns.gateway}:53 for network {key}: {exc}"
                ) from None
        self.sync_nat()

    def sync_nat(self) -> None:
        with self.lock:
            nets = [_nat.NetRule(n.bridge, n.subnet, n.internal) for n in self.state.networks.values()]
            ports = []
            for c in self.state.containers.values():
                if c.status not in ("running", "restarting", "paused", "created") or not c.addresses:
                    continue
                first = next(iter(c.addresses))
                bridge = self.state.networks[first].bridge
                for p in c.ports:
                    ports.append(
                        _nat.PortRule(
                            p.host_ip, p.published, p.protocol, c.addresses[first], p.target, bridge
                        )
                    )
        _nat.apply(self.key, nets, ports)

    def sync_dns(self) -> None:
        with self.lock:
            names: dict[str, dict[str, list[str]]] = {k: {} for k in self.state.networks}
            for c in sorted(self.state.containers.values(), key=lambda c: (c.service, c.number)):
                if c.status not in ("running", "restarting", "paused", "created"):
                    continue
                for net, addr in c.addresses.items():
                    table = names.setdefault(net, {})
                    extra = c.aliases.get(net, [])
                    for n in (c.service, f"{c.service}-{c.number}", c.name, *extra):
                        table.setdefault(n, [])
                        if addr not in table[n]:
                            table[n].append(addr)
        self.dns.set_names(names)

    def allocate_ip(self, net: NetworkState, wanted: str | None) -> str:
        used = {net.gateway}
        for c in self.state.containers.values():
            if net.key in c.addresses:
                used.add(c.addresses[net.key])
        if wanted:
            if wanted in used:
                raise ComposeError(f"address {wanted} is already in use on network {net.name}")
            return wanted
        for h in ipaddress.ip_network(net.subnet).hosts():
            if str(h) not in used:
                return str(h)
        raise ComposeError(f"network {net.name} ({net.subnet}) has no free address")

    # -- container lifecycle ---------------------------------------------------------------
    def create_container(
        self,
        svc_name: str,
        number: int,
        svc: dict[str, Any],
        h: str,
        project_env: dict[str, Any],
        oneoff: bool = False,
        override_cmd: list[str] | None = None,
        name: str | None = None,
    ) -> ContainerState:
        import bock_image

        name = name or f"{self.name}-{svc_name}-{number}"
        cdir = container_dir(self.root, self.name, name)
        if os.path.exists(cdir):
            self.remove_container(name, 0)
        os.makedirs(cdir)
        nonce = secrets.token_hex(3)
        image = svc.get("image") or f"{self.name}-{svc_name}"
        labels = {
            f"{LABEL}project": self.name,
            f"{LABEL}service": svc_name,
            f"{LABEL}container-number": str(number),
            f"{LABEL}config-hash": h,
            f"{LABEL}oneoff": "True" if oneoff else "False",
            f"{LABEL}project.working_dir": self.state.working_dir,
            f"{LABEL}project.config_files": ",".join(self.state.config_files),
            f"{LABEL}image": image,
            f"{LABEL}version": "bockrose-0.1.0",
            f"{LABEL}depends_on": ",".join(
                f"{d}:{c.get('condition', 'service_started')}:{str(c.get('restart', False)).lower()}"
                for d, c in (svc.get("depends_on") or {}).items()
            ),
            **{str(k): str(v) for k, v in (svc.get("labels") or {}).items()},
        }
        c = ContainerState(
            name=name,
            service=svc_name,
            number=number,
            hash=h,
            image=image,
            nonce=nonce,
            labels=labels,
            oneoff=oneoff,
            cgroup=f"/bockrose-{self.key}-{name}-{nonce}",
            image_digest=self._image_digests.get(svc_name, "") if not oneoff else "",
        )
        with self.lock:
            self.state.containers[name] = c
        bundle = os.path.join(cdir, "bundle")
        try:
            env = [f"{k}={v}" for k, v in (svc.get("environment") or {}).items() if v is not None]
            t = time.perf_counter()
            b = bock_image.bundle(
                self.store(),
                image,
                bundle,
                args=override_cmd if override_cmd is not None else svc.get("command"),
                entrypoint=svc.get("entrypoint"),
                env=env,
                user=svc.get("user"),
                cwd=svc.get("working_dir"),
                hostname=svc.get("hostname") or name[:63],
            )
            spec = b.spec
            t = self.trace(name, "bundle", t)
            c.command = list(spec["process"]["args"])
            mode = svc.get("network_mode") or ""
            self._networks_ready.wait()
            netns_path = None
            nameserver = None
            if mode.startswith("service:") or mode.startswith("container:"):
                other = mode.split(":", 1)[1]
                peer = next(
                    (
                        x
                        for x in self.state.containers.values()
                        if (x.service == other or x.name == other) and x.netns
                    ),
                    None,
                )
                if peer is None:
                    raise ComposeError(f"network_mode {mode}: no running container to share with")
                netns_path = f"/run/netns/{peer.netns}"
                c.addresses = {}
            elif mode != "host":
                c.netns = _network.netns_name(name, nonce)
                netns_path = _network.create_netns(c.netns)
                t = self.trace(name, "netns", t)
                nets = service_networks(self._project_networks, svc) if mode != "none" else {}
                for i, (key, opts) in enumerate(
                    sorted(nets.items(), key=lambda kv: -int((kv[1] or {}).get("priority", 0) or 0))
                ):
                    net = self.state.networks[key]
                    with self.lock:
                        addr = self.allocate_ip(net, (opts or {}).get("ipv4_address"))
                        c.addresses[key] = addr
                    veth = _network.veth_name(name, key, nonce)
                    c.veths.append(veth)
                    prefix = ipaddress.ip_network(net.subnet).prefixlen
                    _network.attach(
                        c.netns, net.bridge, veth, f"eth{i}", addr, prefix, net.gateway if i == 0 else None
                    )
                    c.aliases[key] = [str(a) for a in (opts or {}).get("aliases") or []]
                    if nameserver is None:
                        nameserver = net.gateway
            if mode == "host":
                with open("/etc/resolv.conf") as f:
                    resolv = f.read()
            else:
                resolv = _spec.resolv_file(nameserver, svc) if nameserver or svc.get("dns") else ""
            hostname = spec.get("hostname") or name
            hosts = _spec.hosts_file(hostname, list(c.addresses.values()), svc.get("extra_hosts") or {})
            volume_dirs: dict[str, str] = {}
            for v in svc.get("volumes") or []:
                if v.get("type") != "volume":
                    continue
                if v.get("source"):
                    vname = self._volume_names.get(v["source"], f"{self.name}_{v['source']}")
                    vdir = os.path.join(self.root, "volumes", vname, "_data")
                    fresh = not os.path.exists(vdir)
                    os.makedirs(vdir, exist_ok=True)
                    with self.lock:
                        if vname not in self.state.volumes and not self._volume_external.get(v["source"]):
                            self.state.volumes.append(vname)
                    volume_dirs[v["source"]] = vdir
                else:
                    vdir = os.path.join(cdir, "anon", hashlib.sha256(v["target"].encode()).hexdigest()[:12])
                    fresh = True
                    os.makedirs(vdir)
                    volume_dirs[f"anon:{v['target']}"] = vdir
                if fresh and not (v.get("volume") or {}).get("nocopy"):
                    _spec.populate_volume(str(b.rootfs.path), v["target"], vdir)
            for p in svc.get("ports") or []:
                if not p.get("published"):
                    continue
                pub = str(p["published"])
                c.ports.append(
                    PortBinding(
                        target=int(p["target"]),
                        published=int(pub.split("-")[0]),
                        protocol=p.get("protocol", "tcp"),
                        host_ip=p.get("host_ip") or "0.0.0.0",
                    )
                )
            _spec.customize(
                spec,
                svc,
                netns_path=netns_path,
                files_dir=os.path.join(cdir, "files"),
                volume_dirs=volume_dirs,
                cgroup_path=c.cgroup,
                labels=labels,
                resolv=resolv or None,
                hosts=hosts,
                hostname=hostname,
                files=getattr(self, "_files", {}).get(svc_name, []),
            )
            _spec.write_spec(bundle, spec)
            t = self.trace(name, "attach+spec", t)
            with open(os.path.join(cdir, "service.json"), "w") as f:
                json.dump(svc, f)
            self.event("create", c)
        except BaseException:
            self.remove_container(name, 0)
            raise
        self.save()
        return c

    def _open_fifos(self, c: ContainerState) -> tuple[list[int], int, int]:
        cdir = container_dir(self.root, self.name, c.name)
        fds = []
        readers = []
        for stream in ("stdout", "stderr"):
            path = os.path.join(cdir, f"{stream}.fifo")
            if not os.path.exists(path):
                os.mkfifo(path, 0o600)
            readers.append(os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC))
            fds.append(os.open(path, os.O_RDWR | os.O_CLOEXEC))
        return readers, fds[0], fds[1]

    def _start_log_pump(
        self, name: str, readers: list[int], master: int | None = None, holder: int = 0
    ) -> None:
        streams = {readers[0]: "stdout", readers[1]: "stderr"}
        if master is not None:  # tty: true: the terminal's output is "stdout", as docker logs it
            streams[master] = "stdout"
        threading.Thread(target=self._log_pump, args=(name, streams, master, holder), daemon=True).start()

    def _log_pump(self, name: str, streams: dict[int, str], master: int | None, holder: int = 0) -> None:
        """stdout/stderr FIFOs (and a tty's master) -> JSON lines {"log", "stream", "time"}
        (docker's json-file format). A master reads EIO once the container's side is closed."""
        path = log_path(self.root, self.name, name)
        names = dict(streams)
        partial = {fd: b"" for fd in streams}
        ev = self.exited.get(name)
        idle_after_exit = 0
        with open(path, "ab", buffering=0) as out:
            while streams:
                ready, _, _ = select.select(list(streams), [], [], 0.2)
                if not ready:
                    if ev is not None and ev.is_set() and master not in streams:
                        idle_after_exit += 1
                        if idle_after_exit > 2:
                            break
                    continue
                for fd in ready:
                    try:
                        data = os.read(fd, 65536)
                    except BlockingIOError:
                        continue
                    except OSError as exc:  # EIO: the pty's other side is gone
                        if exc.errno != errno.EIO:
                            raise
                        data = b""
                    if not data:
                        streams.pop(fd)
                        if fd == master:
                            self._release_console(name, holder)
                        continue
                    data = partial[fd] + data
                    *lines, partial[fd] = data.split(b"\n")
                    now = time.time()
                    for line in lines:
                        out.write(self._log_line(line + b"\n", names[fd], now))
            for fd, rest in partial.items():
                if rest:
                    out.write(self._log_line(rest, names[fd], time.time()))
        for fd in names:
            with contextlib.suppress(OSError):
                os.close(fd)

    def _release_console(self, name: str, holder: int | None = None) -> None:
        """The container's terminal is closed: the holder's copy of the master can go (only that
        holder: a restarted container already has a new one)."""
        with self.lock:
            c = self.state.containers.get(name)
            if c is not None and (holder is None or c.console_holder == holder):
                holder = c.console_holder
                c.console_holder = 0
        _console.stop_holder(holder or 0)

    @staticmethod
    def _log_line(data: bytes, stream: str, now: float) -> bytes:
        ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1e9):09d}Z"
        return (
            json.dumps({"log": data.decode(errors="replace"), "stream": stream, "time": ts}) + "\n"
        ).encode()

    def start_container(self, c: ContainerState) -> None:
        """runtime `run --detach` (a container that exited is re-created from the same bundle)."""
        cdir = container_dir(self.root, self.name, c.name)
        self.runtime.delete(c.name)
        ev = threading.Event()
        with self.lock:
            self.exited[c.name] = ev
            gen = self.generation.get(c.name, 0) + 1
            self.generation[c.name] = gen
        with self.lock:
            c.exit_code = None
            c.status = "created"
            c.started_at = time.time()
            c.explicitly_stopped = False
        svc = self._service_of(c)
        self._release_console(c.name)  # a restart gets a new terminal
        readers, out_fd, err_fd = self._open_fifos(c)
        console = _console.ConsoleSocket() if svc.get("tty") else None
        master = None
        pid_file = os.path.join(cdir, "init.pid")
        with contextlib.suppress(FileNotFoundError):
            os.unlink(pid_file)
        try:
            t = time.perf_counter()
            self.runtime.run_detached(
                c.name,
                os.path.join(cdir, "bundle"),
                pid_file,
                out_fd,
                err_fd,
                console_socket=console.path if console else None,
            )
            if console is not None:
                master = console.receive()
                c.console_holder = _console.start_holder(master)
            self.trace(c.name, "runtime run -d", t)
        except ComposeError as exc:
            ev.set()
            if master is not None:
                os.close(master)
            self._start_log_pump(c.name, readers)
            time.sleep(0.3)
            self.runtime.delete(c.name)
            raise ComposeError(f"{exc}: {self._tail_log(c.name)}") from None
        finally:
            os.close(out_fd)
            os.close(err_fd)
            if console is not None:
                console.close()
        self._start_log_pump(c.name, readers, master, c.console_holder)
        with open(pid_file) as f:
            pid = int(f.read().strip())
        c.pid = pid
        _proc.on_exit(pid, lambda code, n=c.name, g=gen: self._on_exit(n, g, code))
        with self.lock:
            if not ev.is_set():
                c.status = "running"
            if self._healthcheck(svc):
                c.health = "starting"
                c.health_log = []
        self.save()
        self.event("start", c)
        if self._healthcheck(svc):
            threading.Thread(target=self._health_loop, args=(c.name, gen), daemon=True).start()

    def _tail_log(self, name: str) -> str:
        try:
            with open(log_path(self.root, self.name, name), "rb") as f:
                lines = f.read().decode(errors="replace").splitlines()[-3:]
            return " | ".join(json.loads(x)["log"].strip() for x in lines)
        except (OSError, ValueError):
            return ""

    def _service_of(self, c: ContainerState) -> dict[str, Any]:
        svc = self.state.services.get(c.service)
        if svc is None:
            try:
                with open(os.path.join(container_dir(self.root, self.name, c.name), "service.json")) as f:
                    svc = json.load(f)
            except (OSError, ValueError):
                svc = {}
        return svc

    def _on_exit(self, name: str, gen: int, code: int) -> None:
        with self.lock:
            c = self.state.containers.get(name)
            if c is None or self.generation.get(name) != gen:
                return
            c.status = "exited"
            c.exit_code = code
            c.finished_at = time.time()
            c.pid = 0
            if c.health:
                c.health = "unhealthy" if c.health != "healthy" else c.health
            ev = self.exited.get(name)
            if ev:
                ev.set()
            stopping = name in self.stopping or c.explicitly_stopped
            self.save()
        self.event("die", c, exitCode=str(code))
        if stopping or self.quit.is_set():
            return
        svc = self._service_of(c)
        delay = self._restart_delay(c, svc, code)
        if delay is None:
            return
        with self.lock:
            c.status = "restarting"
            self.save()
        threading.Thread(target=self._restart_later, args=(name, gen, delay), daemon=True).start()

    def _restart_delay(self, c: ContainerState, svc: dict[str, Any], code: int) -> float | None:
        policy = str(svc.get("restart") or "no")
        rp = (svc.get("deploy") or {}).get("restart_policy")
        max_attempts = None
        base = BACKOFF_START
        if rp:
            cond = rp.get("condition", "any")
            policy = {"none": "no", "on-failure": "on-failure", "any": "always"}.get(cond, "always")
            if rp.get("max_attempts") is not None:
                max_attempts = int(rp["max_attempts"])
            if rp.get("delay") is not None:
                base = max(duration(rp["delay"], BACKOFF_START), 0.01)
        if policy.startswith("on-failure"):
            if code == 0:
                return None
            _, _, n = policy.partition(":")
            if n:
                max_attempts = int(n)
        elif policy not in ("always", "unless-stopped"):
            return None
        if max_attempts is not None and c.restart_count >= max_attempts:
            return None
        ran = c.finished_at - c.started_at if c.started_at else 0
        streak = 0 if ran > 10 else c.restart_count
        return min(base * (2**streak), BACKOFF_MAX)

    def _restart_later(self, name: str, gen: int, delay: float) -> None:
        time.sleep(delay)
        with self.lock:
            c = self.state.containers.get(name)
            if c is None or self.generation.get(name) != gen or name in self.stopping or c.explicitly_stopped:
                return
            if self.quit.is_set():
                return
            c.restart_count += 1
        try:
            self.start_container(c)
            self.event("restart", c)
        except ComposeError as exc:
            self._log_note(f"restart of {name} failed: {exc}")
            with self.lock:
                c.status = "exited"
                self.save()

    def trace(self, name: str, what: str, t0: float) -> float:
        """BOCKROSE_TRACE=1: phase durations in monitor.log (for the benchmark's breakdown)."""
        now = time.perf_counter()
        if TRACE:
            with open(TRACE, "a") as f:
                f.write(f"{time.time():.3f} {name} {what.replace(' ', '_')} {(now - t0) * 1000:.1f}\n")
        return now

    def _log_note(self, msg: str) -> None:
        print(f"{time.strftime('%H:%M:%S')} {msg}", file=sys.stderr, flush=True)

    # -- health ----------------------------------------------------------------------------
    @staticmethod
    def _healthcheck(svc: dict[str, Any]) -> dict[str, Any] | None:
        hc = svc.get("healthcheck") or {}
        xb = (svc.get("x-bockrose") or {}).get("healthcheck")
        if hc.get("disable") in (True, "true") or (hc.get("test") or [None])[0] == "NONE":
            return None
        if not hc.get("test") and not xb:
            return None
        return hc

    def _health_loop(self, name: str, gen: int) -> None:
        with self.lock:
            c = self.state.containers.get(name)
            if c is None:
                return
            svc = self._service_of(c)
        hc = self._healthcheck(svc) or {}
        interval = duration(hc.get("interval"), 30.0)
        timeout = duration(hc.get("timeout"), 30.0)
        retries = int(hc.get("retries", 3))
        start_period = duration(hc.get("start_period"), 0.0)
        start_interval = duration(hc.get("start_interval"), 5.0)
        started = time.monotonic()
        failures = 0
        first = True
        while True:
            in_start = time.monotonic() - started < start_period
            wait = (start_interval if in_start else interval) if not first else min(interval, 0.25)
            first = False
            ev = self.exited.get(name)
            if ev is None or ev.wait(wait):
                return
            with self.lock:
                if self.generation.get(name) != gen or c.status not in ("running",):
                    if c.status == "paused":
                        continue
                    return
                pid = c.pid
            t0 = time.time()
            ok, output = self._probe(c, svc, hc, pid, timeout)
            in_start = time.monotonic() - started < start_period
            with self.lock:
                if self.generation.get(name) != gen:
                    return
                c.health_log = (
                    c.health_log
                    + [{"Start": t0, "End": time.time(), "ExitCode": 0 if ok else 1, "Output": output[-512:]}]
                )[-5:]
                if ok:
                    failures = 0
                    changed = c.health != "healthy"
                    c.health = "healthy"
                elif not in_start:
                    failures += 1
                    changed = failures >= retries and c.health != "unhealthy"
                    if failures >= retries:
                        c.health = "unhealthy"
                else:
                    changed = False
                self.save()
            if changed:
                self.event(f"health_status: {c.health}", c)

    def _probe(
        self, c: ContainerState, svc: dict[str, Any], hc: dict[str, Any], pid: int, timeout: float
    ) -> tuple[bool, str]:
        xb = (svc.get("x-bockrose") or {}).get("healthcheck")
        if xb and c.netns:
            return self._net_probe(c.netns, xb, timeout)
        test = hc.get("test") or []
        if test[0] == "CMD":
            argv = list(test[1:])
        elif test[0] == "CMD-SHELL":
            argv = ["/bin/sh", "-c", test[1]]
        else:
            argv = list(test)
        if self.exec_mode() == "runtime":
            full = self.runtime.exec_argv(c.name, argv)
        else:
            full = [sys.executable, "-m", "bockrose._nsenter", str(pid), "--", *argv]
        try:
            rc, out, err = _proc.run(full, timeout=timeout)
        except OSError as exc:
            return False, str(exc)
        return rc == 0, (out + err).decode(errors="replace")

    @staticmethod
    def _net_probe(netns: str, xb: dict[str, Any], timeout: float) -> tuple[bool, str]:
        """TCP connect or HTTP GET from inside the container's network namespace (a throwaway
        thread enters the netns; setns(CLONE_NEWNET) is per thread)."""
        result: list[tuple[bool, str]] = []

        def run() -> None:
            try:
                from ._nsenter import enter_netns

                enter_netns(f"/run/netns/{netns}")
                if "tcp" in xb:
                    port = int(xb["tcp"])
                    with socket.create_connection(("127.0.0.1", port), timeout=timeout):
                        result.append((True, f"tcp {port} open"))
                else:
                    url = str(xb.get("http"))
                    import urllib.request

                    with urllib.request.urlopen(url, timeout=timeout) as r:
                        code = r.status
                    result.append((200 <= code < 400, f"HTTP {code}"))
            except Exception as exc:
                result.append((False, str(exc)))

        t = threading.Thread(target=run, daemon=True)
        t.start()
        t.join(timeout + 1)
        return result[0] if result else (False, "probe timed out")

    # -- stop / remove ---------------------------------------------------------------------
    def stop_container(
        self, name: str, timeout: float | None, explicit: bool = True, signal_name: str | None = None
    ) -> None:
        with self.lock:
            c = self.state.containers.get(name)
            if c is None:
                return
            if explicit:
                c.explicitly_stopped = True
            self.stopping.add(name)
            running = c.status in ("running", "paused", "restarting", "created") and c.pid
            ev = self.exited.get(name)
        try:
            if not running:
                with self.lock:
                    if c.status == "restarting":
                        c.status = "exited"
                return
            svc = self._service_of(c)
            grace = _spec.grace(svc) if timeout is None else timeout
            if c.status == "paused":
                with contextlib.suppress(ComposeError):
                    self.runtime.resume(c.name)
            if grace > 0:
                self.signal(c, signal_name or _spec.stop_signal(svc, {}))
                if ev is not None:
                    ev.wait(grace)
            if ev is None or not ev.is_set():
                self.signal(c, "SIGKILL")
                if ev is not None and not ev.wait(10):
                    self._log_note(f"{name} did not exit after SIGKILL")
            self.event("stop", c)
        finally:
            with self.lock:
                self.stopping.discard(name)
                if c.status in ("running", "restarting"):
                    c.status = "exited"
            self.save()

    def signal(self, c: ContainerState, sig: str) -> None:
        """Signal the container's init through a pidfd (no runtime process, no pid reuse race);
        the runtime's `kill` when that is not possible."""
        num = _signal_number(sig)
        if c.pid and num is not None:
            try:
                fd = os.pidfd_open(c.pid)
            except OSError:
                fd = -1
            if fd >= 0:
                try:
                    signal.pidfd_send_signal(fd, num)
                    return
                except OSError:
                    pass
                finally:
                    os.close(fd)
        self.runtime.kill(c.name, sig)

    def remove_container(self, name: str, timeout: float | None) -> None:
        import bock_image

        t = time.perf_counter()
        self.stop_container(name, timeout, explicit=True)
        self.trace(name, "stop", t)
        with self.lock:
            c = self.state.containers.get(name)
            self.generation[name] = self.generation.get(name, 0) + 1
        cdir = container_dir(self.root, self.name, name)
        bundle = os.path.join(cdir, "bundle")

        def unbundle() -> None:
            if os.path.exists(bundle):
                with contextlib.suppress(Exception):
                    bock_image.remove_bundle(bundle)

        def unnet() -> None:
            if c is not None:
                if c.netns:
                    _network.remove_netns(c.netns)
                for v in c.veths:
                    _network.delete_link(v)

        # the runtime's delete, the rootfs unmount and the netns removal are independent
        helpers = [threading.Thread(target=f, daemon=True) for f in (unbundle, unnet)]
        for h in helpers:
            h.start()
        self.runtime.delete(name)
        for h in helpers:
            h.join()
        self._release_console(name)
        t = self.trace(name, "delete+unbundle+unnet", t)
        _remove_tree(cdir)
        self.trace(name, "rm dir", t)
        with self.lock:
            if c is not None:
                self.state.containers.pop(name, None)
                self.event("destroy", c)
            self.exited.pop(name, None)
            self.save()

    # -- requests --------------------------------------------------------------------------
    def handle(self, req: dict[str, Any], emit: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
        op = req.get("op")
        fn = getattr(self, f"op_{op}", None)
        if fn is None:
            raise MonitorError(f"unknown request {op!r}")
        if op == "ping":
            return fn(req, emit) or {}
        with self._op_lock:  # two CLIs at once: their changes apply one after the other
            if self.quit.is_set():
                raise MonitorError("the project is being taken down")
            return fn(req, emit) or {}

    def op_ping(self, req, emit):
        return {"pid": os.getpid()}

    def op_up(self, req: dict[str, Any], emit) -> dict[str, Any]:
        services: dict[str, dict[str, Any]] = req["services"]
        hashes: dict[str, str] = req["hashes"]
        scale: dict[str, int] = req["scale"]
        opts = req.get("options", {})
        targets = set(req.get("targets") or services)
        self._project_networks = _NetView(req.get("networks") or {})
        self._volume_names = {
            k: (v or {}).get("name") or f"{self.name}_{k}" for k, v in (req.get("volumes") or {}).items()
        }
        self._volume_external = {
            k: bool((v or {}).get("external")) for k, v in (req.get("volumes") or {}).items()
        }
        self._files = req.get("files") or {}
        self._image_digests = req.get("images") or {}
        with self.lock:
            self.state.services.update(services)
            self.save()
        used = set()
        for s in services.values():
            used.update(service_networks(self._project_networks, s))
        # bridges (and pyroute2's import) while the first bundles are being made: containers wait
        # for the networks only right before their netns is attached
        self._networks_ready = _Ready()
        threading.Thread(
            target=self._networks_ready.run,
            args=(self.ensure_networks, req.get("networks") or {}, used),
            daemon=True,
        ).start()
        deps = {n: [d for d in (s.get("depends_on") or {}) if d in services] for n, s in services.items()}
        if opts.get("remove_orphans"):
            for c in list(self.state.containers.values()):
                if c.service not in req.get("all_services", services) and not c.oneoff:
                    self.remove_container(c.name, opts.get("timeout"))
                    emit({"msg": f"Container {c.name}  Removed"})
        done: dict[str, threading.Event] = {n: threading.Event() for n in services}
        failed: dict[str, str] = {}
        timeout = opts.get("timeout")

        def work(sname: str) -> None:
            try:
                for d in deps[sname]:
                    done[d].wait()
                    if d in failed:
                        raise DependencyError(f"dependency failed to start: {failed[d]}")
                svc = services[sname]
                if sname not in targets:
                    return
                for d, cond in (svc.get("depends_on") or {}).items():
                    if d in services and not opts.get("no_deps"):
                        self.wait_condition(d, cond, emit, scale.get(d, 1))
                self.converge_service(sname, svc, hashes[sname], scale.get(sname, 1), opts, emit, timeout)
            except ComposeError as exc:
                failed[sname] = str(exc)
            except Exception as exc:  # a bug must not hang dependents
                traceback.print_exc()
                failed[sname] = f"{sname}: internal error: {exc!r}"
            finally:
                done[sname].set()

        threads = [threading.Thread(target=work, args=(n,), daemon=True) for n in _graph.topo_order(deps)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self._networks_ready.wait()
        self.sync_dns()
        self.sync_nat()
        if failed:
            first = sorted(failed.items(), key=lambda kv: kv[1].startswith("dependency failed"))[0]
            raise ComposeError(first[1])
        return {}

    def wait_condition(self, dep: str, cond: dict[str, Any], emit, replicas: int) -> None:
        condition = cond.get("condition", "service_started")
        required = cond.get("required", True)
        if replicas == 0 or condition == "service_started":
            return
        if condition == "service_healthy" and not self._healthcheck(self.state.services.get(dep, {})):
            raise DependencyError(f"dependency {dep} has no healthcheck: cannot wait for service_healthy")
        with self.cond:
            while True:
                cs = [c for c in self.state.containers.values() if c.service == dep and not c.oneoff]
                if condition == "service_healthy":
                    if cs and all(c.health == "healthy" for c in cs):
                        emit({"msg": f"Container {cs[0].name}  Healthy"})
                        return
                    bad = [c for c in cs if c.health == "unhealthy" or c.status == "exited"]
                    if bad:
                        msg = f"dependency failed to start: container {bad[0].name} is unhealthy"
                        if required:
                            raise DependencyError(msg)
                        emit({"msg": f"WARN {msg} (not required)"})
                        return
                else:  # service_completed_successfully
                    if cs and all(c.status == "exited" and c.exit_code is not None for c in cs):
                        bad = [c for c in cs if c.exit_code != 0]
                        if bad and required:
                            raise DependencyError(
                                f"service {dep!r} didn't complete successfully: exit {bad[0].exit_code}"
                            )
                        emit({"msg": f"Container {cs[0].name}  Exited"})
                        return
                self.cond.wait(0.5)

    def converge_service(
        self,
        sname: str,
        svc: dict[str, Any],
        h: str,
        scale: int,
        opts: dict[str, Any],
        emit,
        timeout: float | None,
    ) -> None:
        with self.lock:
            current = {
                c.number: c for c in self.state.containers.values() if c.service == sname and not c.oneoff
            }
        for n, c in sorted(current.items()):
            if n > scale:
                emit({"msg": f"Container {c.name}  Stopping"})
                self.remove_container(c.name, timeout)
                emit({"msg": f"Container {c.name}  Removed"})
        errors: list[str] = []
        if svc.get("container_name") and scale > 1:
            raise ComposeError(f"service {sname!r} has container_name set: it cannot be scaled to {scale}")

        def one(n: int) -> None:
            try:
                c = current.get(n)
                if c is not None:
                    digest = self._image_digests.get(sname, "")
                    changed = c.hash != h or bool(digest and c.image_digest and c.image_digest != digest)
                    recreate = opts.get("force_recreate") or (changed and not opts.get("no_recreate"))
                    if not recreate:
                        if c.status in ("running", "restarting", "paused"):
                            emit({"msg": f"Container {c.name}  Running"})
                            return
                        if opts.get("no_start"):
                            return
                        self.start_container(c)
                        emit({"msg": f"Container {c.name}  Started"})
                        return
                    emit({"msg": f"Container {c.name}  Recreate"})
                    self.remove_container(c.name, timeout)
                c = self.create_container(sname, n, svc, h, {}, name=svc.get("container_name"))
                emit({"msg": f"Container {c.name}  Created"})
                self.sync_dns()
                if not opts.get("no_start"):
                    self.start_container(c)
                    emit({"msg": f"Container {c.name}  Started"})
            except ComposeError as exc:
                errors.append(str(exc))

        threads = [threading.Thread(target=one, args=(n,), daemon=True) for n in range(1, scale + 1)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            raise ComposeError(errors[0])

    def _reverse_walk(self, names: list[str], fn: Callable[[ContainerState], None]) -> None:
        """Apply fn to the containers of the services, dependents first, in parallel where allowed."""
        with self.lock:
            svcs = {c.service for c in self.state.containers.values() if c.name in names}
            deps = {
                s: [d for d in (self.state.services.get(s, {}).get("depends_on") or {}) if d in svcs]
                for s in svcs
            }
        dependents: dict[str, list[str]] = {s: [] for s in svcs}
        for s, ds in deps.items():
            for d in ds:
                dependents[d].append(s)
        done = {s: threading.Event() for s in svcs}

        def work(s: str) -> None:
            try:
                for x in dependents[s]:
                    done[x].wait()
                with self.lock:
                    cs = [c for c in self.state.containers.values() if c.service == s and c.name in names]
                ts = [threading.Thread(target=fn, args=(c,), daemon=True) for c in cs]
                for t in ts:
                    t.start()
                for t in ts:
                    t.join()
            finally:
                done[s].set()

        threads = [threading.Thread(target=work, args=(s,), daemon=True) for s in svcs]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    def _select(self, req: dict[str, Any]) -> list[str]:
        services = set(req.get("services") or [])
        with self.lock:
            return [
                c.name
                for c in self.state.containers.values()
                if (not services or c.service in services) and (req.get("oneoff", True) or not c.oneoff)
            ]

    def op_down(self, req, emit):
        timeout = req.get("timeout")
        t = time.perf_counter()
        names = self._select({})

        def rm(c: ContainerState) -> None:
            emit({"msg": f"Container {c.name}  Stopping"})
            self.remove_container(c.name, timeout)
            emit({"msg": f"Container {c.name}  Removed"})

        self._reverse_walk(names, rm)
        t = self.trace(self.name, "down containers", t)
        for key, net in list(self.state.networks.items()):
            self.dns.close(key)
            if not net.external:
                _network.delete_link(net.bridge)
                emit({"msg": f"Network {net.name}  Removed"})
            self.state.networks.pop(key)
        t = self.trace(self.name, "down bridges", t)
        _nat.remove(self.key)
        t = self.trace(self.name, "down nft", t)
        if req.get("volumes"):
            for v in list(self.state.volumes):
                _remove_tree(os.path.join(self.root, "volumes", v))
                emit({"msg": f"Volume {v}  Removed"})
                self.state.volumes.remove(v)
        self.save()
        self.quit.set()
        self.dns.close()
        if self._listener is not None:  # wake accept() now rather than at its next timeout
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)
        _remove_tree(self.pdir)
        self.trace(self.name, "down state", t)
        return {"exit": True, "pid": os.getpid()}

    def op_stop(self, req, emit):
        def stop(c: ContainerState) -> None:
            emit({"msg": f"Container {c.name}  Stopping"})
            self.stop_container(c.name, req.get("timeout"))
            emit({"msg": f"Container {c.name}  Stopped"})

        self._reverse_walk(self._select(req), stop)
        self.sync_dns()

    def op_start(self, req, emit):
        for name in self._select(req):
            c = self.state.containers[name]
            if c.status not in ("running", "paused"):
                self.start_container(c)
                emit({"msg": f"Container {c.name}  Started"})
        self.sync_dns()

    def op_restart(self, req, emit):
        self.op_stop(req, emit)
        self.op_start(req, emit)

    def op_kill(self, req, emit):
        sig = req.get("signal") or "SIGKILL"
        for name in self._select(req):
            c = self.state.containers[name]
            if c.status in ("running", "paused"):
                with self.lock:
                    c.explicitly_stopped = True
                self.runtime.kill(name, sig)
                emit({"msg": f"Container {c.name}  Killed"})

    def op_pause(self, req, emit):
        for name in self._select(req):
            c = self.state.containers[name]
            if c.status == "running":
                self.runtime.pause(name)
                c.status = "paused"
                emit({"msg": f"Container {c.name}  Paused"})
        self.save()

    def op_unpause(self, req, emit):
        for name in self._select(req):
            c = self.state.containers[name]
            if c.status == "paused":
                self.runtime.resume(name)
                c.status = "running"
                emit({"msg": f"Container {c.name}  Unpaused"})
        self.save()

    def op_rm(self, req, emit):
        for name in self._select(req):
            c = self.state.containers[name]
            if c.status not in ("running", "paused", "restarting") or req.get("force"):
                self.remove_container(name, 0)
                emit({"msg": f"Container {name}  Removed"})
        self.sync_dns()

    def op_rm_one(self, req, emit):
        self.remove_container(req["name"], 0)
        self.sync_dns()

    def op_run(self, req, emit):
        """A one-off container (`run`): created and started here, the CLI follows its log."""
        svc = req["service_config"]
        sname = req["service"]
        n = 1 + max(
            [c.number for c in self.state.containers.values() if c.service == sname and c.oneoff] or [0]
        )
        name = req.get("name") or f"{self.name}-{sname}-run-{secrets.token_hex(6)}"
        self._project_networks = _NetView(req.get("networks") or {})
        self._volume_names = {
            k: (v or {}).get("name") or f"{self.name}_{k}" for k, v in (req.get("volumes") or {}).items()
        }
        self._volume_external = {
            k: bool((v or {}).get("external")) for k, v in (req.get("volumes") or {}).items()
        }
        self.ensure_networks(req.get("networks") or {}, set(service_networks(self._project_networks, svc)))
        c = self.create_container(
            sname, n, svc, service_hash(svc), {}, oneoff=True, override_cmd=req.get("command"), name=name
        )
        self.sync_dns()
        self.start_container(c)
        return {"name": c.name}

    # -- adoption --------------------------------------------------------------------------
    def adopt(self) -> list[str]:
        adopted = []
        self._project_networks = _NetView({})
        for key, ns in self.state.networks.items():
            with contextlib.suppress(OSError):
                self.dns.listen(key, ns.gateway)
        for c in list(self.state.containers.values()):
            if c.status not in ("running", "paused", "restarting", "created"):
                continue
            st = self.runtime.state(c.name)
            ev = threading.Event()
            self.exited[c.name] = ev
            gen = self.generation.get(c.name, 0) + 1
            self.generation[c.name] = gen
            if st and st.get("status") in ("running", "paused") and st.get("pid"):
                c.pid = int(st["pid"])
                c.status = st["status"]
                self._reopen_logs(c)
                threading.Thread(target=self._watch_pidfd, args=(c.name, gen, c.pid), daemon=True).start()
                if self._healthcheck(self._service_of(c)):
                    threading.Thread(target=self._health_loop, args=(c.name, gen), daemon=True).start()
                adopted.append(c.name)
            else:
                c.status = "exited"
                c.pid = 0
                self._release_console(c.name)  # it exited while no monitor read its terminal
                threading.Thread(target=self._on_exit, args=(c.name, gen, 255), daemon=True).start()
        self.save()
        self.sync_dns()
        with contextlib.suppress(ComposeError):
            self.sync_nat()
        return adopted

    def _reopen_logs(self, c: ContainerState) -> None:
        """An adopted container's log: its FIFOs again, and its terminal from the holder (tty)."""
        cdir = container_dir(self.root, self.name, c.name)
        readers = []
        for stream in ("stdout", "stderr"):
            path = os.path.join(cdir, f"{stream}.fifo")
            if os.path.exists(path):
                readers.append(os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC))
        master = _console.take_from_holder(c.console_holder) if c.console_holder else None
        if c.console_holder and master is None:
            self._log_note(f"{c.name}: the holder of its terminal is gone; its output is no longer logged")
        if len(readers) == 2:
            self._start_log_pump(c.name, readers, master, c.console_holder)

    def _watch_pidfd(self, name: str, gen: int, pid: int) -> None:
        """An adopted container is not our child: poll its pidfd; the exit code is unknown (255)
        unless it was reparented to us."""
        try:
            fd = os.pidfd_open(pid)
        except OSError:
            self._on_exit(name, gen, 255)
            return
        try:
            select.select([fd], [], [])
        finally:
            os.close(fd)
        self._on_exit(name, gen, 255)

    # -- serving ---------------------------------------------------------------------------
    def serve(self, sock: socket.socket) -> None:
        self._listener = sock
        sock.settimeout(0.5)
        clients: list[threading.Thread] = []
        while not self.quit.is_set():
            try:
                conn, _ = sock.accept()
            except TimeoutError:
                continue
            except OSError:
                break
            t = threading.Thread(target=self._client, args=(conn,), daemon=True)
            t.start()
            clients.append(t)
            clients[:] = [c for c in clients if c.is_alive()]
        sock.close()
        for t in clients:  # the answer to `down` is still being written
            t.join(10)

    def _client(self, conn: socket.socket) -> None:
        f = conn.makefile("rwb")
        lock = threading.Lock()

        def emit(obj: dict[str, Any]) -> None:
            with lock, contextlib.suppress(OSError):
                f.write(json.dumps(obj).encode() + b"\n")
                f.flush()

        try:
            # an abstract socket has no file permissions: only our own uid may drive the monitor
            creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
            _pid, uid, _gid = struct.unpack("3i", creds)
            if uid != os.geteuid():
                emit({"ok": False, "error": f"permission denied: uid {uid} may not use this monitor"})
                return
            line = f.readline()
            if not line:
                return
            req = json.loads(line)
            try:
                result = self.handle(req, emit)
                emit({"ok": True, **result})
                if result.get("exit"):  # down is complete: nothing left to tear down in here
                    with contextlib.suppress(OSError):
                        f.close()
                        conn.close()
                    os._exit(0)
            except ComposeError as exc:
                emit({"ok": False, "error": str(exc)})
            except Exception as exc:
                traceback.print_exc()
                emit({"ok": False, "error": f"monitor internal error: {exc!r}"})
        finally:
            with contextlib.suppress(OSError):
                f.close()
                conn.close()


class _Ready:
    """Work running in a thread that others wait for; its error is raised in every waiter."""

    def __init__(self) -> None:
        self._done = threading.Event()
        self._error: BaseException | None = None

    def run(self, fn: Callable[..., Any], *args: Any) -> None:
        try:
            fn(*args)
        except BaseException as exc:
            self._error = exc
        finally:
            self._done.set()

    def wait(self) -> None:
        self._done.wait()
        if self._error is not None:
            if isinstance(self._error, ComposeError):
                raise ComposeError(str(self._error))
            raise ComposeError(f"network set-up failed: {self._error!r}")

    @classmethod
    def done(cls) -> _Ready:
        r = cls()
        r._done.set()
        return r


class _NetView:
    """Enough of a Project for service_networks()."""

    def __init__(self, networks: dict[str, Any]) -> None:
        self.networks = networks


def _signal_number(sig: str) -> int | None:
    s = str(sig).upper()
    if s.isdigit():
        return int(s)
    try:
        return int(signal.Signals(s if s.startswith("SIG") else "SIG" + s))
    except ValueError:
        return None


def _remove_tree(path: str) -> None:
    """rm -rf that stays on one file system: a mount left below path is never walked into."""
    import stat as _stat

    try:
        top = os.lstat(path)
    except FileNotFoundError:
        return

    def rm(p: str, dev: int) -> None:
        with os.scandir(p) as it:
            for e in it:
                if e.is_dir(follow_symlinks=False):
                    if e.stat(follow_symlinks=False).st_dev != dev or os.path.ismount(e.path):
                        continue
                    rm(e.path, dev)
                    with contextlib.suppress(OSError):
                        os.rmdir(e.path)
                else:
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(e.path)

    if _stat.S_ISDIR(top.st_mode):
        rm(path, top.st_dev)
        with contextlib.suppress(OSError):
            os.rmdir(path)
    else:
        os.unlink(path)


def _subreaper() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")


def main(argv: list[str]) -> int:
    root, name = argv[0], argv[1]
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    _subreaper()
    _proc.start_reaper()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(socket_address(root, name))
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            print("another monitor is running for this project", file=sys.stderr)
            return 0
        raise
    sock.listen(64)
    mon = Monitor(root, name)
    with mon.lock:
        mon.state.monitor_pid = os.getpid()
        mon.save()
    adopted = mon.adopt()
    if adopted:
        mon._log_note(f"adopted {len(adopted)} running container(s): {', '.join(adopted)}")
    # ready: tell the CLI that started us (through the pipe it passed)
    ready_fd = int(os.environ.pop("BOCKROSE_READY_FD", "-1"))
    if ready_fd >= 0:
        with contextlib.suppress(OSError):
            os.write(ready_fd, json.dumps({"ready": True, "adopted": adopted}).encode() + b"\n")
            os.close(ready_fd)
    mon.serve(sock)
    return 0


def iter_lines(sock: socket.socket) -> Iterator[dict[str, Any]]:
    f = sock.makefile("rb")
    for line in f:
        yield json.loads(line)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

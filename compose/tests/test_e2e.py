"""Real containers, bridges, netns and DNS through the bockrose CLI, as root. Each test has its own
project name, state root and auto-allocated subnet, so they run in parallel (pytest -n)."""

from __future__ import annotations

import json
import os
import signal
import time
import urllib.request

import pytest
from bockrose._state import pid_alive
from bockrose_helpers import RUNC, free_port, host_snapshot, ps_json

pytestmark = [pytest.mark.root, pytest.mark.timeout(300)]
RUNTIMES = [pytest.param(None, id="bock"), pytest.param(RUNC, id="runc")]


def http_get(url: str, timeout: float = 5) -> str:
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read().decode()


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_web_reached_by_name_and_published_port(compose, runtime):
    c = compose(runtime)
    port = free_port()
    c.write(f"""
services:
  web:
    image: busybox
    command: httpd -f -p 80 -h /var/www
    ports: ["{port}:80"]
    networks:
      front:
        aliases: [www]
  client:
    image: busybox
    command: sleep 3600
    networks: [front]
networks:
  front: {{}}
""")
    c.run("up", "-d")
    names = {p["Service"]: p for p in ps_json(c)}
    assert set(names) == {"web", "client"} and all(p["State"] == "running" for p in names.values())
    out = c.wait_for(
        lambda: c.exec("client", "wget", "-q", "-O-", "http://web/", check=False).stdout, what="web by name"
    )
    assert "hello from busybox httpd" in out
    assert "hello from busybox httpd" in c.exec("client", "wget", "-q", "-O-", "http://www/").stdout
    assert "hello from busybox httpd" in c.exec("client", "wget", "-q", "-O-", "http://web-1/").stdout
    assert "hello from busybox httpd" in http_get(f"http://127.0.0.1:{port}/")
    assert c.run("port", "web", "80").stdout.strip() == f"0.0.0.0:{port}"
    st = c.state()
    web = st.containers[f"{c.name}-web-1"]
    assert web.labels["com.docker.compose.project"] == c.name
    assert web.labels["com.docker.compose.service"] == "web"
    assert web.labels["com.docker.compose.container-number"] == "1"
    assert len(web.labels["com.docker.compose.config-hash"]) == 64
    # resolv.conf points at the project's DNS; other names are forwarded, not answered locally
    resolv = c.exec("client", "cat", "/etc/resolv.conf").stdout
    assert f"nameserver {st.networks['front'].gateway}" in resolv


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_service_healthy_gates_dependent(compose, runtime):
    """CMD-SHELL probes: through `runc exec`, or bockrose's namespace-joining fallback for bock."""
    c = compose(runtime)
    c.write("""
services:
  db:
    image: busybox
    command: sh -c 'sleep 2; touch /tmp/ready; echo db ready; exec sleep 3600'
    healthcheck: {test: ["CMD-SHELL", "test -f /tmp/ready"], interval: 300ms, retries: 50}
  app:
    image: busybox
    command: sh -c 'echo app started; exec sleep 3600'
    depends_on:
      db: {condition: service_healthy}
""")
    t0 = time.monotonic()
    p = c.run("up", "-d")
    took = time.monotonic() - t0
    st = c.state()
    db, app = st.containers[f"{c.name}-db-1"], st.containers[f"{c.name}-app-1"]
    assert db.health == "healthy"
    assert took >= 2.0, "up returned before the dependency could be healthy"
    assert app.started_at >= db.started_at + 2.0, "the dependent started before its dependency was healthy"
    assert "Healthy" in p.stderr
    assert "(healthy)" in c.run("ps").stdout


def test_service_healthy_fails_fast_when_unhealthy(compose):
    c = compose()
    c.write("""
services:
  db:
    image: busybox
    command: sleep 3600
    healthcheck: {test: ["CMD", "false"], interval: 200ms, retries: 2}
  app:
    image: busybox
    command: sleep 3600
    depends_on:
      db: {condition: service_healthy}
""")
    t0 = time.monotonic()
    p = c.run("up", "-d", check=False)
    assert p.returncode != 0
    assert time.monotonic() - t0 < 20
    assert f"container {c.name}-db-1 is unhealthy" in p.stderr
    assert f"{c.name}-app-1" not in c.state().containers


def test_crash_loop_on_failure_3_stops_after_3_restarts(compose):
    c = compose()
    c.write("""
services:
  crash:
    image: busybox
    command: sh -c 'echo boom; exit 3'
    restart: on-failure:3
""")
    c.run("up", "-d")
    name = f"{c.name}-crash-1"

    def settled():
        s = c.state().containers[name]
        return s if s.status == "exited" and s.restart_count == 3 else None

    s = c.wait_for(settled, timeout=60, what="3 restarts")
    time.sleep(2)  # no 4th restart
    s = c.state().containers[name]
    assert (s.status, s.exit_code, s.restart_count) == ("exited", 3, 3)
    logs = c.run("logs", "--no-log-prefix", "crash").stdout.split()
    assert logs == ["boom"] * 4
    assert "Exited (3)" in c.run("ps", "-a").stdout


def test_unless_stopped_honours_explicit_stop(compose):
    c = compose()
    c.write("services:\n  s:\n    image: busybox\n    command: sleep 3600\n    restart: unless-stopped\n")
    c.run("up", "-d")
    name = f"{c.name}-s-1"
    c.run("stop", "-t", "0")
    time.sleep(1.5)
    s = c.state().containers[name]
    assert s.status == "exited" and s.restart_count == 0
    c.run("start")
    assert c.state().containers[name].status == "running"
    # an exit it did not ask for is restarted
    os.kill(c.state().containers[name].pid, signal.SIGKILL)
    c.wait_for(
        lambda: (
            c.state().containers[name].restart_count == 1 and c.state().containers[name].status == "running"
        ),
        what="restart after a crash",
    )


def test_killed_monitor_is_noticed_and_containers_adopted(compose):
    c = compose()
    c.write("services:\n  s:\n    image: busybox\n    command: sh -c 'echo before; exec sleep 3600'\n")
    c.run("up", "-d")
    st = c.state()
    pid = st.containers[f"{c.name}-s-1"].pid
    os.kill(st.monitor_pid, signal.SIGKILL)
    c.wait_for(lambda: not pid_alive(st.monitor_pid), what="monitor death")
    time.sleep(0.3)
    p = c.run("ps")
    assert "adopt" in p.stderr, p.stderr
    st2 = c.state()
    assert st2.monitor_pid != st.monitor_pid
    assert st2.containers[f"{c.name}-s-1"].pid == pid and st2.containers[f"{c.name}-s-1"].status == "running"
    # the new monitor captures output again
    c.exec("s", "sh", "-c", "echo after-adoption > /proc/1/fd/1")
    c.wait_for(lambda: "after-adoption" in c.run("logs").stdout, what="log after adoption")
    # and notices the container's exit
    os.kill(pid, signal.SIGKILL)
    c.wait_for(lambda: c.state().containers[f"{c.name}-s-1"].status == "exited", what="exit noticed")


def _nslookup(c, name: str, want: int | None = None) -> list[str]:
    """Addresses busybox nslookup gets for name from the project's DNS (retried while the answer has
    not the expected size: a UDP query can be lost on a loaded machine)."""
    got: list[str] = []
    for _ in range(5):
        p = c.exec("client", "nslookup", name, check=False)
        tail = p.stdout.split("Name:", 1)[1] if "Name:" in p.stdout else ""
        got = sorted(line.split()[-1] for line in tail.splitlines() if line.startswith("Address"))
        if want is None or len(got) == want:
            return got
        time.sleep(0.3)
    return got


def _link_mac(name: str) -> str:
    from pyroute2 import IPRoute

    with IPRoute() as ip:
        return ip.get_links(ip.link_lookup(ifname=name)[0])[0].get_attr("IFLA_ADDRESS")


def test_scale_up_and_down_dns_follows(compose):
    c = compose()
    c.write("""
services:
  web:
    image: busybox
    command: sleep 3600
  client:
    image: busybox
    command: sleep 3600
""")
    c.run("up", "-d")
    assert len(_nslookup(c, "web", 1)) == 1
    c.run("up", "-d", "--scale", "web=3")
    st = c.state()
    addrs = sorted(x.addresses["default"] for x in st.containers.values() if x.service == "web")
    assert len(addrs) == 3
    assert _nslookup(c, "web", 3) == addrs
    assert _nslookup(c, "web-3", 1) == [st.containers[f"{c.name}-web-3"].addresses["default"]]
    client_pid = st.containers[f"{c.name}-client-1"].pid
    mac = _link_mac(st.networks["default"].bridge)
    c.run("up", "-d", "--scale", "web=1")
    # the gateway keeps its MAC when the ports of the removed replicas go (else ARP caches go stale)
    assert _link_mac(st.networks["default"].bridge) == mac
    assert c.state().containers[f"{c.name}-client-1"].pid == client_pid, "scaling recreated another service"
    assert len(_nslookup(c, "web", 1)) == 1
    assert _nslookup(c, "web-3", 0) == []


def test_no_change_up_touches_nothing_and_change_recreates(compose):
    c = compose()
    c.write("services:\n  a:\n    image: busybox\n    command: sleep 3600\n")
    c.run("up", "-d")
    before = c.state().containers[f"{c.name}-a-1"]
    p = c.run("up", "-d")
    after = c.state().containers[f"{c.name}-a-1"]
    assert (after.pid, after.created_at) == (before.pid, before.created_at)
    assert "Running" in p.stderr
    c.write("services:\n  a:\n    image: busybox\n    command: sleep 3601\n")
    c.run("up", "-d")
    new = c.state().containers[f"{c.name}-a-1"]
    assert new.pid != before.pid and new.hash != before.hash
    assert c.run("config", "--hash", "a").stdout.split() == ["a", new.hash]


def test_down_leaves_the_host_as_it_was(compose):
    before = host_snapshot()
    c = compose()
    port = free_port()
    c.write(f"""
services:
  web:
    image: busybox
    command: httpd -f -p 80 -h /var/www
    ports: ["{port}:80"]
    volumes: [data:/data, ./bind:/bind, {{type: tmpfs, target: /scratch}}]
    networks: [front, back]
    healthcheck: {{test: ["CMD", "true"], interval: 500ms}}
  db:
    image: busybox
    command: sleep 3600
    networks: [back]
    restart: always
networks:
  front: {{}}
  back: {{internal: true}}
volumes:
  data: {{}}
""")
    c.run("up", "-d")
    during = host_snapshot()
    st = c.state()
    mine = {
        "links": {n.bridge for n in st.networks.values()}
        | {v for x in st.containers.values() for v in x.veths},
        "netns": {x.netns for x in st.containers.values()},
        "nft": {f"table ip bockrose_{st.key}"},
        "cgroups": {
            p for p in during["cgroups"] if any(x.cgroup.lstrip("/") in p for x in st.containers.values())
        },
        "mounts": {m for m in during["mounts"] if m.startswith(c.root)},
        "monitors": {st.monitor_pid},
    }
    for key, items in mine.items():  # everything the project made is really there while it runs
        assert items and items <= set(during[key]), (key, items)
    assert len(mine["netns"]) == 2 and len(mine["links"]) == 2 + 3 and len(mine["mounts"]) >= 2
    # the named volume was populated from the image on first use
    assert "seeded by the image" in c.exec("web", "cat", "/data/seed.txt").stdout
    c.run("down", "-v")
    after = host_snapshot()
    for key, items in mine.items():
        assert not items & set(after[key]), (key, items & set(after[key]))
        # and nothing new of ours appeared (other tests may run in parallel: compare by owner)
        new = set(after[key]) - set(before[key])
        assert not [x for x in new if c.root in str(x) or st.key in str(x) or c.name in str(x)], (key, new)
    assert not os.path.exists(os.path.join(c.root, "projects", c.name))
    assert not os.path.exists(os.path.join(c.root, "volumes", f"{c.name}_data"))
    assert os.listdir(os.path.join(c.root, "runtime", os.path.basename(st.runtime))) == []


WEB_CACHE_WORKER = """
services:
  web:
    image: busybox
    command: httpd -f -p 80 -h /var/www
    ports: ["{port}:80"]
    volumes: [site:/var/www]
    depends_on:
      worker: {{condition: service_started}}
  cache:
    image: busybox
    command: sh -c 'while true; do echo "PONG $$(hostname)" | nc -l -p 6379; done'
    x-bockrose:
      healthcheck: {{tcp: 6379}}
    healthcheck: {{interval: 300ms, retries: 30}}
  worker:
    image: busybox
    environment:
      CACHE_HOST: cache
    command: >-
      sh -c 'while true; do r=$$(nc $$CACHE_HOST 6379 </dev/null); [ -n "$$r" ] && echo "$$r" > /var/www/cache.txt;
      echo "worker got: $$r"; sleep 1; done'
    volumes: [site:/var/www]
    depends_on:
      cache: {{condition: service_healthy}}
volumes:
  site: {{}}
"""


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_real_world_web_cache_worker(compose, runtime):
    c = compose(runtime)
    port = free_port()
    c.write(WEB_CACHE_WORKER.format(port=port))
    c.run("up", "-d")
    st = c.state()
    assert st.containers[f"{c.name}-cache-1"].health == "healthy"
    text = c.wait_for(lambda: _try_get(f"http://127.0.0.1:{port}/cache.txt"), what="worker's result via web")
    assert text.startswith("PONG ")
    assert "hello from busybox httpd" in http_get(f"http://127.0.0.1:{port}/")  # seeded volume
    assert "worker got: PONG" in c.run("logs", "worker").stdout
    ps = c.run("ps", "--services").stdout.split()
    assert ps == ["cache", "web", "worker"]
    c.run("down", "-v")
    assert c.state() is None


def _try_get(url: str) -> str | None:
    try:
        return http_get(url, timeout=2)
    except OSError:
        return None


def test_run_rm_and_exec_options(compose):
    c = compose()
    c.write("services:\n  s:\n    image: busybox\n    command: sleep 3600\n    environment: {A: one}\n")
    c.run("up", "-d")
    p = c.run("exec", "-T", "-e", "B=two", "-w", "/tmp", "s", "sh", "-c", "echo $A $B $(pwd)")
    assert p.stdout.strip() == "one two /tmp"
    p = c.run("run", "--rm", "s", "sh", "-c", "echo from-run; exit 7", check=False)
    assert p.returncode == 7 and "from-run" in p.stdout
    assert [x for x in c.state().containers.values() if x.oneoff] == []


def test_logs_options_and_ps_formats(compose):
    c = compose()
    c.write(
        "services:\n  s:\n    image: busybox\n    command: sh -c 'for i in 1 2 3; do echo line$$i; done;"
        " exec sleep 3600'\n"
    )
    c.run("up", "-d")
    c.wait_for(lambda: "line3" in c.run("logs").stdout, what="logs")
    assert c.run("logs", "-n", "1", "--no-log-prefix").stdout.split() == ["line3"]
    ts = c.run("logs", "-t", "--no-log-prefix").stdout.splitlines()[0]
    assert ts.split()[0].endswith("Z") and ts.split()[1] == "line1"
    assert c.run("logs", "s").stdout.splitlines()[0].startswith("s-1  | line1")
    assert c.run("ps", "-q").stdout.split() == [f"{c.name}-s-1"]
    j = ps_json(c)[0]
    assert j["Service"] == "s" and j["State"] == "running" and j["Project"] == c.name
    assert json.loads(c.run("ls", "--format", "json").stdout)
    c.run("stop", "-t", "0")
    assert c.run("ps", "-q").stdout.split() == []
    assert c.run("ps", "-a", "-q").stdout.split() == [f"{c.name}-s-1"]


def test_config_command(compose):
    c = compose()
    c.write("services:\n  b: {image: busybox, environment: [X=1]}\n  a: {image: busybox}\n")
    assert c.run("config", "--services").stdout.split() == ["b", "a"]
    j = json.loads(c.run("config", "--format", "json").stdout)
    assert j["services"]["b"]["environment"] == {"X": "1"}
    c.write("services:\n  b: {image: busybox, environmnt: [X=1]}\n")
    p = c.run("config", check=False)
    assert p.returncode == 1 and "compose.yaml:2" in p.stderr and "environmnt" in p.stderr


def test_configs_secrets_container_name_and_env_file(compose):
    c = compose()
    (c.dir / "app.conf").write_text("setting=1\n")
    (c.dir / "svc.env").write_text("FROM_FILE=yes\n")
    c.write("""
services:
  app:
    image: busybox
    container_name: my-app-${SUFFIX:-x}
    command: sleep 3600
    env_file: svc.env
    configs: [appconf, {source: inline, target: /etc/inline.txt}]
    secrets: [token]
configs:
  appconf: {file: ./app.conf}
  inline: {content: "inline content"}
secrets:
  token: {environment: TOKEN}
""")
    c.env["TOKEN"] = "s3cret"
    c.env["SUFFIX"] = c.name
    c.run("up", "-d")
    assert f"my-app-{c.name}" in c.state().containers
    out = c.exec(
        "app",
        "sh",
        "-c",
        "cat /appconf; cat /etc/inline.txt; echo; cat /run/secrets/token; echo; echo $FROM_FILE",
    ).stdout
    assert out.split() == ["setting=1", "inline", "content", "s3cret", "yes"]
    p = c.exec("app", "sh", "-c", "echo x > /run/secrets/token", check=False)
    assert p.returncode != 0  # read-only


def test_abort_on_container_exit_and_exit_code_from(compose):
    c = compose()
    c.write("""
services:
  job:
    image: busybox
    command: sh -c 'echo job done; exit 5'
  server:
    image: busybox
    command: sleep 3600
""")
    p = c.run("up", "--exit-code-from", "job", check=False, timeout=120)
    assert p.returncode == 5, p.stderr
    assert "job done" in p.stdout
    st = c.state()
    assert st.containers[f"{c.name}-server-1"].status == "exited"


def test_wait_and_pause_needs_runtime_support(compose):
    c = compose()
    c.write("""
services:
  s:
    image: busybox
    command: sh -c 'sleep 1; touch /tmp/ok; exec sleep 3600'
    healthcheck: {test: ["CMD", "test", "-f", "/tmp/ok"], interval: 200ms, retries: 50}
""")
    c.run("up", "-d", "--wait")
    assert c.state().containers[f"{c.name}-s-1"].health == "healthy"
    p = c.run("pause", check=False)
    assert p.returncode == 0, p.stderr  # bock and runc both have pause/resume
    p = c.run("unpause", check=False)
    assert p.returncode == 0, p.stderr
    assert c.state().containers[f"{c.name}-s-1"].status == "running"


def test_pause_unpause_with_runc(compose):
    c = compose(RUNC)
    c.write("services:\n  s:\n    image: busybox\n    command: sleep 3600\n")
    c.run("up", "-d")
    c.run("pause")
    assert c.state().containers[f"{c.name}-s-1"].status == "paused"
    assert "Paused" in c.run("ps").stdout
    c.run("unpause")
    assert c.state().containers[f"{c.name}-s-1"].status == "running"
    assert c.exec("s", "echo", "alive").stdout.strip() == "alive"


def test_missing_image_build_without_builder_and_orphans(compose):
    c = compose()
    c.write("services:\n  a:\n    image: not-in-store:1\n    pull_policy: never\n")
    p = c.run("up", "-d", check=False)
    assert (
        p.returncode == 1
        and "no such image: not-in-store:1" in p.stderr
        and "pull_policy is never" in p.stderr
    )
    assert c.state() is None  # nothing was started or recorded
    c.write("services:\n  a:\n    build: .\n")
    path = c.env["PATH"]
    c.env["PATH"] = "/usr/bin:/bin"  # no bock-build (and no bock)
    p = c.run("--runtime", RUNC, "up", "-d", check=False)
    assert p.returncode == 1 and "bock-build is not installed" in p.stderr
    p = c.run("config", "-q")  # needs no runtime
    c.env["PATH"] = path
    c.write(
        "services:\n  a: {image: busybox, command: sleep 3600}\n  b: {image: busybox, command: sleep 3600}\n"
    )
    c.run("up", "-d")
    c.write("services:\n  a: {image: busybox, command: sleep 3600}\n")
    p = c.run("up", "-d")
    assert "Found orphan containers (b)" in p.stderr
    c.run("up", "-d", "--remove-orphans")
    assert sorted(x.service for x in c.state().containers.values()) == ["a"]


def test_monitor_refuses_other_users(compose):
    import subprocess
    import sys

    from bockrose._state import socket_address

    c = compose()
    c.write("services:\n  a: {image: busybox, command: sleep 3600}\n")
    c.run("up", "-d")
    addr = socket_address(c.root, c.name)
    # the monitor may answer and close before our request is written: keep reading then
    code = (
        "import socket, sys; s = socket.socket(socket.AF_UNIX); s.connect(bytes.fromhex(sys.argv[1]).decode())\n"
        'try:\n    s.sendall(b\'{"op": "down"}\\n\')\nexcept BrokenPipeError:\n    pass\n'
        "print(s.makefile().readline())"
    )
    # Debian's interpreter: tox's venv (.tox is 0700) is not executable by uid 65534
    python = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
    p = subprocess.run(
        [python, "-c", code, addr.encode().hex()],
        user=65534,
        group=65534,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert "permission denied: uid 65534" in p.stdout, (p.stdout, p.stderr)
    assert c.state().containers[f"{c.name}-a-1"].status == "running"


def test_top_stats_images_events_and_concurrent_clients(compose):
    import subprocess

    c = compose()
    c.write(
        "services:\n  a: {image: busybox, command: sleep 3600}\n  b: {image: busybox, command: sleep 3601}\n"
    )
    ev = subprocess.Popen(c.argv("events", "--json"), stdout=subprocess.PIPE, text=True, env=c.env, cwd=c.dir)
    try:
        time.sleep(1)
        # two `up`s at once: the monitor serialises them; both succeed, nothing is made twice
        procs = [
            subprocess.Popen(c.argv("up", "-d"), env=c.env, cwd=c.dir, stderr=subprocess.PIPE, text=True)
            for _ in range(2)
        ]
        assert [p.wait(120) for p in procs] == [0, 0]
        assert sorted(c.state().containers) == [f"{c.name}-a-1", f"{c.name}-b-1"]
        top = c.run("top", "a").stdout
        assert "sleep 3600" in top and "PID" in top
        stats = c.run("stats", "--no-stream").stdout
        assert f"{c.name}-a-1" in stats and f"{c.name}-b-1" in stats
        images = c.run("images").stdout
        assert "busybox" in images and f"{c.name}-a-1" in images
        c.run("restart", "-t", "0", "a")
        time.sleep(1)
    finally:
        ev.terminate()
        out, _ = ev.communicate(timeout=10)
    actions = [(e["action"], e["service"]) for e in map(json.loads, out.splitlines())]
    for want in [("create", "a"), ("start", "a"), ("stop", "a"), ("start", "b")]:
        assert want in actions, actions

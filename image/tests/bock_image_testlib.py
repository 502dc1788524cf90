"""Test helpers: busybox rootfs, tar builders, a docker-registry process, a token issuer and a
fault-injecting proxy (all real processes/sockets on 127.0.0.1)."""

from __future__ import annotations

import base64
import contextlib
import http.client
import http.server
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import threading
import time
import urllib.request
import uuid
from pathlib import Path

BUSYBOX = "/bin/busybox"


def unique(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def make_busybox_rootfs(dest: Path) -> Path:
    """A busybox-static rootfs with users alice (1000, also in wheel) and nobody."""
    (dest / "bin").mkdir(parents=True)
    for d in ("etc", "tmp", "root", "home/alice", "proc", "sys", "dev"):
        (dest / d).mkdir(parents=True, exist_ok=True)
    shutil.copy2(BUSYBOX, dest / "bin" / "busybox")
    applets = subprocess.run([BUSYBOX, "--list"], capture_output=True, text=True, check=True).stdout.split()
    for a in applets:
        if a != "busybox":
            os.symlink("busybox", dest / "bin" / a)
    (dest / "etc" / "passwd").write_text(
        "root:x:0:0:root:/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh\n"
        "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
    )
    (dest / "etc" / "group").write_text("root:x:0:\nwheel:x:10:alice\nalice:x:1000:\nnogroup:x:65534:\n")
    os.chmod(dest / "tmp", 0o1777)
    return dest


def free_port(ip: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((ip, 0))
        return s.getsockname()[1]


def wait_tcp(ip: str, port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection((ip, port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


class TarBuilder:
    """Build layer tarballs entry by entry (including hostile ones)."""

    def __init__(self) -> None:
        self.buf = io.BytesIO()
        self.tar = tarfile.open(fileobj=self.buf, mode="w", format=tarfile.PAX_FORMAT)  # noqa: SIM115

    def _info(self, name: str, kind: bytes, **kw) -> tarfile.TarInfo:
        info = tarfile.TarInfo(name)
        info.type = kind
        info.mtime = kw.pop("mtime", 1_600_000_000)
        info.mode = kw.pop("mode", 0o755 if kind == tarfile.DIRTYPE else 0o644)
        for k, v in kw.items():
            setattr(info, k, v)
        return info

    def dir(self, name: str, **kw) -> TarBuilder:
        self.tar.addfile(self._info(name, tarfile.DIRTYPE, **kw))
        return self

    def file(self, name: str, data: bytes = b"", **kw) -> TarBuilder:
        info = self._info(name, tarfile.REGTYPE, **kw)
        info.size = len(data)
        self.tar.addfile(info, io.BytesIO(data))
        return self

    def symlink(self, name: str, target: str, **kw) -> TarBuilder:
        self.tar.addfile(self._info(name, tarfile.SYMTYPE, linkname=target, mode=0o777, **kw))
        return self

    def hardlink(self, name: str, target: str, **kw) -> TarBuilder:
        self.tar.addfile(self._info(name, tarfile.LNKTYPE, linkname=target, **kw))
        return self

    def device(self, name: str, major: int, minor: int, char: bool = True, **kw) -> TarBuilder:
        kind = tarfile.CHRTYPE if char else tarfile.BLKTYPE
        self.tar.addfile(self._info(name, kind, devmajor=major, devminor=minor, **kw))
        return self

    def fifo(self, name: str, **kw) -> TarBuilder:
        self.tar.addfile(self._info(name, tarfile.FIFOTYPE, **kw))
        return self

    def bytes(self) -> bytes:
        self.tar.close()
        return self.buf.getvalue()

    def bytes_io(self) -> io.BytesIO:
        return io.BytesIO(self.bytes())


def make_multiarch(store, tarball: Path, name: str, unknown: bool = False):
    """Two busybox images, linux/amd64 (Cmd ["amd64"]) and linux/arm64/v8 (Cmd ["arm64"]), named ``name``
    through an OCI index (plus an os/arch "unknown" entry, as buildkit's attestations have, if asked).
    Returns ({arch: manifest descriptor}, index descriptor)."""
    from bock_image import Platform, import_rootfs

    descs = {}
    for arch in ("amd64", "arm64"):
        descs[arch] = import_rootfs(
            store,
            tarball,
            f"bb-{arch}:latest",
            config={"Cmd": [arch]},
            platform=Platform("linux", arch, "v8" if arch == "arm64" else None),
        )

    def entry(arch: str, platform: dict) -> dict:
        d = descs[arch]
        return {"mediaType": d.mediaType, "digest": d.digest, "size": d.size, "platform": platform}

    manifests = [
        entry("amd64", {"os": "linux", "architecture": "amd64"}),
        entry("arm64", {"os": "linux", "architecture": "arm64", "variant": "v8"}),
    ]
    if unknown:
        manifests.append(entry("amd64", {"os": "unknown", "architecture": "unknown"}))
    index = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": manifests,
    }
    idesc = store.put_json(index)
    store.add_image(name, idesc)
    return descs, idesc


def skopeo(*args: str) -> str:
    """skopeo's stdout; a failure fails the test with its stderr (skopeo is the tests' oracle)."""
    res = subprocess.run(["skopeo", *args], capture_output=True, text=True)
    assert res.returncode == 0, f"skopeo {' '.join(args)}: {res.stderr}"
    return res.stdout


def wait_http(url: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            urllib.request.urlopen(url, timeout=1)
            return
        except urllib.error.HTTPError:
            return  # answering (401 counts)
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


class Registry:
    """A real docker-registry (distribution 2.8) on <ip>:<free port> (127.0.0.1 by default); with
    ``tls`` (distribution's http.tls section) it speaks https only."""

    def __init__(
        self, base: Path, auth: dict | None = None, tls: dict | None = None, ip: str = "127.0.0.1"
    ) -> None:
        self.base = base
        self.port = free_port(ip)
        self.host = f"{ip}:{self.port}"
        base.mkdir(parents=True, exist_ok=True)
        config = {
            "version": 0.1,
            "log": {"level": "warn", "accesslog": {"disabled": True}},
            "storage": {"filesystem": {"rootdirectory": str(base / "data")}, "delete": {"enabled": True}},
            "http": {"addr": self.host, "secret": uuid.uuid4().hex, **({"tls": tls} if tls else {})},
        }
        if auth:
            config["auth"] = auth
        (base / "config.yml").write_text(json.dumps(config))  # JSON is YAML
        self.log = open(base / "registry.log", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            ["docker-registry", "serve", str(base / "config.yml")],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        try:
            if tls:
                wait_tcp(ip, self.port)
            else:
                wait_http(f"http://{self.host}/v2/")
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def _bcrypt_line(user: str, password: str) -> str:
    if shutil.which("htpasswd"):  # apache2-utils
        out = subprocess.run(
            ["htpasswd", "-nbB", "-C", "5", user, password], capture_output=True, text=True, check=True
        )
        return out.stdout.strip()
    import bcrypt  # pip fallback

    return f"{user}:{bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=5)).decode()}"


def htpasswd_auth(base: Path, users: dict[str, str]) -> dict:
    lines = [_bcrypt_line(u, p) for u, p in users.items()]
    path = base / "htpasswd"
    base.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return {"htpasswd": {"realm": "bock-test", "path": str(path)}}


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class TokenIssuer:
    """A minimal distribution token server (RS256 JWTs signed with openssl), on a free port.
    Grants every requested action to ``user``/``password``; anonymous gets pull only when allowed."""

    def __init__(self, base: Path, user: str, password: str, anonymous_pull: bool = False) -> None:
        base.mkdir(parents=True, exist_ok=True)
        self.key = base / "token.key"
        self.cert = base / "token.crt"
        subprocess.run(
            [
                "openssl",
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                str(self.key),
                "-out",
                str(self.cert),
                "-days",
                "2",
                "-subj",
                "/CN=bock-test-token",
            ],
            check=True,
            capture_output=True,
        )
        der = subprocess.run(
            ["openssl", "x509", "-in", str(self.cert), "-outform", "DER"], check=True, capture_output=True
        ).stdout
        self.x5c = base64.b64encode(der).decode()
        self.user, self.password, self.anonymous_pull = user, password, anonymous_pull
        self.requests: list[dict] = []
        self.service = "bock-test-registry"
        issuer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                from urllib.parse import parse_qs, urlparse

                q = parse_qs(urlparse(self.path).query)
                auth = self.headers.get("Authorization", "")
                authed = (
                    auth == "Basic " + base64.b64encode(f"{issuer.user}:{issuer.password}".encode()).decode()
                )
                issuer.requests.append({"scopes": q.get("scope", []), "authed": authed})
                if auth and not authed:
                    self.send_response(401)
                    self.end_headers()
                    return
                access = []
                for scope in q.get("scope", []):
                    kind, name, actions = scope.split(":")
                    allowed = actions.split(",") if authed else (["pull"] if issuer.anonymous_pull else [])
                    access.append(
                        {
                            "type": kind,
                            "name": name,
                            "actions": [a for a in actions.split(",") if a in allowed],
                        }
                    )
                body = json.dumps({"token": issuer.sign(access), "expires_in": 300}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/token"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def sign(self, access: list) -> str:
        now = int(time.time())
        header = {"typ": "JWT", "alg": "RS256", "x5c": [self.x5c]}
        claims = {
            "iss": "bock-test-issuer",
            "sub": self.user,
            "aud": self.service,
            "exp": now + 300,
            "nbf": now - 10,
            "iat": now,
            "jti": uuid.uuid4().hex,
            "access": access,
        }
        signing_input = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
        sig = subprocess.run(
            ["openssl", "dgst", "-sha256", "-sign", str(self.key)],
            input=signing_input.encode(),
            capture_output=True,
            check=True,
        ).stdout
        return f"{signing_input}.{_b64url(sig)}"

    def registry_auth(self) -> dict:
        return {
            "token": {
                "realm": self.url,
                "service": self.service,
                "issuer": "bock-test-issuer",
                "rootcertbundle": str(self.cert),
            }
        }

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class FaultProxy:
    """A forwarding HTTP proxy in front of a registry that can inject failures:
    ``fail[n]``: answer 500 to the next n requests whose path contains a substring,
    ``throttle``: (substring, bytes_per_second) slows matching responses,
    ``cut``: (substring, after_bytes) closes the connection mid-body once,
    ``corrupt``: substring whose response body gets one byte flipped,
    ``replace``: (substring, body) serves another body (e.g. a valid layer with the wrong digest)."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.fail: dict[str, int] = {}
        self.throttle: tuple[str, int] | None = None
        self.cut: tuple[str, int] | None = None
        self.corrupt: str | None = None
        self.replace: tuple[str, bytes] | None = None
        self.paginate_tags = False  # distribution 2.8 ignores ?n= on tags/list: emulate 3.0's Link pages
        self.log: list[tuple[str, str, str | None, int]] = []  # method, path, range, status
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def _handle(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                for key, n in list(proxy.fail.items()):
                    if key in self.path and n > 0:
                        proxy.fail[key] = n - 1
                        proxy.log.append((self.command, self.path, self.headers.get("Range"), 500))
                        self.send_response(500)
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                if proxy.paginate_tags and "/tags/list" in self.path and self.command == "GET":
                    self._tags_page()
                    return
                conn = http.client.HTTPConnection(proxy.upstream, timeout=30)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
                headers["Host"] = proxy.upstream
                conn.request(self.command, self.path, body=body, headers=headers)
                resp = conn.getresponse()
                proxy.log.append((self.command, self.path, self.headers.get("Range"), resp.status))
                replace = proxy.replace if proxy.replace and proxy.replace[0] in self.path else None
                self.send_response(resp.status)
                for k, v in resp.getheaders():
                    if k.lower() in ("connection", "transfer-encoding"):
                        continue
                    if replace and k.lower() == "content-length":
                        v = str(len(replace[1]))
                    if k.lower() == "location":
                        v = v.replace(proxy.upstream, f"127.0.0.1:{proxy.port}")
                    self.send_header(k, v)
                self.end_headers()
                if self.command == "HEAD":
                    conn.close()
                    return
                if replace:
                    resp.read()
                    self.wfile.write(replace[1])
                    conn.close()
                    return
                sent = 0
                cut = proxy.cut if proxy.cut and proxy.cut[0] in self.path else None
                throttle = proxy.throttle if proxy.throttle and proxy.throttle[0] in self.path else None
                corrupt = proxy.corrupt is not None and proxy.corrupt in self.path
                while True:
                    chunk = resp.read(65536)
                    if not chunk:
                        break
                    if corrupt and sent == 0:
                        chunk = bytes([chunk[0] ^ 0xFF]) + chunk[1:]
                    if cut and sent + len(chunk) > cut[1]:
                        self.wfile.write(chunk[: cut[1] - sent])
                        self.wfile.flush()
                        proxy.cut = None
                        self.close_connection = True
                        with contextlib.suppress(OSError):
                            self.connection.shutdown(socket.SHUT_RDWR)
                        conn.close()
                        return
                    self.wfile.write(chunk)
                    sent += len(chunk)
                    if throttle:
                        time.sleep(len(chunk) / throttle[1])
                conn.close()

            def _tags_page(self):
                from urllib.parse import parse_qs, urlencode, urlparse

                url = urlparse(self.path)
                q = parse_qs(url.query)
                conn = http.client.HTTPConnection(proxy.upstream, timeout=30)
                conn.request("GET", url.path, headers={"Host": proxy.upstream})
                resp = conn.getresponse()
                data = json.loads(resp.read())
                conn.close()
                tags = sorted(data.get("tags") or [])
                last = q.get("last", [""])[0]
                n = int(q.get("n", ["100"])[0])
                page = [t for t in tags if t > last][:n]
                body = json.dumps({"name": data["name"], "tags": page}).encode()
                proxy.log.append(("GET", self.path, None, 200))
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                if page and page[-1] != tags[-1]:
                    self.send_header(
                        "Link", f'<{url.path}?{urlencode({"n": n, "last": page[-1]})}>; rel="next"'
                    )
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.host = f"127.0.0.1:{self.port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


BUSYBOX_CONFIG = {"Cmd": ["sh"], "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]}


def run_cli(*args: str, root: Path | None = None, check: bool = True, **kw) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "bock_image.cli"]
    if root is not None:
        cmd += ["--root", str(root)]
    res = subprocess.run([*cmd, *args], capture_output=True, text=True, **kw)
    if check and res.returncode != 0:
        raise AssertionError(
            f"bock-image {' '.join(args)} failed ({res.returncode}):\n{res.stdout}\n{res.stderr}"
        )
    return res


def spawn_cli(root: Path, *args: str, **kw) -> subprocess.Popen:
    """Start bock-image in the background (for kill and concurrency tests)."""
    return subprocess.Popen([sys.executable, "-m", "bock_image.cli", "--root", str(root), *args], **kw)


def runtime_binary() -> str:
    """The OCI runtime that runs bundles in the tests: $BOCK_RUNTIME, default runc."""
    return os.environ.get("BOCK_RUNTIME", "runc")

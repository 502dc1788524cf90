"""The plain-HTTP transport (_http) against real sockets, and what a push imports.

The HTTP cases run a small stdlib server on 127.0.0.1 (a free port) that records what it received;
the import case pushes to a real docker-registry in a fresh interpreter and lists its modules.
"""

from __future__ import annotations

import http.server
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest
from bock_image import Descriptor, RegistryClient, _http
from bock_image._models import converter, descriptor


class _Recorder(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    seen: list[dict]  # set per server
    other: str = ""  # netloc of a second server for cross-origin redirects

    def log_message(self, *args) -> None:
        pass

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding") == "chunked":
            out = b""
            while True:
                size = int(self.rfile.readline().strip(), 16)
                if size == 0:
                    self.rfile.readline()
                    return out
                out += self.rfile.read(size)
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _handle(self) -> None:
        body = self._body()
        self.seen.append(
            {
                "method": self.command,
                "path": self.path,
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "body": body,
                "client": self.client_address[1],
            }
        )
        routes = {
            "/relative": (307, {"Location": "target?x=1"}),
            "/see-other": (303, {"Location": "/target"}),
            "/elsewhere": (302, {"Location": f"http://{self.other}/target"}),
            "/close": (200, {"Connection": "close"}),
            "/to-https": (302, {"Location": f"https://{self.other}/target"}),
        }
        status, headers = routes.get("/" + self.path.split("?")[0].rsplit("/", 1)[-1], (200, {}))
        payload = json.dumps({"method": self.command, "len": len(body)}).encode()
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)
        if headers.get("Connection") == "close" or self.path.endswith("/hang-up"):
            self.close_connection = True  # /hang-up: without saying so, as an idle timeout would

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = _handle


@pytest.fixture
def servers() -> Iterator[tuple[str, list[dict], str, list[dict]]]:
    made = []
    for _ in range(2):
        seen: list[dict] = []
        handler = type("Handler", (_Recorder,), {"seen": seen})
        srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        made.append((srv, seen))
    (a, seen_a), (b, seen_b) = made
    host_a, host_b = (f"127.0.0.1:{s.server_address[1]}" for s in (a, b))
    a.RequestHandlerClass.other = host_b
    try:
        yield host_a, seen_a, host_b, seen_b
    finally:
        for srv, _ in made:
            srv.shutdown()
            srv.server_close()


@pytest.fixture
def client() -> Iterator[_http.Client]:
    c = _http.Client()
    try:
        yield c
    finally:
        c.close()


def send(client: _http.Client, method: str, url: str, **kw) -> _http.Response:
    headers = kw.pop("headers", None)
    content = kw.pop("content", None)
    return client.send(client.build_request(method, url, headers=headers, content=content), **kw)


def test_keep_alive_reuses_one_connection_and_survives_a_close(servers, client):
    host, seen, _, _ = servers
    for _ in range(3):
        assert send(client, "GET", f"http://{host}/x").json() == {"method": "GET", "len": 0}
    assert len({r["client"] for r in seen}) == 1
    assert send(client, "GET", f"http://{host}/close").status_code == 200  # server hangs up after it
    assert send(client, "HEAD", f"http://{host}/y").status_code == 200
    assert seen[-1]["client"] != seen[0]["client"]


def test_a_kept_alive_connection_the_server_dropped_is_replaced(servers, client):
    host, seen, _, _ = servers
    assert send(client, "GET", f"http://{host}/hang-up").status_code == 200
    time.sleep(0.2)  # the server has closed its end by now
    resp = send(client, "PUT", f"http://{host}/again", content=b"body")
    assert resp.json() == {"method": "PUT", "len": 4}
    assert seen[-1]["client"] != seen[0]["client"]


def test_streamed_body_without_length_goes_chunked(servers, client):
    host, seen, _, _ = servers
    resp = send(client, "PATCH", f"http://{host}/up", content=iter([b"ab", b"", b"c" * 70000]))
    assert resp.json() == {"method": "PATCH", "len": 70002}
    assert seen[-1]["headers"]["transfer-encoding"] == "chunked"
    assert seen[-1]["body"] == b"ab" + b"c" * 70000
    resp = send(client, "PUT", f"http://{host}/up", headers={"Content-Length": "3"}, content=iter([b"xyz"]))
    assert "transfer-encoding" not in seen[-1]["headers"] and seen[-1]["body"] == b"xyz"
    send(client, "POST", f"http://{host}/up")
    assert seen[-1]["headers"]["content-length"] == "0"


def test_file_range_body_goes_by_sendfile_or_chunks(servers, tmp_path):
    from bock_image._registry import _FileRange

    host, seen, _, _ = servers
    blob = tmp_path / "blob"
    blob.write_bytes(bytes(range(256)) * 9000)  # 2.2 MiB: three sendfile pieces
    done: list[int] = []
    client = _http.Client()
    try:
        body = _FileRange(blob, 1000, 2_300_000, done.append)
        send(client, "PUT", f"http://{host}/up", headers={"Content-Length": str(2_299_000)}, content=body)
        assert seen[-1]["body"] == blob.read_bytes()[1000:2_300_000]
        assert done[-1] == 2_300_000 and len(done) == 3
        # without a length the same body goes chunked, piece by piece
        send(client, "PATCH", f"http://{host}/up", content=_FileRange(blob, 0, 10, None))
        assert seen[-1]["headers"]["transfer-encoding"] == "chunked"
        assert seen[-1]["body"] == blob.read_bytes()[:10]
    finally:
        client.close()


def test_redirects_relative_303_and_cross_origin(servers):
    host, seen, _, seen_other = servers
    client = _http.Client()
    auth = {"Authorization": "Bearer secret"}
    try:
        # 307 keeps the method and a bytes body; a relative Location resolves against the request URL
        resp = send(client, "PUT", f"http://{host}/dir/relative", headers=auth, content=b"data")
        assert resp.json() == {"method": "PUT", "len": 4}
        assert (
            seen[-1]["path"] == "/dir/target?x=1" and seen[-1]["headers"]["authorization"] == "Bearer secret"
        )
        # 303 turns a POST into a GET without a body
        assert send(client, "POST", f"http://{host}/see-other", content=b"form").json()["method"] == "GET"
        # another origin does not get the credentials
        resp = send(client, "GET", f"http://{host}/elsewhere", headers=auth)
        assert resp.status_code == 200 and seen_other[-1]["path"] == "/target"
        assert "authorization" not in seen_other[-1]["headers"]
        # a streamed body cannot be sent twice: a clear error, not a truncated upload
        with pytest.raises(_http.TransportError, match="streamed"):
            send(
                client,
                "PUT",
                f"http://{host}/relative",
                content=iter([b"x"]),
                headers={"Content-Length": "1"},
            )
    finally:
        client.close()


def test_redirect_to_https_is_handed_to_the_other_client(servers):
    httpx = pytest.importorskip("httpx")
    host, _, other, seen_other = servers
    asked: list[str] = []

    def elsewhere(url: str):
        asked.append(url)
        return httpx.Client(verify=False)

    client = _http.Client(elsewhere=elsewhere)
    try:
        with pytest.raises(httpx.TransportError):  # the other server speaks plain HTTP only
            send(client, "GET", f"http://{host}/to-https")
    finally:
        client.close()
    assert asked == [f"https://{other}/target"]
    assert not seen_other  # no TLS handshake, no request recorded


_RAW = {
    # path: (response bytes, then the server closes the connection?)
    "/chunked": (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-A: 1\r\n\r\n"
        b"5;ext=1\r\nhello\r\n1\r\n \r\n5\r\nworld\r\n0\r\nTrailer: x\r\n\r\n",
        False,
    ),
    "/until-close": (b"HTTP/1.1 200 OK\r\n\r\nall of it", True),
    "/continue": (
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok",
        False,
    ),
    "/no-content": (b"HTTP/1.1 204 No Content\r\nContent-Length: 9\r\n\r\n", False),
    "/repeated": (
        b"HTTP/1.1 200 OK\r\nlink: <a>; rel=next\r\nLink: <b>\r\nX-Fold: one\r\n two\r\n"
        b"Content-Length: 0\r\n\r\n",
        False,
    ),
    "/http10": (b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", True),
    "/garbage": (b"SSH-2.0-OpenSSH_9.2\r\n", True),
    "/short": (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", True),
    "/bad-length": (b"HTTP/1.1 200 OK\r\nContent-Length: 1, 2\r\n\r\nab", True),
    "/bad-chunk": (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", True),
    "/headers-cut": (b"HTTP/1.1 200 OK\r\nContent-Le", True),
}


@pytest.fixture
def raw_server() -> Iterator[tuple[str, list[int]]]:
    """Canned byte-exact responses (see _RAW); records the client port of each request."""
    import socket

    srv = socket.create_server(("127.0.0.1", 0))
    ports: list[int] = []

    def serve(conn: socket.socket, port: int) -> None:
        with conn, conn.makefile("rb") as rfile:
            while True:
                line = rfile.readline()
                if not line:
                    return
                method, path = line.split()[0], line.split()[1].decode()
                length = 0
                while (h := rfile.readline()) not in (b"\r\n", b""):
                    if h.lower().startswith(b"content-length:"):
                        length = int(h.split(b":")[1])
                rfile.read(length)
                ports.append(port)
                data, close = _RAW.get(path, (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi", False))
                if method == b"HEAD":
                    data = data.split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n"
                conn.sendall(data)
                if close:
                    conn.shutdown(socket.SHUT_WR)
                    return

    def accept() -> None:
        while True:
            try:
                conn, addr = srv.accept()
            except OSError:
                return
            threading.Thread(target=serve, args=(conn, addr[1]), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield f"127.0.0.1:{srv.getsockname()[1]}", ports
    finally:
        srv.close()


def test_response_framing_follows_rfc9112(raw_server, client):
    host, ports = raw_server
    resp = send(client, "GET", f"http://{host}/chunked", stream=True)
    assert b"".join(resp.iter_raw(3)) == b"hello world" and resp.headers["x-a"] == "1"
    assert send(client, "GET", f"http://{host}/after").content == b"hi"
    assert ports[-1] == ports[-2]  # a chunked body read to its end leaves the connection reusable
    assert send(client, "GET", f"http://{host}/until-close").content == b"all of it"
    assert send(client, "GET", f"http://{host}/after").content == b"hi"
    assert ports[-1] != ports[-2]  # a close-delimited body ends the connection
    resp = send(client, "PUT", f"http://{host}/continue", content=b"x")
    assert (resp.status_code, resp.content) == (201, b"ok")
    resp = send(client, "DELETE", f"http://{host}/no-content")
    assert (resp.status_code, resp.content) == (204, b"")  # 204 has no body, whatever it says
    assert send(client, "GET", f"http://{host}/after").content == b"hi"
    assert ports[-1] == ports[-2]
    resp = send(client, "HEAD", f"http://{host}/after")  # says Content-Length: 2, sends nothing
    assert (resp.status_code, resp.content) == (200, b"")
    assert send(client, "GET", f"http://{host}/after").content == b"hi"
    resp = send(client, "GET", f"http://{host}/repeated")
    assert resp.headers.get("LINK") == "<a>; rel=next, <b>"  # joined, as httpx does
    assert resp.headers["x-fold"] == "one two" and "Link" in resp.headers and "nope" not in resp.headers
    assert send(client, "GET", f"http://{host}/http10").content == b"ok"


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/garbage", "not an HTTP/1.1 status line"),
        ("/short", "closed 7 bytes early"),
        ("/bad-length", "invalid Content-Length"),
        ("/bad-chunk", "invalid chunk size"),
        ("/headers-cut", "inside the response headers"),
    ],
)
def test_malformed_responses_are_transport_errors(raw_server, path, message, client):
    host, _ = raw_server
    with pytest.raises(_http.TransportError, match=message):
        send(client, "GET", f"http://{host}{path}")
    assert send(client, "GET", f"http://{host}/after").content == b"hi"  # the client still works


def test_header_injection_is_refused(servers, client):
    host, seen, _, _ = servers
    with pytest.raises(_http.TransportError, match="invalid header"):
        send(client, "GET", f"http://{host}/x", headers={"X-A": "1\r\nX-Evil: 2"})
    assert not seen


def test_refused_connection_is_a_transport_error():
    from bock_image_testlib import free_port

    client = _http.Client(connect_timeout=2)
    with pytest.raises(_http.TransportError):
        send(client, "GET", f"http://127.0.0.1:{free_port()}/v2/")


def test_proxy_settings_send_plain_http_through_httpx(monkeypatch):
    httpx = pytest.importorskip("httpx")
    with RegistryClient() as client:
        assert isinstance(client._for("http://127.0.0.1:5000/v2/"), _http.Client)
        monkeypatch.setenv("http_proxy", "http://127.0.0.1:9")
        assert isinstance(client._for("http://127.0.0.1:5000/v2/"), httpx.Client)


@pytest.mark.parametrize(
    "data",
    [
        {"mediaType": "m", "digest": "sha256:" + "a" * 64, "size": 3},
        {"mediaType": "m", "digest": "sha256:" + "a" * 64, "size": 3, "annotations": {"k": "v"}, "extra": 1},
        {"mediaType": "m", "digest": "sha256:" + "a" * 64, "size": 3, "annotations": {}},
        {
            "mediaType": "m",
            "digest": "sha256:" + "b" * 64,
            "size": 0,
            "platform": {"os": "linux", "architecture": "arm64"},
        },
        {"mediaType": "m", "digest": "sha256:" + "a" * 64, "size": "7"},
        {
            "mediaType": "m",
            "digest": "sha256:" + "a" * 64,
            "size": 1,
            "urls": ["http://x"],
            "artifactType": "t",
        },
    ],
)
def test_descriptor_fast_path_matches_cattrs(data):
    assert descriptor(data) == converter().structure(data, Descriptor)


@pytest.mark.parametrize(
    "data",
    [
        {"mediaType": "m", "digest": "sha256:" + "a" * 64, "size": -1},
        {"mediaType": "m", "digest": "sha256:abc", "size": 1},
        {"mediaType": "m", "digest": "sha256:" + "a" * 64},
        {},
    ],
)
def test_descriptor_bad_input_is_a_clear_error(data):
    from bock_image import InvalidReference

    with pytest.raises(InvalidReference, match="invalid descriptor"):
        descriptor(data)


LAZY = (
    "httpx", "httpcore", "h11", "cattrs", "concurrent.futures", "logging", "bock_image._auth", "getpass",
    "http.client", "email", "ssl",
)  # fmt: skip


@pytest.mark.slow
def test_push_imports_no_more_than_it_needs(busybox_store, registry):
    """A push to a plain-HTTP registry must not import httpx, cattrs and friends (start-up time)."""
    code = (
        "import sys; from bock_image.cli import main\n"
        f"rc = main(['-q', '--root', {str(busybox_store.root)!r}, 'push', 'busybox:latest',"
        f" {registry.host + '/lab/lean:1'!r}])\n"
        f"print(rc, [m for m in {LAZY!r} if m in sys.modules])\n"
    )
    env = {k: v for k, v in os.environ.items() if k.lower() not in ("http_proxy", "all_proxy")}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    ).stdout
    assert out.splitlines()[-1] == "0 []", out
    # and the pushed image is really there
    with RegistryClient() as client:
        assert (
            client.get_manifest(client.resolve(f"{registry.host}/lab/lean:1")[0])[2]
            == busybox_store.resolve("busybox:latest").digest
        )

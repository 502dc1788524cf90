"""A small pooled HTTP/1.1 client on plain sockets, for plain-HTTP registries.

httpx (with httpcore and h11) costs ~45 ms to import and set up, and even the standard library's
``http.client`` ~13 ms (its header parsing pulls in ``email``, and it imports ``ssl``): a tenth and a
thirtieth of a whole push to a local registry. So the registry client sends plain ``http://`` requests
through this and keeps httpx for https (certifi, TLS options) and for anything behind a proxy
(``plain_http_allowed``). The surface is the part of httpx's that ``_registry`` uses:
``send(build_request(...), stream=...)``, ``get``, ``post`` and a response with ``status_code``,
``headers`` (case-insensitive; repeated fields joined with ", " as httpx does), ``content``, ``text``,
``json()``, ``iter_raw()``, ``read()`` and ``close()``. A body is bytes, an iterable of bytes, or an
iterable that also has ``send_to(socket)`` (used when its length is given, e.g. to sendfile(2) a
blob). Redirects are followed as httpx's ``follow_redirects=True`` does (303, and 301/302 after a
POST, become GET; Authorization is dropped when the origin changes).

Responses are framed as RFC 9112 section 6 says: no body after HEAD, 1xx, 204 and 304; a chunked body
is decoded; otherwise Content-Length, or (without one) everything until the server closes. Anything
else that is not HTTP/1.x is a ``TransportError``.
"""

from __future__ import annotations

import json
import os
import socket
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from urllib.parse import urlencode, urljoin, urlsplit

CHUNK = 1 << 20
MAX_REDIRECTS = 20
MAX_HEADER_LINE = 65536
MAX_HEADERS = 200
USER_AGENT = "bock-image"
_PROXY_VARS = ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY")


class TransportError(OSError):
    """The connection failed, broke or spoke something other than HTTP/1.1 (an OSError, so that the CLI
    reports one that escapes the registry client's retries as an error, not a traceback)."""


class _Stale(TransportError):
    """The server closed a kept-alive connection before answering (an idle timeout): retry once."""


def plain_http_allowed() -> bool:
    """True unless a proxy is configured for plain http (then httpx, which honours it, is used)."""
    return not any(os.environ.get(v) for v in _PROXY_VARS)


class Request:
    def __init__(self, method: str, url: str, headers: dict[str, str], content: Any) -> None:
        self.method = method
        self.url = url
        self.headers = headers
        self.content = content


class Headers:
    """Response header fields, looked up without regard to case."""

    def __init__(self, fields: list[tuple[str, str]]) -> None:
        self._map: dict[str, str] = {}
        for name, value in fields:
            key = name.lower()
            self._map[key] = f"{self._map[key]}, {value}" if key in self._map else value

    def get(self, name: str, default: Any = None) -> Any:
        return self._map.get(name.lower(), default)

    def __getitem__(self, name: str) -> str:
        return self._map[name.lower()]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._map

    def __repr__(self) -> str:
        return f"Headers({self._map!r})"


class Response:
    def __init__(
        self, status: int, headers: Headers, body: _Body, conn: _Conn, pool: Client, url: str
    ) -> None:
        self._body = body
        self._conn: _Conn | None = conn
        self._pool = pool
        self._content: bytes | None = None
        self.url = url
        self.status_code = status
        self.headers = headers
        if body.done:
            self._release()

    def read(self) -> bytes:
        if self._content is None:
            try:
                self._content = self._body.read_all()
            except OSError as exc:
                self.close()
                raise TransportError(f"reading the response from {self.url}: {exc!r}") from None
            self._release()
        return self._content

    @property
    def content(self) -> bytes:
        return self.read()

    @property
    def text(self) -> str:
        return self.read().decode("utf-8", "replace")

    def json(self) -> Any:
        return json.loads(self.read())

    def iter_raw(self, chunk_size: int = CHUNK) -> Iterator[bytes]:
        """The body as it arrives (no content decoding), in pieces of at most ``chunk_size``."""
        try:
            while chunk := self._body.read(chunk_size):
                yield chunk
        except OSError as exc:
            self.close()
            raise TransportError(f"reading the response from {self.url}: {exc!r}") from None
        self._release()

    def _release(self) -> None:
        """The body was read to its end: the connection can carry the next request."""
        if self._conn is not None:
            if self._body.reusable:
                self._pool._put(self._conn)
            else:
                self._conn.close()
            self._conn = None

    def close(self) -> None:
        """Drop a connection whose response was not read to the end (it cannot be reused)."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None


class Client:
    """Keep-alive connections per host, shared by threads; each request holds one connection."""

    def __init__(
        self,
        *,
        timeout: float = 60.0,
        connect_timeout: float = 15.0,
        elsewhere: Callable[[str], Any] | None = None,
    ) -> None:
        """``elsewhere(url)``: the (httpx) client that follows a redirect to an https URL."""
        self._elsewhere = elsewhere
        self._timeout = timeout
        self._connect_timeout = connect_timeout
        self._idle: dict[str, list[_Conn]] = {}
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, {}
        for conns in idle.values():
            for c in conns:
                c.close()

    def _get(self, netloc: str) -> tuple[_Conn, bool]:
        """An idle connection to ``netloc`` (True: reused) or a new one."""
        with self._lock:
            conns = self._idle.get(netloc)
            if conns:
                return conns.pop(), True
        return _Conn(netloc, timeout=self._connect_timeout), False

    def _put(self, conn: _Conn) -> None:
        if conn.sock is None:  # the server said Connection: close
            return
        with self._lock:
            self._idle.setdefault(conn.netloc, []).append(conn)

    def build_request(
        self, method: str, url: str, *, headers: dict[str, str] | None = None, content: Any = None
    ) -> Request:
        return Request(method, url, dict(headers or {}), content)

    def send(self, request: Request, *, stream: bool = False, timeout: float | None = None) -> Response:
        method, url, headers, body = request.method, request.url, request.headers, request.content
        for _ in range(MAX_REDIRECTS + 1):
            resp = self._send_once(method, url, headers, body, timeout)
            location = resp.headers.get("location")
            if resp.status_code not in (301, 302, 303, 307, 308) or not location:
                if not stream:
                    resp.read()
                return resp
            resp.read()  # a short body; reading it frees the connection
            target = urljoin(url, location)
            if urlsplit(target)[:2] != urlsplit(url)[:2]:
                headers = {k: v for k, v in headers.items() if k.lower() != "authorization"}
            if resp.status_code == 303 or (resp.status_code in (301, 302) and method == "POST"):
                method = "GET" if method != "HEAD" else method
                body = None
                headers = {
                    k: v for k, v in headers.items() if k.lower() not in ("content-length", "content-type")
                }
            elif body is not None and not isinstance(body, (bytes, bytearray)):
                raise TransportError(f"{method} {url}: redirected to {target}, but the body was streamed")
            url = target
            if not url.startswith("http://") and self._elsewhere is not None:
                other = self._elsewhere(url)
                return other.send(
                    other.build_request(method, url, headers=headers, content=body), stream=stream
                )
        raise TransportError(f"{method} {url}: more than {MAX_REDIRECTS} redirects")

    def _send_once(
        self, method: str, url: str, headers: dict[str, str], body: Any, timeout: float | None
    ) -> Response:
        parts = urlsplit(url)
        if parts.scheme != "http":
            raise TransportError(f"{url}: only plain http goes through this client")
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        while True:
            conn, reused = self._get(parts.netloc)
            try:
                if conn.sock is None:
                    conn.connect()
                conn.sock.settimeout(timeout or self._timeout)
                _write_request(conn, method, target, parts.netloc, headers, body)
                status, fields, body_reader = _read_response(conn, method)
                break
            except OSError as exc:
                conn.close()
                # a kept-alive connection the server has closed meanwhile: once more on a new one
                stale = isinstance(exc, (_Stale, ConnectionResetError, BrokenPipeError))
                if reused and stale and (body is None or isinstance(body, (bytes, bytearray))):
                    continue
                if isinstance(exc, TransportError) and not isinstance(exc, _Stale):
                    raise TransportError(f"{method} {url}: {exc}") from None
                raise TransportError(f"{method} {url}: {exc!r}") from None
            except BaseException:  # e.g. a streamed body that failed its own check: the request is cut
                conn.close()
                raise
        return Response(status, fields, body_reader, conn, self, url)

    def get(
        self,
        url: str,
        *,
        params: Iterable[tuple[str, str]] | dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        timeout: float | None = None,
    ) -> Response:
        if params:
            url += ("&" if "?" in url else "?") + urlencode(params)
        return self.send(self.build_request("GET", url, headers=headers), timeout=timeout)

    def post(self, url: str, *, data: dict[str, str], headers: dict[str, str] | None = None) -> Response:
        body = urlencode(data).encode()
        hdrs = {"Content-Type": "application/x-www-form-urlencoded", **(headers or {})}
        return self.send(self.build_request("POST", url, headers=hdrs, content=body))


class _Conn:
    """One keep-alive connection, pooled under the ``host:port`` it goes to."""

    def __init__(self, netloc: str, timeout: float) -> None:
        self.netloc = netloc
        self.timeout = timeout
        self.sock: socket.socket | None = None
        self.rfile: Any = None

    def connect(self) -> None:
        host, _, port = self.netloc.rpartition(":")
        if not host or not port.isdigit():  # no port given (or an IPv6 literal without one)
            host, port = self.netloc, "80"
        host = host.strip("[]")
        # an ASCII name as bytes: getaddrinfo would otherwise load the idna codec (~1 ms) to encode it
        sock = socket.create_connection((host.encode() if host.isascii() else host, int(port)), self.timeout)
        # a request's headers and a small body may go out as separate writes: without this, Nagle
        # plus delayed ACKs stall each such request ~40 ms
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = sock
        self.rfile = sock.makefile("rb")

    def close(self) -> None:
        sock, self.sock = self.sock, None
        if self.rfile is not None:
            self.rfile.close()
            self.rfile = None
        if sock is not None:
            sock.close()


def _write_request(
    conn: _Conn, method: str, target: str, netloc: str, headers: dict[str, str], body: Any
) -> None:
    sent = {k.lower() for k in headers}
    lines = [f"{method} {target} HTTP/1.1"]
    if "host" not in sent:
        lines.append(f"Host: {netloc}")
    for k, v in headers.items():
        if "\r" in v or "\n" in v or "\r" in k or "\n" in k or ":" in k:
            raise TransportError(f"invalid header {k!r}: {v!r}")
        lines.append(f"{k}: {v}")
    if "user-agent" not in sent:
        lines.append(f"User-Agent: {USER_AGENT}")
    chunked = False
    if "content-length" not in sent and "transfer-encoding" not in sent:
        if isinstance(body, (bytes, bytearray)):
            lines.append(f"Content-Length: {len(body)}")
        elif body is None:
            if method in ("POST", "PUT", "PATCH"):
                lines.append("Content-Length: 0")
        else:
            lines.append("Transfer-Encoding: chunked")
            chunked = True
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    sock = conn.sock
    assert sock is not None
    if isinstance(body, (bytes, bytearray)):
        sock.sendall(head + body if len(body) <= 65536 else head)
        if len(body) > 65536:
            sock.sendall(body)
        return
    sock.sendall(head)
    if hasattr(body, "send_to") and not chunked:
        body.send_to(sock)  # e.g. sendfile(2) of a blob
    elif body is not None:
        for chunk in body:
            if chunked:
                if chunk:
                    sock.sendall(b"%x\r\n%b\r\n" % (len(chunk), chunk))
            else:
                sock.sendall(chunk)
        if chunked:
            sock.sendall(b"0\r\n\r\n")


def _readline(rfile: Any) -> bytes:
    line = rfile.readline(MAX_HEADER_LINE + 1)
    if len(line) > MAX_HEADER_LINE:
        raise TransportError("a response line longer than 64 KiB")
    return line


def _read_response(conn: _Conn, method: str) -> tuple[int, Headers, _Body]:
    """The status, header fields and body reader of the next response (after any 1xx ones)."""
    rfile = conn.rfile
    while True:
        line = _readline(rfile)
        if not line:
            raise _Stale("the server closed the connection without answering")
        parts = line.decode("latin-1").rstrip("\r\n").split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
            raise TransportError(f"not an HTTP/1.1 status line: {line[:80]!r}")
        version, status = parts[0], int(parts[1])
        fields: list[tuple[str, str]] = []
        while True:
            line = _readline(rfile)
            if line in (b"\r\n", b"\n"):
                break
            if not line.endswith(b"\n"):
                raise TransportError("the connection closed inside the response headers")
            if len(fields) >= MAX_HEADERS:
                raise TransportError(f"more than {MAX_HEADERS} response header fields")
            text = line.decode("latin-1").rstrip("\r\n")
            if text[:1] in (" ", "\t") and fields:  # an obsolete folded continuation line
                name, value = fields[-1]
                fields[-1] = (name, f"{value} {text.strip()}")
                continue
            name, colon, value = text.partition(":")
            if not colon or not name or name != name.strip():
                raise TransportError(f"malformed response header line: {line[:80]!r}")
            fields.append((name, value.strip()))
        if 100 <= status < 200 and status != 101:
            continue  # 100 Continue and friends: the real answer follows
        headers = Headers(fields)
        break
    tokens = {t.strip().lower() for t in headers.get("connection", "").split(",")}
    keep = "close" not in tokens and (version != "HTTP/1.0" or "keep-alive" in tokens)
    if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
        return status, headers, _Body(rfile, 0, keep)
    if "chunked" in headers.get("transfer-encoding", "").lower():
        return status, headers, _Chunked(rfile, keep)
    length = headers.get("content-length")
    if length is not None:
        values = {v.strip() for v in length.split(",")}
        if len(values) != 1 or not next(iter(values)).isdigit():
            raise TransportError(f"invalid Content-Length {length!r}")
        return status, headers, _Body(rfile, int(values.pop()), keep)
    return status, headers, _Body(rfile, None, False)  # delimited by the server closing


class _Body:
    """A body of ``length`` bytes (None: until the connection closes)."""

    def __init__(self, rfile: Any, length: int | None, keep: bool) -> None:
        self._rfile = rfile
        self._left = length
        self.reusable = keep and length is not None

    @property
    def done(self) -> bool:
        return self._left == 0

    def read(self, n: int) -> bytes:
        if self._left == 0:
            return b""
        want = n if self._left is None else min(n, self._left)
        data = self._rfile.read(want)
        if self._left is not None:
            if len(data) < want:
                raise TransportError(f"the connection closed {self._left - len(data)} bytes early")
            self._left -= len(data)
        elif not data:
            self._left = 0
        return data

    def read_all(self) -> bytes:
        if self._left is not None:
            return self.read(self._left) if self._left else b""
        out = [piece for piece in iter(lambda: self.read(CHUNK), b"")]
        return b"".join(out)


class _Chunked(_Body):
    """A ``Transfer-Encoding: chunked`` body, decoded."""

    def __init__(self, rfile: Any, keep: bool) -> None:
        super().__init__(rfile, None, keep)
        self.reusable = keep
        self._in_chunk = 0
        self._ended = False

    @property
    def done(self) -> bool:
        return self._ended

    def read(self, n: int) -> bytes:
        if self._ended:
            return b""
        if self._in_chunk == 0:
            line = _readline(self._rfile)
            size = line.split(b";", 1)[0].strip()
            try:
                self._in_chunk = int(size, 16)
            except ValueError:
                raise TransportError(f"invalid chunk size line {line[:40]!r}") from None
            if self._in_chunk == 0:
                while _readline(self._rfile) not in (b"\r\n", b"\n", b""):
                    pass  # trailer fields
                self._ended = True
                return b""
        data = self._rfile.read(min(n, self._in_chunk))
        if not data:
            raise TransportError("the connection closed inside a chunk")
        self._in_chunk -= len(data)
        if self._in_chunk == 0 and self._rfile.read(2) not in (b"\r\n",):
            raise TransportError("a chunk not followed by CRLF")
        return data

    def read_all(self) -> bytes:
        return b"".join(iter(lambda: self.read(CHUNK), b""))

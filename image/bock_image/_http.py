"""A small pooled HTTP/1.1 client on the standard library's ``http.client``, for plain-HTTP registries.

httpx (with httpcore and h11) costs ~45 ms to import and set up, about a tenth of a whole push to a
local registry, so the registry client sends plain ``http://`` requests through this and keeps httpx for
https (certifi, TLS options) and for anything behind a proxy (``plain_http_allowed``). The surface is
the part of httpx's that ``_registry`` uses: ``send(build_request(...), stream=...)``, ``get``, ``post``
and a response with ``status_code``, ``headers`` (case-insensitive), ``content``, ``text``, ``json()``,
``iter_raw()``, ``read()`` and ``close()``. A body is bytes, an iterable of bytes, or an iterable that
also has ``send_to(socket)`` (used when its length is given, e.g. to sendfile(2) a blob). Redirects are
followed as httpx's ``follow_redirects=True`` does (303, and 301/302 after a POST, become GET;
Authorization is dropped when the origin changes).
"""

from __future__ import annotations

import http.client
import json
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from urllib.parse import urlencode, urljoin, urlsplit

CHUNK = 1 << 20
MAX_REDIRECTS = 20
USER_AGENT = "bock-image"
_PROXY_VARS = ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY")


class TransportError(OSError):
    """The connection failed, broke or spoke something other than HTTP/1.1 (an OSError, so that the CLI
    reports one that escapes the registry client's retries as an error, not a traceback)."""


def plain_http_allowed() -> bool:
    """True unless a proxy is configured for plain http (then httpx, which honours it, is used)."""
    return not any(os.environ.get(v) for v in _PROXY_VARS)


class Request:
    def __init__(self, method: str, url: str, headers: dict[str, str], content: Any) -> None:
        self.method = method
        self.url = url
        self.headers = headers
        self.content = content


class Response:
    def __init__(self, raw: http.client.HTTPResponse, conn: _Conn, pool: Client, url: str) -> None:
        self._raw = raw
        self._conn: _Conn | None = conn
        self._pool = pool
        self._content: bytes | None = None
        self.url = url
        self.status_code = raw.status
        self.headers = raw.headers

    def read(self) -> bytes:
        if self._content is None:
            try:
                self._content = self._raw.read()
            except (OSError, http.client.HTTPException) as exc:
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
            while chunk := self._raw.read(chunk_size):
                yield chunk
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            raise TransportError(f"reading the response from {self.url}: {exc!r}") from None
        self._release()

    def _release(self) -> None:
        """The body was read to its end: the connection can carry the next request."""
        if self._conn is not None:
            self._pool._put(self._conn)
            self._conn = None

    def close(self) -> None:
        """Drop a connection whose response was not read to the end (it cannot be reused)."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        self._raw.close()


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
                _write_request(conn, method, target, headers, body)
                raw = conn.getresponse()
                break
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                # a kept-alive connection the server has closed meanwhile: once more on a new one
                stale = isinstance(
                    exc, (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)
                )
                if reused and stale and (body is None or isinstance(body, (bytes, bytearray))):
                    continue
                raise TransportError(f"{method} {url}: {exc!r}") from None
        return Response(raw, conn, self, url)

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


class _Conn(http.client.HTTPConnection):
    """An HTTPConnection that remembers the ``host:port`` it is pooled under."""

    def __init__(self, netloc: str, timeout: float) -> None:
        super().__init__(netloc, timeout=timeout)
        self.netloc = netloc


def _write_request(conn: _Conn, method: str, target: str, headers: dict[str, str], body: Any) -> None:
    conn.putrequest(method, target, skip_accept_encoding=True)
    sent = {k.lower() for k in headers}
    for k, v in headers.items():
        conn.putheader(k, v)
    if "user-agent" not in sent:
        conn.putheader("User-Agent", USER_AGENT)
    chunked = False
    if "content-length" not in sent and "transfer-encoding" not in sent:
        if isinstance(body, (bytes, bytearray)):
            conn.putheader("Content-Length", str(len(body)))
        elif body is None:
            if method in ("POST", "PUT", "PATCH"):
                conn.putheader("Content-Length", "0")
        else:
            conn.putheader("Transfer-Encoding", "chunked")
            chunked = True
    conn.endheaders()
    if isinstance(body, (bytes, bytearray)):
        if body:
            conn.send(body)
    elif hasattr(body, "send_to") and not chunked:
        body.send_to(conn.sock)  # e.g. sendfile(2) of a blob
    elif body is not None:
        _send_iter(conn, body, chunked)


def _send_iter(conn: _Conn, chunks: Iterable[bytes], chunked: bool) -> None:
    for chunk in chunks:
        if chunked:
            if chunk:
                conn.send(b"%x\r\n%b\r\n" % (len(chunk), chunk))
        else:
            conn.send(chunk)
    if chunked:
        conn.send(b"0\r\n\r\n")

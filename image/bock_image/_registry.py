"""A distribution-spec v2 client: pull into a Store, push from it, inspect and list tags remotely.

Transport rules: HTTPS first; plain HTTP only for localhost/127.0.0.1/::1, or anywhere with
``tls_verify=False``. Auth: anonymous, Basic, and the Bearer token flow driven by
``WWW-Authenticate``, with tokens cached per (registry, scopes). Retries with exponential
backoff on 5xx/429 and on connection errors; blob downloads resume with ``Range``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urljoin

from . import _http, _media
from ._digest import check_digest, new_hasher
from ._fsutil import flocked, start_writeback
from ._models import Descriptor, Platform, descriptor
from ._reference import Reference, parse_reference
from ._store import Store, select_platform
from ._summary import summarize
from ._tls import NO_TLS_FILES, TlsFiles, ssl_context, tls_files
from .errors import AuthError, DigestMismatch, ImageError, NotFound, RegistryError, UnsupportedMediaType

if TYPE_CHECKING:
    import httpx

    from ._auth import Credentials

LOCAL_HOSTS = ("localhost", "127.0.0.1", "[::1]", "::1")
CHUNK = 1 << 20
WRITEBACK = 8 << 20
SOURCE_ANNOTATION = "io.bock.image.source"
SOURCE_DIGEST_ANNOTATION = "io.bock.image.source-digest"
_DOCKER_TO_OCI = {
    _media.DOCKER_MANIFEST: _media.OCI_MANIFEST,
    _media.DOCKER_CONFIG: _media.OCI_CONFIG,
    _media.DOCKER_LAYER_GZIP: _media.OCI_LAYER_GZIP,
    _media.DOCKER_FOREIGN_GZIP: "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
}


def docker_to_oci(manifest: dict[str, Any]) -> dict[str, Any]:
    """Docker schema2 manifest -> OCI manifest with the same blobs (what skopeo does when copying to
    an OCI layout; skopeo and umoci only see OCI manifests in index.json)."""
    out = dict(manifest)
    out["mediaType"] = _media.OCI_MANIFEST
    out["config"] = {
        **manifest["config"],
        "mediaType": _DOCKER_TO_OCI.get(manifest["config"]["mediaType"], _media.OCI_CONFIG),
    }
    out["layers"] = [
        {**d, "mediaType": _DOCKER_TO_OCI.get(d["mediaType"], d["mediaType"])}
        for d in manifest.get("layers", [])
    ]
    return out


Progress = Callable[..., None]


def _is_local(host: str) -> bool:
    h = host.rsplit(":", 1)[0] if not host.startswith("[") else host.split("]")[0] + "]"
    return h in LOCAL_HOSTS


class _Retryable(Exception):
    pass


def _transport_errors() -> tuple[type[Exception], ...]:
    """What a failed connection raises: the plain-HTTP client's error, and httpx's once httpx is in use
    (it is imported only for https and proxies, see _http)."""
    httpx = sys.modules.get("httpx")
    return (_http.TransportError, httpx.TransportError) if httpx else (_http.TransportError,)


class RegistryClient:
    """Talks to one or more registries. Thread-safe; blobs move in parallel (``jobs``)."""

    def __init__(
        self,
        *,
        tls_verify: bool = True,
        authfile: str | os.PathLike | None = None,
        credentials: dict[str, Credentials] | None = None,
        retries: int = 4,
        backoff: float = 0.2,
        jobs: int = 6,
        chunk_size: int | None = None,
        timeout: float = 60.0,
        progress: Progress | None = None,
        cert_dir: str | os.PathLike | None = None,
    ) -> None:
        self.tls_verify = tls_verify
        self.cert_dir = cert_dir
        self.authfile = authfile
        self.credentials = dict(credentials or {})
        self.retries = retries
        self.backoff = backoff
        self.jobs = max(1, jobs)
        self.chunk_size = chunk_size
        self.progress = progress or (lambda *a, **k: None)
        self._timeout = timeout
        self._clients: dict[tuple[bool, TlsFiles], httpx.Client] = {}
        self._tls: dict[str, TlsFiles] = {}  # per host, read once
        self._plain: _http.Client | None = None
        self._lock = threading.Lock()
        self._schemes: dict[str, str] = {}
        self._tokens: dict[tuple[str, tuple[str, ...]], tuple[str, float]] = {}
        self._basic: dict[str, str] = {}

    def close(self) -> None:
        for c in self._clients.values():
            c.close()
        self._clients.clear()
        if self._plain is not None:
            self._plain.close()
            self._plain = None

    def _client(self, verify: bool, host: str | None = None) -> httpx.Client:
        """One pooled client per verification mode and set of TLS files (``tls_files``), made on first
        use: loading the CA bundle costs ~80 ms, which a pull from a plain-HTTP localhost registry should
        not pay."""
        tls = NO_TLS_FILES
        if host:
            tls = self._tls.get(host) or self._tls.setdefault(host, tls_files(host, self.cert_dir))
        with self._lock:
            client = self._clients.get((verify, tls))
            if client is None:
                import socket

                import httpx

                limits = httpx.Limits(max_connections=self.jobs + 4, max_keepalive_connections=self.jobs + 4)
                # TCP_NODELAY: a request's headers and a small body go out as separate writes; with
                # Nagle plus delayed ACKs each such request stalled ~40 ms (measured: push 0.75 -> 0.48 s).
                transport = httpx.HTTPTransport(
                    verify=ssl_context(verify, tls) if tls != NO_TLS_FILES else verify,
                    limits=limits,
                    socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)],
                )
                client = httpx.Client(
                    transport=transport,
                    timeout=httpx.Timeout(self._timeout, connect=15.0),
                    follow_redirects=True,
                )
                self._clients[(verify, tls)] = client
            return client

    def _for(self, url: str) -> httpx.Client | _http.Client:
        """Plain http goes through the lean socket client (unless a proxy is set: httpx honours it);
        https verifies unless told not to, except on localhost (docker treats it as an insecure
        registry), with the host's certs.d files if it has any (see ``tls_files``)."""
        if url.startswith("http://"):
            if _http.plain_http_allowed():
                with self._lock:
                    if self._plain is None:
                        self._plain = _http.Client(timeout=self._timeout, elsewhere=self._for)
                    return self._plain
            return self._client(False)
        host = url.split("://", 1)[-1].split("/", 1)[0]
        return self._client(self.tls_verify and not _is_local(host), host)

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- transport ----------------------------------------------------------------------------
    def _base(self, host: str) -> str:
        with self._lock:
            if host in self._schemes:
                return self._schemes[host]
        if _is_local(host):
            # localhost: plain HTTP first (no TLS set-up); a TLS-only server makes it fail or answer 400
            scheme = "http"
            try:
                resp = self._for(f"http://{host}/v2/").get(f"http://{host}/v2/", timeout=5.0)
                if resp.status_code == 400:
                    scheme = "https"
            except _transport_errors():
                scheme = "https"
        else:
            scheme = "https"
            try:
                self._for(f"https://{host}/v2/").get(f"https://{host}/v2/", timeout=5.0)
            except _transport_errors() as exc:
                if self.tls_verify:
                    raise RegistryError(f"cannot reach https://{host}/v2/: {exc}") from None
                scheme = "http"
        base = f"{scheme}://{host}"
        with self._lock:
            self._schemes[host] = base
        return base

    def _creds(self, ref_or_host: Reference | str) -> Credentials | None:
        host = ref_or_host if isinstance(ref_or_host, str) else ref_or_host.registry
        repo = None if isinstance(ref_or_host, str) else ref_or_host.repository
        if host in self.credentials:
            return self.credentials[host]
        from ._auth import find_credentials

        return find_credentials(host, repo, self.authfile)

    def _auth_header(self, host: str, scopes: tuple[str, ...]) -> str | None:
        with self._lock:
            if host in self._basic:
                return self._basic[host]
            tok = self._tokens.get((host, scopes))
            if tok and tok[1] > time.monotonic():
                return f"Bearer {tok[0]}"
        return None

    def _authenticate(self, host: str, scopes: tuple[str, ...], header: str, ref: Reference | None) -> None:
        from ._auth import parse_challenge

        scheme, params = parse_challenge(header)
        creds = self._creds(ref or host)
        if scheme == "basic":
            if creds is None:
                raise AuthError(
                    f"{host}: authentication required and no credentials found", 401, "UNAUTHORIZED"
                )
            with self._lock:
                self._basic[host] = creds.basic()
            return
        if scheme != "bearer" or "realm" not in params:
            raise AuthError(f"{host}: unsupported authentication challenge {header!r}", 401)
        query: list[tuple[str, str]] = []
        if params.get("service"):
            query.append(("service", params["service"]))
        for s in scopes or ((params["scope"],) if params.get("scope") else ()):
            query.append(("scope", s))
        headers = {}
        if creds and creds.identity_token:
            data = dict(
                query, grant_type="refresh_token", refresh_token=creds.identity_token, client_id="bock-image"
            )
            resp = self._for(params["realm"]).post(params["realm"], data=data)
        else:
            if creds:
                headers["Authorization"] = creds.basic()
            resp = self._for(params["realm"]).get(params["realm"], params=query, headers=headers)
        if resp.status_code in (401, 403):
            raise AuthError(
                f"{host}: token request denied ({resp.status_code}): {resp.text[:200]}",
                resp.status_code,
                "DENIED",
            )
        if resp.status_code != 200:
            raise AuthError(f"{host}: token endpoint answered {resp.status_code}", resp.status_code)
        body = resp.json()
        token = body.get("token") or body.get("access_token")
        if not token:
            raise AuthError(f"{host}: token endpoint returned no token")
        ttl = max(int(body.get("expires_in") or 60), 10)
        with self._lock:
            self._tokens[(host, scopes)] = (token, time.monotonic() + ttl - 5)

    def _request(
        self,
        method: str,
        ref: Reference,
        path_or_url: str,
        *,
        scopes: tuple[str, ...] | None = None,
        headers: dict[str, str] | None = None,
        content: Any = None,
        content_factory: Callable[[], Any] | None = None,
        params: dict[str, str] | None = None,
        stream: bool = False,
        ok: tuple[int, ...] = (200,),
        allow: tuple[int, ...] = (),
    ) -> httpx.Response | _http.Response:
        host = ref.api_host
        scopes = scopes or (f"repository:{ref.repository}:pull",)
        base = self._base(host)
        url = (
            path_or_url
            if "://" in path_or_url
            else urljoin(base + "/", path_or_url.lstrip("/"))
            if not path_or_url.startswith("/")
            else base + path_or_url
        )
        if params:
            url += ("&" if "?" in url else "?") + urlencode(params)
        authed = False
        attempt = 0
        while True:
            hdrs = dict(headers or {})
            auth = self._auth_header(host, scopes)
            if auth:
                hdrs["Authorization"] = auth
            body = content_factory() if content_factory else content
            try:
                client = self._for(url)
                req = client.build_request(method, url, headers=hdrs, content=body)
                resp = client.send(req, stream=stream)
            except _transport_errors() as exc:
                attempt += 1
                if attempt > self.retries:
                    raise RegistryError(f"{method} {url}: {exc}") from None
                self._sleep(attempt)
                continue
            if resp.status_code == 401 and not authed and "www-authenticate" in resp.headers:
                resp.close()
                authed = True
                self._authenticate(host, scopes, resp.headers["www-authenticate"], ref)
                continue
            if (resp.status_code >= 500 or resp.status_code == 429) and attempt < self.retries:
                resp.close()
                attempt += 1
                self._sleep(attempt, resp.headers.get("retry-after"))
                continue
            if resp.status_code in ok or resp.status_code in allow:
                return resp
            if stream:
                resp.read()
            raise _error(method, url, resp)

    def _sleep(self, attempt: int, retry_after: str | None = None) -> None:
        delay = self.backoff * (2 ** (attempt - 1)) * (0.75 + random.random() / 2)
        if retry_after and retry_after.isdigit():
            delay = max(delay, min(int(retry_after), 30))
        time.sleep(delay)

    # -- manifests ----------------------------------------------------------------------------
    def get_manifest(self, ref: Reference, reference: str | None = None) -> tuple[bytes, str, str]:
        """(raw bytes, media type, digest) of a manifest or index; digest verified when asked by digest."""
        obj = reference or ref.object
        resp = self._request(
            "GET",
            ref,
            f"/v2/{ref.repository}/manifests/{obj}",
            headers={"Accept": _media.MANIFEST_ACCEPT},
            allow=(404,),
        )
        if resp.status_code == 404:
            raise NotFound(f"manifest unknown: {ref.name}:{obj}")
        data = resp.content
        if len(data) > 16 << 20:
            raise RegistryError(f"manifest {ref} is too large ({len(data)} bytes)")
        try:
            parsed = json.loads(data)
        except ValueError:
            raise RegistryError(f"manifest {ref} is not JSON") from None
        media = parsed.get("mediaType") or resp.headers.get("content-type", "").split(";")[0]
        if not media and "manifests" in parsed:
            media = _media.OCI_INDEX
        if not media and "layers" in parsed:
            media = _media.OCI_MANIFEST
        _media.check_manifest_type(media)
        alg = check_digest(obj)[0] if obj.startswith("sha") and ":" in obj else "sha256"
        digest = f"{alg}:{hashlib.new(alg, data).hexdigest()}"
        if ":" in obj and obj != digest:
            raise DigestMismatch(f"manifest digest mismatch: asked for {obj}, got {digest}")
        header = resp.headers.get("docker-content-digest")
        if header and header.startswith(f"{alg}:") and header != digest:
            raise DigestMismatch(f"Docker-Content-Digest {header} does not match the manifest ({digest})")
        return data, media, digest

    def resolve(
        self, ref: str | Reference, platform: Platform | None = None
    ) -> tuple[Reference, bytes, Descriptor, bytes | None]:
        """(ref, manifest bytes, manifest descriptor, index bytes or None) for a platform."""
        ref = parse_reference(ref) if isinstance(ref, str) else ref
        data, media, digest = self.get_manifest(ref)
        index_data = None
        if media in _media.INDEXES:
            index_data = data
            chosen = select_platform(json.loads(data), platform or Platform.host())
            data, media, digest = self.get_manifest(ref, chosen.digest)
            if media not in _media.MANIFESTS:
                raise UnsupportedMediaType(f"nested index {digest} is not supported")
        return ref, data, Descriptor(media, digest, len(data)), index_data

    def inspect(self, ref: str | Reference, platform: Platform | None = None) -> dict[str, Any]:
        """Remote inspect without pulling the layers (like ``skopeo inspect``)."""
        ref, data, desc, _ = self.resolve(ref, platform)
        manifest = json.loads(data)
        cfg_desc = descriptor(manifest["config"])
        resp = self._request("GET", ref, f"/v2/{ref.repository}/blobs/{cfg_desc.digest}")
        cfg_bytes = resp.content
        if (
            f"sha256:{hashlib.sha256(cfg_bytes).hexdigest()}" != cfg_desc.digest
            and cfg_desc.digest.startswith("sha256:")
        ):
            raise DigestMismatch(f"config blob {cfg_desc.digest} does not match its digest")
        return summarize(str(ref), desc, manifest, json.loads(cfg_bytes))

    def tags(self, ref: str | Reference, page_size: int | None = None) -> list[str]:
        """All tags, following ``Link: <...>; rel="next"`` pagination."""
        ref = parse_reference(ref) if isinstance(ref, str) else ref
        url = f"/v2/{ref.repository}/tags/list"
        params = {"n": str(page_size)} if page_size else None
        out: list[str] = []
        for _ in range(10000):
            resp = self._request("GET", ref, url, params=params, allow=(404,))
            if resp.status_code == 404:
                raise NotFound(f"repository not found: {ref.name}")
            out.extend(resp.json().get("tags") or [])
            nxt = _next_link(resp.headers.get("link", ""))
            if not nxt:
                break
            url, params = nxt, None
        return out

    # -- pull ---------------------------------------------------------------------------------
    def pull(
        self,
        store: Store,
        ref: str,
        *,
        platform: Platform | None = None,
        name: str | None = None,
        unpack: bool = False,
    ) -> Descriptor:
        """Pull ``ref`` into ``store`` and name it ``name`` (default: ref as given). With ``unpack``,
        layers are also unpacked into their snapshots while they download (see _stream_unpack)."""
        parsed, data, desc, _ = self.resolve(ref, platform)
        manifest = json.loads(data)
        if desc.mediaType not in _media.MANIFESTS:
            raise UnsupportedMediaType(f"unsupported manifest media type {desc.mediaType!r}")
        layers = [descriptor(d) for d in manifest.get("layers", [])]
        for layer in layers:
            _media.layer_compression(layer.mediaType)
        blobs = [descriptor(manifest["config"]), *layers]
        annotations = {SOURCE_ANNOTATION: parsed.name, SOURCE_DIGEST_ANNOTATION: desc.digest}
        with store.using():
            streams: dict[str, Any] = {}
            if unpack:  # the config first: its diff_ids let the streamed snapshots verify themselves
                self._download(store, parsed, blobs[0])
                streams = self._streams(store, layers, _diff_ids(store.read_json(blobs[0]), layers))
            try:
                self._parallel(
                    [lambda b=b: self._download(store, parsed, b, streams.get(b.digest)) for b in blobs]
                )
            finally:
                for s in streams.values():  # a failed pull: stop the extractors
                    if not s.done.is_set():
                        s.abandon()
                        s.complete(verified=False)
            if unpack:
                self._finish_unpack(store, layers, _diff_ids(store.read_json(blobs[0]), layers), streams)
            if desc.mediaType == _media.DOCKER_MANIFEST:
                converted = store.put_json(docker_to_oci(manifest), _media.OCI_MANIFEST, sync=False)
                desc = Descriptor(_media.OCI_MANIFEST, converted.digest, converted.size)
            else:
                store.put_blob(data, desc.digest, desc.size, sync=False)
            store.add_image(name or ref, desc, extra_annotations=annotations)
        self.progress("done", ref=str(parsed), digest=desc.digest)
        return desc

    def _streams(self, store: Store, layers: list[Descriptor], diff_ids: list[str | None]) -> dict[str, Any]:
        """One StreamingSnapshot per layer that has no snapshot, blob or partial download yet."""
        from ._snapshots import _snapshot_dir
        from ._stream_unpack import StreamingSnapshot

        streams: dict[str, StreamingSnapshot] = {}
        lower: list[Any] = []
        for layer, diff_id in zip(layers, diff_ids, strict=True):
            path = _snapshot_dir(store, layer.digest)
            if path.is_dir():
                lower.insert(0, path)
                continue
            if (
                layer.digest in streams
                or store.has_blob(layer.digest)
                or store.ingest_path(layer.digest).exists()
            ):
                return {}  # keep it simple: stream only fresh, distinct layers stacked on streamed ones
            s = StreamingSnapshot(store, layer, diff_id, list(lower))
            streams[layer.digest] = s
            lower.insert(0, s)
        return streams

    def _finish_unpack(
        self, store: Store, layers: list[Descriptor], diff_ids: list[str | None], streams: dict
    ) -> None:
        """Report what the streamed unpacking refused; unpack the layers that were not streamed."""
        for i, layer in enumerate(layers):
            s = streams.get(layer.digest)
            if s is not None and isinstance(s.error, ImageError):
                raise s.error
            store.snapshot(layer, parents=layers[:i], diff_id=diff_ids[i])

    def _parallel(self, tasks: list[Callable[[], Any]]) -> list[Any]:
        """Run every task on up to ``jobs`` threads; the results in order, or the first task's error.
        (Plain threads: concurrent.futures brings logging, ~5 ms of a push's start-up.)"""
        if len(tasks) <= 1:
            return [t() for t in tasks]
        results: list[Any] = [None] * len(tasks)
        errors: dict[int, BaseException] = {}
        todo = iter(range(len(tasks)))
        lock = threading.Lock()

        def work() -> None:
            while True:
                with lock:
                    i = next(todo, None)
                if i is None:
                    return
                try:
                    results[i] = tasks[i]()
                except BaseException as exc:
                    errors[i] = exc

        threads = [threading.Thread(target=work) for _ in range(min(self.jobs, len(tasks)))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            raise errors[min(errors)]
        return results

    def _download(self, store: Store, ref: Reference, desc: Descriptor, stream: Any = None) -> None:
        if store.has_blob(desc.digest, desc.size):
            self.progress("exists", digest=desc.digest, size=desc.size)
            if stream is not None:
                stream.abandon()
                stream.complete(verified=False)
            return
        partial = store.ingest_path(desc.digest)
        verified = False
        try:
            with flocked(f"{partial}.lock"):
                if store.has_blob(desc.digest, desc.size):
                    return
                for attempt in range(1, self.retries + 2):
                    try:
                        self._fetch_into(ref, desc, partial, stream)
                        break
                    except _Retryable as exc:
                        if attempt > self.retries:
                            raise RegistryError(f"download of {desc.digest} failed: {exc}") from None
                        self._sleep(attempt)
                store.commit_file(partial, desc.digest, sync=False)
                verified = True
        finally:
            if stream is not None:
                if not verified:
                    stream.abandon()
                stream.complete(verified)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(f"{partial}.lock")

    def _fetch_into(self, ref: Reference, desc: Descriptor, partial, stream: Any = None) -> None:
        hasher = new_hasher(desc.digest)
        have = 0
        try:
            with open(partial, "rb") as f:
                for chunk in iter(lambda: f.read(CHUNK), b""):
                    hasher.update(chunk)
                    have += len(chunk)
        except FileNotFoundError:
            pass
        if have > desc.size:
            os.unlink(partial)
            hasher, have = new_hasher(desc.digest), 0
        headers = {"Range": f"bytes={have}-"} if 0 < have < desc.size else {}
        if stream is not None and have and stream.fed != have:
            stream.abandon()  # bytes on disk the extractor has not seen
        if have and have == desc.size:
            resp = None
        else:
            resp = self._request(
                "GET",
                ref,
                f"/v2/{ref.repository}/blobs/{desc.digest}",
                headers=headers,
                stream=True,
                ok=(200, 206),
                allow=(404,),
            )
        if resp is not None:
            try:
                if resp.status_code == 404:
                    raise NotFound(f"blob unknown to registry: {desc.digest}")
                if resp.status_code == 200 and have:  # server ignored Range: start over
                    hasher, have = new_hasher(desc.digest), 0
                    if stream is not None:
                        stream.abandon()
                    mode = "wb"
                else:
                    mode = "ab" if have else "wb"
                self.progress("start", digest=desc.digest, size=desc.size, offset=have)
                with open(partial, mode, buffering=0) as out:
                    fd = out.fileno()
                    flushed = have
                    try:
                        for chunk in resp.iter_raw():
                            hasher.update(chunk)
                            out.write(chunk)
                            have += len(chunk)
                            if have > desc.size:
                                break
                            if stream is not None:
                                stream.feed(chunk)
                            if have - flushed >= WRITEBACK:  # let the disk work while we download
                                start_writeback(fd, flushed, have - flushed)
                                flushed = have
                            self.progress("bytes", digest=desc.digest, size=desc.size, done=have)
                    except _transport_errors() as exc:
                        raise _Retryable(str(exc)) from None
                    os.fsync(fd)
            finally:
                resp.close()
        if have < desc.size:
            raise _Retryable(f"short read ({have} of {desc.size} bytes)")
        got = f"{desc.digest.split(':')[0]}:{hasher.hexdigest()}"
        if have != desc.size or got != desc.digest:
            os.unlink(partial)
            raise DigestMismatch(
                f"digest mismatch for blob {desc.digest}: got {have} bytes hashing to {got}"
                f" (expected {desc.size} bytes)"
            )

    # -- push ---------------------------------------------------------------------------------
    def push(
        self, store: Store, src: str, dest: str | None = None, *, mount_from: list[str] | None = None
    ) -> Descriptor:
        """Push the local image ``src`` to ``dest`` (default: src parsed as a reference)."""
        ref = parse_reference(dest or src)
        local = store.resolve(src)
        source = (local.annotations or {}).get(SOURCE_ANNOTATION)
        candidates = list(mount_from or [])
        if source:
            with contextlib.suppress(ImageError):
                s = parse_reference(source)
                if s.registry == ref.registry and s.repository != ref.repository:
                    candidates.append(s.repository)
        desc = local.with_annotations(None)
        self._base(ref.api_host)  # probe the scheme once, before the parallel uploads would each do it
        self._push_tree(store, ref, desc, candidates)
        tag = ref.tag if ref.tag else desc.digest
        data = store.read_blob(desc.digest, desc.size)
        self._put_manifest(ref, tag, data, desc.mediaType)
        self.progress("done", ref=str(ref), digest=desc.digest)
        return desc

    def _push_tree(self, store: Store, ref: Reference, desc: Descriptor, mount_from: list[str]) -> None:
        obj = store.read_json(desc)
        if desc.mediaType in _media.INDEXES:
            for m in obj.get("manifests", []):
                child = descriptor(m)
                if not store.has_blob(child.digest):
                    continue  # a platform not pulled
                self._push_tree(store, ref, child, mount_from)
                self._put_manifest(
                    ref, child.digest, store.read_blob(child.digest, child.size), child.mediaType
                )
            return
        blobs = [descriptor(obj["config"]), *(descriptor(d) for d in obj.get("layers", []))]
        self._parallel([lambda b=b: self._upload(store, ref, b, mount_from) for b in blobs])

    def _put_manifest(self, ref: Reference, tag: str, data: bytes, media_type: str) -> None:
        scopes = (f"repository:{ref.repository}:pull,push",)
        self._request(
            "PUT",
            ref,
            f"/v2/{ref.repository}/manifests/{tag}",
            scopes=scopes,
            headers={"Content-Type": media_type},
            content=data,
            ok=(201, 200),
        )

    def _upload(self, store: Store, ref: Reference, desc: Descriptor, mount_from: list[str]) -> None:
        path = store.blob_path(desc.digest)
        self._send_blob(
            ref,
            desc,
            mount_from,
            lambda report: _FileRange(path, 0, desc.size, report),
            path if self.chunk_size and desc.size > self.chunk_size else None,
        )

    def _send_blob(
        self,
        ref: Reference,
        desc: Descriptor,
        mount_from: list[str],
        body: Callable[[Callable[[int], None]], Any],
        chunk_from: Any = None,
    ) -> None:
        """HEAD, then a cross-repo mount from each of ``mount_from`` (202: upload in that session), else
        POST; then one PUT of ``body(report)`` (made anew for each retry), or PATCHes of the file
        ``chunk_from``."""
        push_scope = f"repository:{ref.repository}:pull,push"
        scopes = (push_scope,)
        head = self._request(
            "HEAD", ref, f"/v2/{ref.repository}/blobs/{desc.digest}", scopes=scopes, allow=(404,)
        )
        if head.status_code == 200:
            self.progress("exists", digest=desc.digest, size=desc.size)
            return
        location = None
        for repo in mount_from:
            mscopes = (push_scope, f"repository:{repo}:pull")
            resp = self._request(
                "POST",
                ref,
                f"/v2/{ref.repository}/blobs/uploads/",
                scopes=mscopes,
                params={"mount": desc.digest, "from": repo},
                ok=(201, 202),
            )
            if resp.status_code == 201:
                self.progress("mounted", digest=desc.digest, size=desc.size, source=repo)
                return
            location = resp.headers.get("location")  # 202: fall back to a normal upload in this session
            break
        if location is None:
            resp = self._request(
                "POST", ref, f"/v2/{ref.repository}/blobs/uploads/", scopes=scopes, ok=(202,)
            )
            location = resp.headers["location"]
        self.progress("start", digest=desc.digest, size=desc.size, offset=0)

        def report(n: int) -> None:
            self.progress("bytes", digest=desc.digest, size=desc.size, done=n)

        if chunk_from is not None:
            self._upload_chunked(ref, desc, location, chunk_from, scopes)
        else:
            self._request(
                "PUT", ref, location, scopes=scopes, params={"digest": desc.digest},
                headers={"Content-Type": "application/octet-stream", "Content-Length": str(desc.size)},
                content_factory=lambda: body(report),
                ok=(201,),
            )  # fmt: skip
        self.progress("uploaded", digest=desc.digest, size=desc.size)

    def _upload_chunked(
        self, ref: Reference, desc: Descriptor, location: str, path, scopes: tuple[str, ...]
    ) -> None:
        offset = 0
        size = desc.size
        step = self.chunk_size or size
        while offset < size:
            end = min(offset + step, size)
            resp = self._request(
                "PATCH", ref, location, scopes=scopes,
                headers={
                    "Content-Type": "application/octet-stream",
                    "Content-Range": f"{offset}-{end - 1}",
                    "Content-Length": str(end - offset),
                },
                content_factory=lambda o=offset, e=end: _FileRange(path, o, e, None),
                ok=(202,),
            )  # fmt: skip
            location = resp.headers.get("location", location)
            rng = resp.headers.get("range")
            offset = int(rng.split("-")[1]) + 1 if rng and "-" in rng else end
            self.progress("bytes", digest=desc.digest, size=size, done=offset)
        self._request(
            "PUT",
            ref,
            location,
            scopes=scopes,
            params={"digest": desc.digest},
            headers={"Content-Length": "0"},
            content=b"",
            ok=(201,),
        )

    # -- copy ---------------------------------------------------------------------------------
    def copy(
        self, src: str, dest: str, *, platform: Platform | None = None, all_platforms: bool = False
    ) -> Descriptor:
        """Copy an image from one registry (or repository) to another, blob by blob, without storing
        it locally, as ``skopeo copy docker://SRC docker://DEST`` does. An index is narrowed to the
        platform's manifest (default: this host's) unless ``all_platforms``; manifests keep their
        bytes, so the digest stays the same. Within one registry, blobs are mounted across
        repositories instead of sent."""
        sref, dref = parse_reference(src), parse_reference(dest)
        if all_platforms:
            data, media, digest = self.get_manifest(sref)
        else:
            _, data, chosen, _ = self.resolve(sref, platform)
            media, digest = chosen.mediaType, chosen.digest
        if dref.digest and dref.digest != digest:
            raise DigestMismatch(f"{dest}: the source manifest is {digest}, not {dref.digest}")
        self._base(dref.api_host)  # probe the scheme once, before the parallel uploads would each do it
        self._copy_tree(sref, dref, data, media)
        self._put_manifest(dref, dref.tag or digest, data, media)
        self.progress("done", ref=str(dref), digest=digest)
        return Descriptor(media, digest, len(data))

    def _copy_tree(self, sref: Reference, dref: Reference, data: bytes, media: str) -> None:
        obj = json.loads(data)
        if media in _media.INDEXES:
            for m in obj.get("manifests", []):
                child_data, child_media, child_digest = self.get_manifest(sref, descriptor(m).digest)
                if child_media in _media.INDEXES:
                    raise UnsupportedMediaType(f"nested index {child_digest} is not supported")
                self._copy_tree(sref, dref, child_data, child_media)
                self._put_manifest(dref, child_digest, child_data, child_media)
            return
        blobs = [descriptor(obj["config"]), *(descriptor(d) for d in obj.get("layers", []))]
        mount = (
            [sref.repository] if sref.api_host == dref.api_host and sref.repository != dref.repository else []
        )
        self._parallel(
            [
                lambda b=b: self._send_blob(dref, b, mount, lambda report, b=b: _Relay(self, sref, b, report))
                for b in blobs
            ]
        )

    # -- login ----------------------------------------------------------------------------------
    def check_login(self, registry: str, creds: Credentials) -> None:
        """Verify credentials against ``/v2/`` (Basic or a token request)."""
        ref = Reference(registry, "library/x")
        self.credentials[registry] = creds
        base = self._base(ref.api_host)
        resp = self._for(base).get(f"{base}/v2/")
        if resp.status_code == 401 and "www-authenticate" in resp.headers:
            from ._auth import parse_challenge

            scheme, _ = parse_challenge(resp.headers["www-authenticate"])
            if scheme == "basic":
                resp = self._for(base).get(f"{base}/v2/", headers={"Authorization": creds.basic()})
                if resp.status_code != 200:
                    raise AuthError(
                        f"login to {registry} failed: {resp.status_code} unauthorized",
                        resp.status_code,
                        "UNAUTHORIZED",
                    )
            else:
                self._authenticate(ref.api_host, (), resp.headers["www-authenticate"], None)
        elif resp.status_code >= 400:
            raise RegistryError(f"{registry}: /v2/ answered {resp.status_code}", resp.status_code)


class _FileRange:
    """Bytes ``start``..``end`` of a blob file as a request body: iterable in CHUNK pieces (httpx), or
    sent by the plain-HTTP client with sendfile(2) through ``send_to``, which spares a 90 MiB push
    ~60 ms of CPU. ``report(done)`` follows the progress either way."""

    def __init__(self, path, start: int, end: int, report: Callable[[int], None] | None) -> None:
        self.path, self.start, self.end, self.report = path, start, end, report

    def __iter__(self) -> Iterator[bytes]:
        with open(self.path, "rb") as f:
            f.seek(self.start)
            done = self.start
            while done < self.end:
                chunk = f.read(min(CHUNK, self.end - done))
                if not chunk:
                    raise ImageError(f"{self.path} shrank while uploading")
                done += len(chunk)
                yield chunk
                if self.report:
                    self.report(done)

    def send_to(self, sock) -> None:
        with open(self.path, "rb") as f:
            done = self.start
            while done < self.end:
                sent = sock.sendfile(f, done, min(CHUNK, self.end - done))
                if not sent:
                    raise ImageError(f"{self.path} shrank while uploading")
                done += sent
                if self.report:
                    self.report(done)


class _Relay:
    """A blob read from one registry (GET) as the body of its upload to another (PUT), in CHUNK pieces,
    hashed on the way: a source that sends other bytes than its digest names fails the upload with
    DigestMismatch before the last piece goes out (the destination registry would refuse it too)."""

    def __init__(self, client: RegistryClient, src: Reference, desc: Descriptor, report) -> None:
        self.client, self.src, self.desc, self.report = client, src, desc, report

    def __iter__(self) -> Iterator[bytes]:
        desc = self.desc
        resp = self.client._request(
            "GET", self.src, f"/v2/{self.src.repository}/blobs/{desc.digest}", stream=True
        )
        hasher = new_hasher(desc.digest)
        done = 0
        try:
            pending = b""
            for chunk in resp.iter_raw(CHUNK):
                done += len(chunk)
                if done > desc.size:
                    break
                hasher.update(chunk)
                if pending:
                    yield pending
                    self.report(done - len(chunk))
                pending = chunk
            got = f"{desc.digest.partition(':')[0]}:{hasher.hexdigest()}"
            if done != desc.size or got != desc.digest:
                raise DigestMismatch(
                    f"digest mismatch for blob {desc.digest} from {self.src.name}: got {done} bytes hashing to {got}"
                    f" (expected {desc.size} bytes)"
                )
            if pending:  # the last piece goes out only once the whole blob is known to be right
                yield pending
            self.report(done)
        finally:
            resp.close()


def _diff_ids(config: dict[str, Any], layers: list[Descriptor]) -> list[str | None]:
    diff_ids = (config.get("rootfs") or {}).get("diff_ids") or []
    return list(diff_ids) if len(diff_ids) == len(layers) else [None] * len(layers)


def _next_link(header: str) -> str | None:
    for part in header.split(","):
        if 'rel="next"' in part or "rel=next" in part:
            start, end = part.find("<"), part.find(">")
            if start != -1 and end > start:
                return part[start + 1 : end]
    return None


def _error(method: str, url: str, resp: httpx.Response | _http.Response) -> RegistryError:
    code = None
    message = resp.text[:300].strip()
    with contextlib.suppress(ValueError, AttributeError, IndexError, KeyError, TypeError):
        err = resp.json()["errors"][0]
        code = err.get("code")
        message = f"{code}: {err.get('message', '')}".strip()
    cls = AuthError if resp.status_code in (401, 403) else RegistryError
    if resp.status_code == 404:
        return NotFound(f"{method} {url}: {message or 'not found'}")
    return cls(f"{method} {url}: {resp.status_code} {message}", resp.status_code, code)

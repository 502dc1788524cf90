"""Per-registry TLS files, as containers-certs.d(5) and docker's certs.d lay them out.

A directory per registry (``host[:port]``) holds CA certificates to trust for it (``*.crt``) and client
certificate pairs for mutual TLS (``NAME.cert`` with ``NAME.key``). The first of these that exists is
used, in the order of containers/image: ``$HOME/.config/containers/certs.d/HOST``,
``/etc/containers/certs.d/HOST``, ``/etc/docker/certs.d/HOST``. ``cert_dir`` (``--cert-dir``, as
skopeo's) names one directory used for every registry instead.
"""

from __future__ import annotations

import os
from typing import Any

from .errors import RegistryError

# (CA files, ((client certificate, key), ...)): hashable, so that clients can be pooled by it
TlsFiles = tuple[tuple[str, ...], tuple[tuple[str, str], ...]]
NO_TLS_FILES: TlsFiles = ((), ())
SYSTEM_DIRS = ("/etc/containers/certs.d", "/etc/docker/certs.d")


def cert_dirs(host: str) -> list[str]:
    home = os.environ.get("HOME")
    roots = [os.path.join(home, ".config", "containers", "certs.d")] if home else []
    return [os.path.join(root, host) for root in (*roots, *SYSTEM_DIRS)]


def tls_files(host: str, cert_dir: str | os.PathLike | None = None) -> TlsFiles:
    """The CA files and client pairs for ``host`` (``NO_TLS_FILES`` when it has no directory)."""
    found = [os.fspath(cert_dir)] if cert_dir else [d for d in cert_dirs(host) if os.path.isdir(d)][:1]
    if not found:
        return NO_TLS_FILES
    directory = found[0]
    try:
        names = sorted(os.listdir(directory))
    except OSError as exc:
        raise RegistryError(f"cannot read certificates directory {directory}: {exc.strerror}") from None
    cas = tuple(os.path.join(directory, n) for n in names if n.endswith(".crt"))
    pairs = []
    for name in names:
        if name.endswith(".cert"):
            key = name[: -len(".cert")] + ".key"
            if key not in names:
                raise RegistryError(
                    f"missing key {key} for client certificate {os.path.join(directory, name)}"
                )
            pairs.append((os.path.join(directory, name), os.path.join(directory, key)))
        elif name.endswith(".key") and name[: -len(".key")] + ".cert" not in names:
            raise RegistryError(f"missing client certificate for key {os.path.join(directory, name)}")
    return cas, tuple(pairs)


def ssl_context(verify: bool, files: TlsFiles) -> Any:
    """An SSLContext that trusts the system bundle (certifi, as httpx does) plus ``files``' CAs, or
    nothing is checked (``verify`` false); either way it presents the client pairs."""
    import ssl

    cas, pairs = files
    try:
        if verify:
            import certifi

            ctx = ssl.create_default_context(cafile=certifi.where())
            for ca in cas:
                ctx.load_verify_locations(cafile=ca)
        else:
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        for cert, key in pairs:
            ctx.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        raise RegistryError(
            f"cannot load TLS files {[*cas, *(p for pair in pairs for p in pair)]}: {exc}"
        ) from None
    return ctx

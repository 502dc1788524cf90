"""Outbound NAT, published ports (DNAT, also from the host's loopback) and isolation of internal
networks: one nftables table per project, replaced atomically by `nft -f -` on every change."""

from __future__ import annotations

import shutil
from collections.abc import Iterable

import attrs

from . import _proc
from .errors import NetworkError


@attrs.frozen
class NetRule:
    bridge: str
    subnet: str
    internal: bool


@attrs.frozen
class PortRule:
    host_ip: str
    published: int
    protocol: str
    address: str
    target: int
    bridge: str


def table_name(project_key: str) -> str:
    return f"bockrose_{project_key}"


def render(table: str, nets: Iterable[NetRule], ports: Iterable[PortRule]) -> str:
    pre, post, fwd = [], [], []
    for n in nets:
        if n.internal:
            fwd.append(f'iifname "{n.bridge}" oifname != "{n.bridge}" drop')
            fwd.append(f'oifname "{n.bridge}" iifname != "{n.bridge}" drop')
        else:
            post.append(f'ip saddr {n.subnet} oifname != "{n.bridge}" masquerade')
        post.append(f'ip saddr 127.0.0.0/8 oifname "{n.bridge}" masquerade')
    for p in ports:
        match = (
            f"ip daddr {p.host_ip} "
            if p.host_ip and p.host_ip not in ("0.0.0.0", "::")
            else "fib daddr type local "
        )
        pre.append(f"{match}{p.protocol} dport {p.published} dnat to {p.address}:{p.target}")
    body = "\n    ".join
    return (
        f"add table ip {table}\ndelete table ip {table}\n"
        f"table ip {table} {{\n"
        f"  chain prerouting {{\n    type nat hook prerouting priority dstnat; policy accept;\n    {body(pre)}\n  }}\n"
        f"  chain output {{\n    type nat hook output priority -100; policy accept;\n    {body(pre)}\n  }}\n"
        f"  chain postrouting {{\n    type nat hook postrouting priority srcnat; policy accept;\n"
        f"    {body(post)}\n  }}\n"
        f"  chain forward {{\n    type filter hook forward priority 0; policy accept;\n    {body(fwd)}\n  }}\n"
        "}\n"
    )


def _nft(script: str) -> None:
    nft = shutil.which("nft") or "/usr/sbin/nft"
    import os

    r, w = os.pipe()
    os.write(w, script.encode())
    os.close(w)
    try:
        rc, _out, err = _proc.run([nft, "-f", "-"], stdin=r)
    finally:
        os.close(r)
    if rc != 0:
        raise NetworkError(f"nft failed: {err.decode(errors='replace').strip()}\n{script}")


def apply(project_key: str, nets: Iterable[NetRule], ports: Iterable[PortRule]) -> None:
    _nft(render(table_name(project_key), list(nets), list(ports)))


def remove(project_key: str) -> None:
    t = table_name(project_key)
    _nft(f"add table ip {t}\ndelete table ip {t}\n")

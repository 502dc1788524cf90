"""The project's embedded DNS responder: one UDP socket on each network's gateway address, port 53.
It answers service names, aliases, `<service>-<n>` and container names with the addresses on the
network the query arrived on (every replica), and forwards everything else to the host's resolvers."""

from __future__ import annotations

import os
import select
import socket
import struct
import threading

FORWARD_TIMEOUT = 2.0


def host_resolvers(path: str = "/etc/resolv.conf") -> list[str]:
    out = []
    try:
        with open(path) as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 2 and parts[0] == "nameserver" and not parts[1].startswith("127."):
                    out.append(parts[1])
    except OSError:
        pass
    return out or ["8.8.8.8"]


def _qname(data: bytes, off: int) -> tuple[str, int]:
    labels = []
    while True:
        n = data[off]
        if n == 0:
            return ".".join(labels), off + 1
        if n & 0xC0:
            raise ValueError("compression in question")
        labels.append(data[off + 1 : off + 1 + n].decode("ascii", "replace"))
        off += 1 + n


class DnsServer:
    """names: per network key, {lowercase name: [ipv4, ...]}; update with set_names()."""

    def __init__(self) -> None:
        self._names: dict[str, dict[str, list[str]]] = {}
        self._socks: dict[str, socket.socket] = {}
        self._lock = threading.Lock()
        self._wake_r, self._wake_w = os.pipe()
        self._upstream = host_resolvers()
        self._thread = threading.Thread(target=self._serve, name="dns", daemon=True)
        self._thread.start()

    def set_names(self, names: dict[str, dict[str, list[str]]]) -> None:
        with self._lock:
            self._names = {k: {n.lower(): list(v) for n, v in m.items()} for k, m in names.items()}

    def listen(self, net: str, address: str) -> None:
        with self._lock:
            if net in self._socks:
                return
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((address, 53))
            self._socks[net] = s
        os.write(self._wake_w, b"x")

    def close(self, net: str | None = None) -> None:
        with self._lock:
            for k in [net] if net else list(self._socks):
                s = self._socks.pop(k, None)
                if s:
                    s.close()
        os.write(self._wake_w, b"x")

    def _serve(self) -> None:
        while True:
            with self._lock:
                socks = dict(self._socks)
            try:
                ready, _, _ = select.select([self._wake_r, *socks.values()], [], [])
            except (OSError, ValueError):
                continue
            for s in ready:
                if s == self._wake_r:
                    os.read(self._wake_r, 4096)
                    continue
                net = next((k for k, v in socks.items() if v is s), None)
                try:
                    data, peer = s.recvfrom(4096)
                except OSError:
                    continue
                try:
                    self._answer(s, net, data, peer)
                except (ValueError, IndexError, OSError):
                    continue

    def _answer(self, sock: socket.socket, net: str | None, data: bytes, peer) -> None:
        if len(data) < 12:
            return
        qid, flags, qd = struct.unpack(">HHH", data[:6])
        if qd != 1:
            return
        name, off = _qname(data, 12)
        qtype, _qclass = struct.unpack(">HH", data[off : off + 4])
        question = data[12 : off + 4]
        lookup = name.lower().rstrip(".")
        with self._lock:
            table = self._names.get(net or "", {})
            addrs = table.get(lookup)
            if addrs is None and "." in lookup:
                addrs = table.get(lookup.split(".", 1)[0]) if lookup.endswith(".local") else None
        if addrs is None:
            threading.Thread(target=self._forward, args=(sock, data, peer), daemon=True).start()
            return
        answers = b""
        count = 0
        if qtype in (1, 255):
            for a in addrs:
                answers += b"\xc0\x0c" + struct.pack(">HHIH", 1, 1, 0, 4) + socket.inet_aton(a)
                count += 1
        rd = flags & 0x0100
        header = struct.pack(">HHHHHH", qid, 0x8000 | 0x0400 | rd | 0x0080, 1, count, 0, 0)
        sock.sendto(header + question + answers, peer)

    def _forward(self, sock: socket.socket, data: bytes, peer) -> None:
        for upstream in self._upstream:
            u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                u.settimeout(FORWARD_TIMEOUT)
                u.sendto(data, (upstream, 53))
                reply, _ = u.recvfrom(65535)
                sock.sendto(reply, peer)
                return
            except OSError:
                continue
            finally:
                u.close()
        qid = data[:2]
        sock.sendto(qid + struct.pack(">H", 0x8182) + data[4:6] + b"\0\0\0\0\0\0" + data[12:], peer)

"""Bridges, network namespaces and veth pairs through netlink (pyroute2), and IPAM.

A compose network is a Linux bridge `bkr<hash>` holding the gateway address; a container gets a
named netns (/run/netns/bockrose-<hash>) made before the runtime's `create`, with lo up, eth0
(the peer of a veth whose host end is enslaved to the bridge), an address and a default route."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import ipaddress
import os
from collections.abc import Iterator

from .errors import NetworkError

POOL = ipaddress.ip_network("10.213.0.0/16")
LOCK = "/run"  # flock on the directory itself: nothing is created


def _h(*parts: str, n: int = 10) -> str:
    return hashlib.sha256("/".join(parts).encode()).hexdigest()[:n]


def bridge_name(project: str, net: str) -> str:
    return "bkr" + _h(project, net)


def netns_name(container: str, nonce: str) -> str:
    return "bockrose-" + _h(container, nonce, n=12)


def veth_name(container: str, net: str, nonce: str) -> str:
    return "vbr" + _h(container, net, nonce)


def bridge_mac(name: str) -> str:
    """A locally administered unicast MAC derived from the bridge name (docker uses 02:42:...)."""
    h = hashlib.sha256(name.encode()).digest()
    return "02:42:" + ":".join(f"{b:02x}" for b in h[:4])


def _ipr():
    from pyroute2 import IPRoute

    return IPRoute()


@contextlib.contextmanager
def ipam_lock() -> Iterator[None]:
    fd = os.open(LOCK, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _used_networks(ip) -> list[ipaddress.IPv4Network]:
    used = []
    for r in ip.get_routes(family=2):
        dst = r.get_attr("RTA_DST")
        if dst:
            used.append(ipaddress.ip_network(f"{dst}/{r['dst_len']}", strict=False))
    for a in ip.get_addr(family=2):
        used.append(ipaddress.ip_network(f"{a.get_attr('IFA_ADDRESS')}/{a['prefixlen']}", strict=False))
    return used


def ensure_bridge(name: str, subnet: str | None, gateway: str | None) -> tuple[str, str]:
    """Create the bridge (if missing) with the gateway address; returns (subnet, gateway).
    subnet None: the first free /24 of 10.213.0.0/16 not overlapping any host route or address."""
    with ipam_lock(), _ipr() as ip:
        found = ip.link_lookup(ifname=name)
        if found:
            addrs = ip.get_addr(index=found[0], family=2)
            if addrs:
                a = addrs[0]
                gw = a.get_attr("IFA_ADDRESS")
                net = ipaddress.ip_network(f"{gw}/{a['prefixlen']}", strict=False)
                return str(net), gw
        if subnet is None:
            used = _used_networks(ip)
            for cand in POOL.subnets(new_prefix=24):
                if not any(cand.overlaps(u) for u in used):
                    subnet = str(cand)
                    break
            else:
                raise NetworkError("no free subnet left in 10.213.0.0/16")
        net = ipaddress.ip_network(subnet, strict=False)
        gw = gateway or str(next(net.hosts()))
        try:
            if not found:
                ip.link("add", ifname=name, kind="bridge")
            idx = ip.link_lookup(ifname=name)[0]
            # a fixed MAC: otherwise the bridge takes its lowest port's, and removing that port (a
            # replica scaled away) changes the gateway's MAC under the other containers' ARP caches
            ip.link("set", index=idx, address=bridge_mac(name))
            ip.addr("add", index=idx, address=gw, prefixlen=net.prefixlen)
            ip.link("set", index=idx, state="up")
        except Exception as exc:  # pyroute2 raises NetlinkError (an OSError subclass) and others
            raise NetworkError(f"cannot create bridge {name} for {subnet}: {exc}") from None
    with contextlib.suppress(OSError), open(f"/proc/sys/net/ipv4/conf/{name}/route_localnet", "w") as f:
        f.write("1")
    return str(net), gw


def delete_link(name: str) -> None:
    """Delete a link by name (no dump of every link); gone already is fine."""
    with _ipr() as ip, contextlib.suppress(Exception):
        ip.link("del", ifname=name)


NETNS_DIR = "/run/netns"
_CLONE_NEWNET = 0x40000000
_MS_BIND = 4096
_MNT_DETACH = 2


def _libc():
    import ctypes

    return ctypes.CDLL(None, use_errno=True)


def _in_thread(fn, *args):
    """Run fn in a fresh OS thread (namespace changes there never leak into other threads)."""
    import threading

    result: list = []
    error: list = []

    def run() -> None:
        try:
            result.append(fn(*args))
        except BaseException as exc:  # re-raised in the caller
            error.append(exc)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join()
    if error:
        raise error[0]
    return result[0] if result else None


def create_netns(name: str) -> str:
    """A named network namespace: a thread unshares its netns and bind-mounts it to /run/netns/NAME."""
    import ctypes

    os.makedirs(NETNS_DIR, exist_ok=True)
    path = os.path.join(NETNS_DIR, name)
    fd = os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0)
    os.close(fd)

    def make() -> None:
        libc = _libc()
        if libc.unshare(_CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise NetworkError(f"unshare(CLONE_NEWNET): {os.strerror(err)}")
        src = f"/proc/self/task/{threading_native_id()}/ns/net".encode()
        if libc.mount(src, path.encode(), None, _MS_BIND, None) != 0:
            err = ctypes.get_errno()
            raise NetworkError(f"bind mount of the netns on {path}: {os.strerror(err)}")
        with _ipr() as ip:
            ip.link("set", index=ip.link_lookup(ifname="lo")[0], state="up")

    try:
        _in_thread(make)
    except BaseException:
        remove_netns(name)
        raise
    return path


def threading_native_id() -> int:
    import threading

    return threading.get_native_id()


def remove_netns(name: str) -> None:
    path = os.path.join(NETNS_DIR, name)
    if not os.path.lexists(path):
        return
    _libc().umount2(path.encode(), _MNT_DETACH)
    with contextlib.suppress(OSError):
        os.unlink(path)


def _enter(path: str) -> None:
    from ._nsenter import setns

    setns(path)


def attach(
    ns_name: str, bridge: str, host_if: str, ifname: str, address: str, prefixlen: int, gateway: str | None
) -> None:
    """veth host_if <-> ifname (in ns), host end on the bridge; address and default route inside."""
    path = os.path.join(NETNS_DIR, ns_name)
    try:
        with _ipr() as ip:
            ip.link("add", ifname=host_if, kind="veth", peer={"ifname": ifname, "net_ns_fd": path})
            br = ip.link_lookup(ifname=bridge)[0]
            v = ip.link_lookup(ifname=host_if)[0]
            ip.link("set", index=v, master=br, state="up")

        def inside() -> None:
            _enter(path)
            with _ipr() as ns:
                e = ns.link_lookup(ifname=ifname)[0]
                ns.addr("add", index=e, address=address, prefixlen=prefixlen)
                ns.link("set", index=e, state="up")
                if gateway:
                    ns.route("add", dst="0.0.0.0/0", gateway=gateway)

        _in_thread(inside)
    except NetworkError:
        raise
    except Exception as exc:
        raise NetworkError(f"cannot attach {ns_name} to {bridge}: {exc}") from None


def links_named(prefix: str) -> list[str]:
    with _ipr() as ip:
        return [
            link.get_attr("IFLA_IFNAME")
            for link in ip.get_links()
            if (link.get_attr("IFLA_IFNAME") or "").startswith(prefix)
        ]

"""A small systemd D-Bus client for the cgroup driver (on :mod:`bock._cgroups.dbus_wire`).

As root it talks to systemd's private socket (``/run/systemd/private``: peer to peer, no
dbus-daemon needed, the socket systemctl uses); otherwise, or when that fails, the system bus
(``$DBUS_SYSTEM_BUS_ADDRESS``, a ``unix:path=`` address). Only what the driver needs:
StartTransientUnit / StopUnit / ResetFailedUnit / SetUnitProperties, the manager's Version,
and waiting for a job's ``JobRemoved`` signal (30 s, as runc).

Imported only with ``--systemd-cgroup``.
"""

from __future__ import annotations

import os
import time

from bock._cgroups import dbus_wire as wire
from bock._cgroups.errors import CgroupError

PRIVATE_SOCKET = "/run/systemd/private"
SYSTEM_BUS = "unix:path=/run/dbus/system_bus_socket"
DEST = "org.freedesktop.systemd1"
PATH = "/org/freedesktop/systemd1"
MANAGER = "org.freedesktop.systemd1.Manager"
JOB_TIMEOUT = 30.0  # runc's wait for a unit's job
_GONE = ("org.freedesktop.systemd1.NoSuchUnit", "org.freedesktop.systemd1.LoadFailed")


class SystemdError(CgroupError):
    """systemd refused a request, or could not be reached."""

    def __init__(self, message: str, name: str = "") -> None:
        super().__init__(message)
        #: the D-Bus error name, e.g. ``org.freedesktop.systemd1.NoSuchUnit``
        self.name = name


def _authenticated_socket(path: str, timeout: float = 2.0):
    """Connect to a D-Bus unix socket and authenticate (SASL EXTERNAL, our euid).

    The handshake is pipelined as sd-bus clients (systemctl) send it: ``AUTH`` and ``BEGIN``
    in one write, then the server's ``OK`` line is read. (jeepney waits for ``OK`` before
    sending ``BEGIN``: systemd 252's private socket then often never answers the first call,
    seen on Debian 12.) Returns the socket and any bytes read past the ``OK`` line.
    """
    import _socket

    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        sock.connect(path)
        uid = str(os.geteuid()).encode().hex().encode()
        sock.sendall(b"\0AUTH EXTERNAL " + uid + b"\r\nBEGIN\r\n")
        buf = b""
        while b"\r\n" not in buf:
            chunk = sock.recv(256)
            if not chunk:
                raise ConnectionResetError(f"{path} closed the connection during authentication")
            buf += chunk
        line, _, extra = buf.partition(b"\r\n")
        if not line.startswith(b"OK "):
            raise PermissionError(f"{path} refused authentication: {line.decode(errors='replace')}")
        sock.settimeout(None)
        return sock, extra
    except BaseException:
        sock.close()
        raise


def _unix_path(address: str) -> str:
    """The socket of the first ``unix:path=`` entry of a D-Bus address list."""
    for entry in address.split(";"):
        kind, _, params = entry.partition(":")
        if kind != "unix":
            continue
        for param in params.split(","):
            key, _, value = param.partition("=")
            if key == "path":
                return value
    raise SystemdError(f"unsupported D-Bus address {address!r} (only unix:path= is)")


class SystemdBus:
    """One connection to systemd's manager object."""

    def __init__(self, sock, *, peer_to_peer: bool, pending: bytes = b"") -> None:
        self._sock = sock
        self._p2p = peer_to_peer
        self._buf = bytearray(pending)
        self._serial = 0
        self._signals: list[wire.Message] = []
        self._subscribed = False

    # --- connecting ----------------------------------------------------------------

    @classmethod
    def connect(cls, private_socket: str = PRIVATE_SOCKET, system_bus: str | None = None) -> SystemdBus:
        """go-systemd's order, reversed for root: the private socket first, then the system bus."""
        errors = []
        if os.geteuid() == 0 and os.path.exists(private_socket):
            try:
                sock, extra = _authenticated_socket(private_socket)
            except OSError as e:
                errors.append(f"{private_socket}: {e}")
            else:
                return cls(sock, peer_to_peer=True, pending=extra)
        address = system_bus or os.environ.get("DBUS_SYSTEM_BUS_ADDRESS") or SYSTEM_BUS
        path = _unix_path(address)
        try:
            sock, extra = _authenticated_socket(path)
        except OSError as e:
            errors.append(f"{path}: {e}")
            raise SystemdError("cannot connect to systemd over D-Bus: " + "; ".join(errors)) from None
        bus = cls(sock, peer_to_peer=False, pending=extra)
        try:
            bus._call(
                "Hello",
                dest="org.freedesktop.DBus",
                path="/org/freedesktop/DBus",
                iface="org.freedesktop.DBus",
            )
        except BaseException:
            bus.close()
            raise
        return bus

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> SystemdBus:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- messages ------------------------------------------------------------------

    def _call(
        self, method: str, signature: str = "", body: tuple = (), *, dest=DEST, path=PATH, iface=MANAGER
    ):
        """Call ``method`` and return the reply's body; signals that come first are kept."""
        self._serial += 1
        serial = self._serial
        try:
            data = wire.method_call(serial, dest, path, iface, method, signature, body)
        except wire.WireError as e:
            raise SystemdError(f"cannot encode {method}: {e}") from None
        try:
            self._sock.sendall(data)
        except OSError as e:
            raise SystemdError(f"lost the connection to systemd: {e}") from None
        deadline = time.monotonic() + JOB_TIMEOUT
        while True:
            msg = self._receive(deadline, f"{method} reply")
            if msg.reply_serial != serial:
                if msg.kind == wire.SIGNAL:
                    self._signals.append(msg)
                continue
            if msg.kind == wire.ERROR:
                text = msg.body[0] if msg.body and isinstance(msg.body[0], str) else msg.error_name
                raise SystemdError(text, msg.error_name)
            return msg.body

    def _receive(self, deadline: float, what: str) -> wire.Message:
        while True:
            try:
                msg, used = wire.parse(self._buf)
            except wire.WireError as e:
                raise SystemdError(f"bad message from systemd: {e}") from None
            if msg is not None:
                del self._buf[:used]
                return msg
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise SystemdError(f"timed out waiting for systemd ({what})")
            try:
                self._sock.settimeout(remaining)
                chunk = self._sock.recv(65536)
            except TimeoutError:
                raise SystemdError(f"timed out waiting for systemd ({what})") from None
            except OSError as e:
                raise SystemdError(f"lost the connection to systemd: {e}") from None
            if not chunk:
                raise SystemdError("lost the connection to systemd: closed by the peer")
            self._buf += chunk

    def _subscribe(self) -> None:
        """Ask for the manager's signals (JobRemoved); a bus daemon also needs a match rule."""
        if self._subscribed:
            return
        if not self._p2p:
            rule = f"type='signal',interface='{MANAGER}',member='JobRemoved',path='{PATH}'"
            self._call(
                "AddMatch",
                "s",
                (rule,),
                dest="org.freedesktop.DBus",
                path="/org/freedesktop/DBus",
                iface="org.freedesktop.DBus",
            )
        self._call("Subscribe")
        self._subscribed = True

    def _wait_job(self, job: str, unit: str, what: str) -> str:
        """The result of ``job`` ("done", "failed", "canceled", ...) from its JobRemoved signal."""
        deadline = time.monotonic() + JOB_TIMEOUT
        while True:
            for sig in self._signals:
                if sig.member == "JobRemoved" and len(sig.body) == 4 and sig.body[1] == job:
                    self._signals.clear()
                    return sig.body[3]
            self._signals.clear()
            try:
                msg = self._receive(deadline, what)
            except SystemdError as e:
                if "timed out" not in str(e):
                    raise
                raise SystemdError(f"Timeout waiting for systemd to {what} {unit}") from None
            if msg.kind == wire.SIGNAL:
                self._signals.append(msg)

    # --- the manager's methods -----------------------------------------------------

    def version(self) -> int:
        """The manager's major version (``252`` for "252.38-1~deb12u1"); 0 if unknown."""
        body = self._call("Get", "ss", (MANAGER, "Version"), iface="org.freedesktop.DBus.Properties")
        text = str(body[0][1]) if body else ""
        digits = ""
        for ch in text.lstrip("v"):
            if not ch.isdigit():
                break
            digits += ch
        return int(digits) if digits else 0

    def start_transient_unit(self, unit: str, properties: list) -> None:
        """Start ``unit`` and wait until its job is done (runc's ``startUnit``, one retry)."""
        self._subscribe()
        for attempt in (0, 1):
            try:
                (job,) = self._call(
                    "StartTransientUnit", "ssa(sv)a(sa(sv))", (unit, "replace", properties, [])
                )
            except SystemdError as e:
                if e.name == "org.freedesktop.systemd1.UnitExists" and attempt == 0:
                    # a failed leftover with the same name: reset it so systemd drops it, then retry
                    self.reset_failed_unit(unit)
                    continue
                raise
            result = self._wait_job(job, unit, "create")
            if result != "done":
                self.reset_failed_unit(unit)
                raise SystemdError(f"error creating systemd unit `{unit}`: got `{result}`")
            return

    def stop_unit(self, unit: str) -> None:
        """Stop ``unit`` and wait; a unit that is gone already is fine (runc's ``stopUnit``)."""
        self._subscribe()
        try:
            (job,) = self._call("StopUnit", "ss", (unit, "replace"))
        except SystemdError as e:
            if e.name in _GONE:
                return
            raise
        result = self._wait_job(job, unit, "remove")
        if result != "done":
            raise SystemdError(f"error removing systemd unit `{unit}`: got `{result}`")
        self.reset_failed_unit(unit)

    def reset_failed_unit(self, unit: str) -> None:
        try:
            self._call("ResetFailedUnit", "s", (unit,))
        except SystemdError as e:
            if e.name not in _GONE:
                raise

    def set_unit_properties(self, unit: str, properties: list, runtime: bool = True) -> None:
        if properties:
            self._call("SetUnitProperties", "sba(sv)", (unit, runtime, properties))

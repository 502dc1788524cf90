"""A small systemd D-Bus client for the cgroup driver, on jeepney (pure Python D-Bus).

As root it talks to systemd's private socket (``/run/systemd/private``: peer to peer, no
dbus-daemon needed, the socket systemctl uses); otherwise, or when that fails, the system bus.
Only what the driver needs: StartTransientUnit / StopUnit / ResetFailedUnit /
SetUnitProperties, the manager's Version, and waiting for a job's ``JobRemoved`` signal.

Imported only with ``--systemd-cgroup``: jeepney is not on bock's default path.
"""

from __future__ import annotations

import os
import time

from bock._cgroups.errors import CgroupError

PRIVATE_SOCKET = "/run/systemd/private"
SYSTEM_BUS = "unix:path=/run/dbus/system_bus_socket"
DEST = "org.freedesktop.systemd1"
PATH = "/org/freedesktop/systemd1"
MANAGER = "org.freedesktop.systemd1.Manager"
JOB_TIMEOUT = 30.0  # runc's wait for a unit's job


class SystemdError(CgroupError):
    """systemd refused a request, or could not be reached."""

    def __init__(self, message: str, name: str = "") -> None:
        super().__init__(message)
        #: the D-Bus error name, e.g. ``org.freedesktop.systemd1.NoSuchUnit``
        self.name = name


def _p2p_socket(path: str, timeout: float = 2.0):
    """Connect and authenticate (SASL EXTERNAL) to a peer-to-peer D-Bus socket.

    The handshake is pipelined as sd-bus clients (systemctl) send it: ``AUTH`` and ``BEGIN``
    in one write, then the server's ``OK`` is read. jeepney's handshake waits for ``OK``
    before sending ``BEGIN``; systemd 252's private socket then often never answers the first
    call (seen on Debian 12: a reply with systemctl's order, none with jeepney's).
    Returns the socket and any bytes read past the ``OK`` line.
    """
    import socket

    from jeepney.auth import make_auth_external

    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        sock.connect(path)
        sock.sendall(b"\0" + make_auth_external() + b"BEGIN\r\n")
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


class SystemdBus:
    """One connection to systemd's manager object."""

    def __init__(self, conn, *, peer_to_peer: bool) -> None:
        self._conn = conn
        self._p2p = peer_to_peer
        self._signals: list = []
        self._subscribed = False

    # --- connecting ----------------------------------------------------------------

    @classmethod
    def connect(cls, private_socket: str = PRIVATE_SOCKET, system_bus: str | None = None) -> SystemdBus:
        """go-systemd's order, reversed for root: the private socket first, then the system bus."""
        try:
            from jeepney.io import blocking
        except ImportError:
            raise CgroupError(
                "the systemd cgroup driver needs the jeepney package (pip install jeepney; Debian: python3-jeepney)"
            ) from None
        errors = []
        if os.geteuid() == 0 and os.path.exists(private_socket):
            try:
                sock, extra = _p2p_socket(private_socket)
            except OSError as e:
                errors.append(f"{private_socket}: {e}")
            else:
                conn = blocking.DBusConnectionBase(sock)
                if extra:
                    conn.parser.add_data(extra)
                return cls(conn, peer_to_peer=True)
        address = system_bus or os.environ.get("DBUS_SYSTEM_BUS_ADDRESS") or SYSTEM_BUS
        try:
            conn = blocking.open_dbus_connection(address)
        except (OSError, ValueError) as e:
            errors.append(f"{address}: {e}")
            raise SystemdError("cannot connect to systemd over D-Bus: " + "; ".join(errors)) from None
        return cls(conn, peer_to_peer=False)

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> SystemdBus:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- messages ------------------------------------------------------------------

    def _call(self, method: str, signature: str = "", body: tuple = (), *, path: str = PATH, iface=MANAGER):
        from jeepney import DBusAddress, HeaderFields, MessageType, new_method_call

        msg = new_method_call(
            DBusAddress(path, bus_name=DEST, interface=iface), method, signature or None, body
        )
        conn = self._conn
        serial = next(conn.outgoing_serial)
        data, _ = conn._serialise(msg, serial)
        conn.sock.sendall(data)
        deadline = time.monotonic() + JOB_TIMEOUT
        while True:
            reply = self._receive(deadline, f"{method} reply")
            if reply.header.fields.get(HeaderFields.reply_serial) != serial:
                if reply.header.message_type == MessageType.signal:
                    self._signals.append(reply)
                continue
            if reply.header.message_type == MessageType.error:
                name = reply.header.fields.get(HeaderFields.error_name, "")
                text = reply.body[0] if reply.body and isinstance(reply.body[0], str) else name
                raise SystemdError(text, name)
            return reply.body

    def _receive(self, deadline: float, what: str):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise SystemdError(f"timed out waiting for systemd ({what})")
        try:
            return self._conn._receive(time.monotonic() + remaining)
        except TimeoutError:
            raise SystemdError(f"timed out waiting for systemd ({what})") from None
        except OSError as e:
            raise SystemdError(f"lost the connection to systemd: {e}") from None

    def _subscribe(self) -> None:
        """Ask for the manager's signals (JobRemoved); a bus daemon also needs a match rule."""
        if self._subscribed:
            return
        if not self._p2p:
            from jeepney import MatchRule
            from jeepney.bus_messages import message_bus

            rule = MatchRule(type="signal", interface=MANAGER, member="JobRemoved", path=PATH)
            self._conn.send_and_get_reply(message_bus.AddMatch(rule), timeout=JOB_TIMEOUT)
        self._call("Subscribe")
        self._subscribed = True

    def _wait_job(self, job: str, unit: str, what: str) -> str:
        """The result of ``job`` ("done", "failed", "canceled", ...) from its JobRemoved signal."""
        from jeepney import HeaderFields

        deadline = time.monotonic() + JOB_TIMEOUT
        while True:
            for i, sig in enumerate(self._signals):
                if sig.header.fields.get(HeaderFields.member) == "JobRemoved" and sig.body[1] == job:
                    del self._signals[i]
                    return sig.body[3]
            self._signals.clear()
            try:
                msg = self._receive(deadline, what)
            except SystemdError:
                raise SystemdError(f"Timeout waiting for systemd to {what} {unit}") from None
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
            if e.name in ("org.freedesktop.systemd1.NoSuchUnit", "org.freedesktop.systemd1.LoadFailed"):
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
            if e.name not in ("org.freedesktop.systemd1.NoSuchUnit", "org.freedesktop.systemd1.LoadFailed"):
                raise

    def set_unit_properties(self, unit: str, properties: list, runtime: bool = True) -> None:
        if properties:
            self._call("SetUnitProperties", "sba(sv)", (unit, runtime, properties))

"""The systemd driver's D-Bus client against a fake systemd peer: jeepney (a well-kept D-Bus
implementation) parses what bock sends and writes the replies and signals, over a socketpair
or a unix socket with the SASL handshake."""

from __future__ import annotations

import socket
import threading

import pytest

jeepney = pytest.importorskip("jeepney")

from bock._cgroups import systemd_bus  # noqa: E402
from bock._cgroups.systemd_bus import SystemdBus, SystemdError  # noqa: E402


class FakeSystemd(threading.Thread):
    """Answers the manager's methods on one end of a socketpair, as systemd's private socket."""

    def __init__(
        self, sock: socket.socket, *, job_result="done", unit_exists=False, signal_first=False, sasl=False
    ):
        super().__init__(daemon=True)
        self.sock = sock
        self.sasl = sasl
        self.job_result = job_result
        self.unit_exists = unit_exists
        self.signal_first = signal_first
        self.methods: list[str] = []
        self.serial = 1000

    def send(self, msg) -> None:
        self.serial += 1
        self.sock.sendall(msg.serialise(serial=self.serial))

    def run(self) -> None:
        from jeepney import DBusAddress, Parser, new_error, new_method_return, new_signal

        parser = Parser()
        data = b""
        if self.sasl:  # the server side of the handshake: a NUL, AUTH ..., BEGIN
            while b"BEGIN\r\n" not in data:
                chunk = self.sock.recv(4096)
                if not chunk:
                    return
                data += chunk
            assert data.startswith(b"\0AUTH EXTERNAL "), data
            self.sock.sendall(b"OK 0123456789abcdef\r\n")
            data = data.partition(b"BEGIN\r\n")[2]
        while True:
            if not data:
                data = self.sock.recv(65536)
                if not data:
                    return
            parser.add_data(data)
            data = b""
            while (msg := parser.get_next_message()) is not None:
                method = msg.header.fields[jeepney.HeaderFields.member]
                self.methods.append(method)
                if method == "Get":
                    self.send(new_method_return(msg, "v", (("s", "252.38-1~deb12u1"),)))
                elif method in ("Subscribe", "ResetFailedUnit", "AddMatch"):
                    self.send(new_method_return(msg))
                elif method == "Hello":
                    self.send(new_method_return(msg, "s", (":1.42",)))
                elif method == "StartTransientUnit" and self.unit_exists:
                    self.unit_exists = False
                    self.send(new_error(msg, "org.freedesktop.systemd1.UnitExists", "s", ("exists",)))
                elif method in ("StartTransientUnit", "StopUnit"):
                    unit = msg.body[0]
                    if unit == "gone.scope":
                        self.send(new_error(msg, "org.freedesktop.systemd1.NoSuchUnit", "s", ("no",)))
                        continue
                    job = "/org/freedesktop/systemd1/job/7"
                    emitter = DBusAddress("/org/freedesktop/systemd1", interface=systemd_bus.MANAGER)
                    other = new_signal(emitter, "JobRemoved", "uoss", (6, job[:-1] + "6", "x", "failed"))
                    sig = new_signal(emitter, "JobRemoved", "uoss", (7, job, unit, self.job_result))
                    reply = new_method_return(msg, "o", (job,))
                    for m in (sig, other, reply) if self.signal_first else (reply, other, sig):
                        self.send(m)
                else:
                    self.send(new_error(msg, "org.freedesktop.DBus.Error.UnknownMethod", "s", (method,)))


@pytest.fixture
def peer():
    made = []

    def make(**kw):
        a, b = socket.socketpair()
        fake = FakeSystemd(b, **kw)
        fake.start()
        bus = SystemdBus(a, peer_to_peer=True)
        made.append((bus, fake))
        return bus, fake

    yield make
    for bus, fake in made:
        bus.close()  # the peer reads EOF and returns
        fake.join(5)
        fake.sock.close()


def test_client_version_and_a_started_unit(peer):
    bus, fake = peer()
    assert bus.version() == 252
    bus.start_transient_unit("u.scope", [("PIDs", ("au", [1]))])
    assert fake.methods == ["Get", "Subscribe", "StartTransientUnit"]


def test_client_sees_a_job_signal_that_came_before_the_reply(peer):
    bus, _fake = peer(signal_first=True)
    bus.start_transient_unit("u.scope", [])


def test_client_resets_a_leftover_unit_and_retries_once(peer):
    bus, fake = peer(unit_exists=True)
    bus.start_transient_unit("u.scope", [])
    assert fake.methods == ["Subscribe", "StartTransientUnit", "ResetFailedUnit", "StartTransientUnit"]


def test_client_failed_job_is_an_error_and_the_unit_is_reset(peer):
    bus, fake = peer(job_result="failed")
    with pytest.raises(SystemdError, match=r"error creating systemd unit `u\.scope`: got `failed`"):
        bus.start_transient_unit("u.scope", [])
    assert fake.methods[-1] == "ResetFailedUnit"


def test_client_stop_of_a_unit_already_gone_is_fine(peer):
    bus, fake = peer()
    bus.stop_unit("gone.scope")
    bus.stop_unit("u.scope")
    assert fake.methods == ["Subscribe", "StopUnit", "StopUnit", "ResetFailedUnit"]


def test_client_errors_carry_the_dbus_name(peer):
    bus, _fake = peer()
    with pytest.raises(SystemdError) as info:
        bus.set_unit_properties("u.scope", [("X", ("b", True))])
    assert info.value.name == "org.freedesktop.DBus.Error.UnknownMethod"


def test_client_over_a_bus_daemon_says_hello_and_adds_a_match(tmp_path):
    path = str(tmp_path / "bus")
    server = socket.socket(socket.AF_UNIX)
    server.bind(path)
    server.listen(1)
    peers = []

    def serve() -> None:
        conn, _ = server.accept()
        fake = FakeSystemd(conn, sasl=True)
        peers.append(fake)
        fake.run()
        conn.close()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    bus = SystemdBus.connect(private_socket=str(tmp_path / "none"), system_bus=f"unix:path={path}")
    try:
        bus.start_transient_unit("u.scope", [])
    finally:
        bus.close()
        t.join(5)
        server.close()
    assert peers[0].methods == ["Hello", "AddMatch", "Subscribe", "StartTransientUnit"]


def test_client_says_clearly_when_nothing_answers(tmp_path):
    with pytest.raises(SystemdError, match="cannot connect to systemd over D-Bus"):
        SystemdBus.connect(private_socket=str(tmp_path / "none"), system_bus=f"unix:path={tmp_path}/none")
    with pytest.raises(SystemdError, match="unsupported D-Bus address"):
        SystemdBus.connect(private_socket=str(tmp_path / "none"), system_bus="tcp:host=localhost,port=1")

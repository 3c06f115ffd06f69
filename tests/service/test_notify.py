"""sd_notify: the datagrams a systemd unit of ``Type=notify`` gets, on a socket of our own."""

from __future__ import annotations

import os
import socket
import time

import pytest

from bridge.service.notify import SystemdNotifier, notify_address, watchdog_interval


@pytest.fixture
def notify_socket(tmp_path):
    path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(5)
    yield path, sock
    sock.close()


def received(sock: socket.socket) -> dict[str, str]:
    data = sock.recv(4096).decode()
    return dict(line.split("=", 1) for line in data.split("\n"))


def test_datagrams_in_order(notify_socket):
    path, sock = notify_socket
    notifier = SystemdNotifier({"NOTIFY_SOCKET": path})
    assert notifier.enabled
    before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    assert notifier.ready("serving 2 actors")
    assert notifier.reloading()
    assert notifier.ready()
    assert notifier.ping()
    assert notifier.stopping()
    notifier.close()
    assert received(sock) == {"READY": "1", "STATUS": "serving 2 actors"}
    reloading = received(sock)
    assert reloading["RELOADING"] == "1" and int(reloading["MONOTONIC_USEC"]) >= before
    assert received(sock) == {"READY": "1"}
    assert received(sock) == {"WATCHDOG": "1"}
    assert received(sock) == {"STOPPING": "1"}


def test_abstract_and_missing_socket():
    assert notify_address({"NOTIFY_SOCKET": "@sd/notify"}) == b"\0sd/notify"
    assert notify_address({}) is None
    assert notify_address({"NOTIFY_SOCKET": "vsock:2:1234"}) is None
    quiet = SystemdNotifier({})
    assert not quiet.enabled and not quiet.ready() and not quiet.stopping()


def test_abstract_socket_receives():
    name = f"bridge-test-{os.getpid()}-{time.monotonic_ns()}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(b"\0" + name.encode())
    sock.settimeout(5)
    try:
        assert SystemdNotifier({"NOTIFY_SOCKET": "@" + name}).ready()
        assert received(sock) == {"READY": "1"}
    finally:
        sock.close()


def test_unreachable_socket_is_logged_not_raised(tmp_path, caplog):
    notifier = SystemdNotifier({"NOTIFY_SOCKET": str(tmp_path / "nobody.sock")})
    assert not notifier.ready()
    assert not notifier.stopping()
    assert sum("could not notify systemd" in r.message for r in caplog.records) == 1


def test_watchdog_interval():
    assert watchdog_interval({"WATCHDOG_USEC": "20000000"}) == 10.0
    assert watchdog_interval({"WATCHDOG_USEC": "20000000", "WATCHDOG_PID": "1"}, pid=2) is None
    assert watchdog_interval({"WATCHDOG_USEC": "4000000", "WATCHDOG_PID": "7"}, pid=7) == 2.0
    assert watchdog_interval({}) is None
    assert watchdog_interval({"WATCHDOG_USEC": "0"}) is None

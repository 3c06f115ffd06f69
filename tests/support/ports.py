"""Loopback port helpers for tests: pick a free port, wait until one accepts connections."""

from __future__ import annotations

import socket
import time

from bridge.service.broker import free_port  # noqa: F401  (below the ephemeral range, never twice)

LOOPBACK = "127.0.0.1"


def port_accepts(port: int, host: str = LOOPBACK, timeout: float = 0.5) -> bool:
    """True when a TCP connection to ``host:port`` succeeds."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_port(port: int, timeout: float = 30.0, host: str = LOOPBACK) -> None:
    """Wait until ``host:port`` accepts TCP connections; raise ``TimeoutError`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        if port_accepts(port, host):
            return
        if time.monotonic() >= deadline:
            raise TimeoutError(f"nothing accepted connections on {host}:{port} within {timeout} s")
        time.sleep(0.05)


def wait_port_closed(port: int, timeout: float = 30.0, host: str = LOOPBACK) -> None:
    """Wait until ``host:port`` refuses connections; raise ``TimeoutError`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        if not port_accepts(port, host):
            return
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{host}:{port} still accepts connections after {timeout} s")
        time.sleep(0.05)

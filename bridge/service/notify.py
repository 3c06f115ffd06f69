"""systemd's service notification protocol (``sd_notify``), written out: it is small.

A service started with ``Type=notify`` finds a Unix datagram socket's path in
``NOTIFY_SOCKET`` (a leading ``@`` means Linux's abstract namespace) and sends it
newline-separated ``KEY=value`` assignments: ``READY=1`` once it serves,
``RELOADING=1`` (with ``MONOTONIC_USEC``) when a reload starts and ``READY=1`` again when
it is done, ``STOPPING=1`` when it starts to stop, ``STATUS=...`` free text, and
``WATCHDOG=1`` at least every ``WATCHDOG_USEC`` microseconds when the unit sets
``WatchdogSec=`` (systemd restarts a service whose pings stop). Without ``NOTIFY_SOCKET``
every call does nothing, so the bridge behaves the same outside systemd.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import Mapping

log = logging.getLogger(__name__)


def notify_address(env: Mapping[str, str]) -> str | bytes | None:
    """The socket address in ``NOTIFY_SOCKET``, or None if unset (or not a Unix socket)."""
    path = env.get("NOTIFY_SOCKET", "")
    if path.startswith("@"):
        return b"\0" + path[1:].encode()
    if path.startswith("/"):
        return path
    return None  # unset, or a vsock address (not for a service on this host)


def watchdog_interval(env: Mapping[str, str], pid: int | None = None) -> float | None:
    """How often to ping the watchdog, in seconds (half of ``WATCHDOG_USEC``), or None.

    ``WATCHDOG_PID``, when set, must be this process (else the pings are someone else's).
    """
    usec = env.get("WATCHDOG_USEC", "")
    if not usec.isdigit() or int(usec) == 0:
        return None
    owner = env.get("WATCHDOG_PID", "")
    if owner and owner != str(os.getpid() if pid is None else pid):
        return None
    return int(usec) / 2e6


class SystemdNotifier:
    """Sends service state to systemd (see the module docstring); a no-op without it.

    ``env`` defaults to ``os.environ``. Sending never raises: a failure is logged once
    (systemd gone or a wrong path must not stop the bridge).
    """

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        env = os.environ if env is None else env
        self.address = notify_address(env)
        self.watchdog_every = watchdog_interval(env)
        self._socket: socket.socket | None = None
        self._warned = False
        self._watchdog: asyncio.TimerHandle | None = None

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def notify(self, *assignments: str) -> bool:
        """Send ``KEY=value`` assignments in one datagram; return True if it was sent."""
        if self.address is None:
            return False
        try:
            if self._socket is None:
                self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                self._socket.setblocking(False)
            self._socket.sendto("\n".join(assignments).encode(), self.address)
            return True
        except OSError as exc:
            if not self._warned:
                self._warned = True
                log.warning("could not notify systemd at %r: %s", self.address, exc)
            return False

    def ready(self, status: str | None = None) -> bool:
        """``READY=1``: the bridge serves (also the end of a reload)."""
        return self.notify("READY=1", *([f"STATUS={status}"] if status else []))

    def reloading(self) -> bool:
        """``RELOADING=1``: a reload started (``READY=1`` follows when it is done)."""
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        return self.notify("RELOADING=1", f"MONOTONIC_USEC={usec}")

    def stopping(self) -> bool:
        """``STOPPING=1``: the bridge is stopping."""
        return self.notify("STOPPING=1")

    def status(self, text: str) -> bool:
        return self.notify(f"STATUS={text}")

    def ping(self) -> bool:
        """``WATCHDOG=1``."""
        return self.notify("WATCHDOG=1")

    def start_watchdog(self) -> None:
        """Ping every :attr:`watchdog_every` seconds from the running event loop (if set).

        The pings come from the loop itself, so a blocked loop stops them and systemd
        restarts the service: what the watchdog is for.
        """
        if not self.enabled or self.watchdog_every is None or self._watchdog is not None:
            return
        loop = asyncio.get_running_loop()

        def tick() -> None:
            self.ping()
            self._watchdog = loop.call_later(self.watchdog_every or 1.0, tick)

        tick()

    def close(self) -> None:
        """Stop the watchdog pings and close the socket."""
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        if self._socket is not None:
            self._socket.close()
            self._socket = None

"""Which broker node to try next, and when: failover across the nodes of a cluster.

:class:`ReconnectPolicy` (:mod:`bridge.core.backoff`) is the backoff (exponential,
capped, with jitter); :class:`NodeRotation` walks a list of broker URLs; :class:`FailoverRobustConnection`
is aio-pika's robust connection made to use both: each (re)connection attempt goes to
the next URL of the list and waits the policy's delay after a failed attempt.
aio-pika keeps its own reconnect loop (and its restoring of channels, exchanges and
QoS on whichever node answers); this class only tells it where to go and how long to
wait, through the two values that loop reads: ``url`` and ``reconnect_interval``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from aio_pika import RobustConnection
from yarl import URL

from ..core.backoff import ReconnectPolicy
from .receiver import FrameTransportFactory

__all__ = ["FailoverRobustConnection", "NodeRotation", "ReconnectPolicy", "node_of",
           "with_query"]

log = logging.getLogger(__name__)


class NodeRotation:
    """The broker URLs, tried in turn starting from the first."""

    def __init__(self, urls: Sequence[str | URL]) -> None:
        if not urls:
            raise ValueError("no AMQP URL given")
        self.urls = [URL(str(u)) for u in urls]
        self.index = 0

    @property
    def current(self) -> URL:
        return self.urls[self.index]

    def advance(self) -> URL:
        """Move to the next URL (round robin) and return it."""
        self.index = (self.index + 1) % len(self.urls)
        return self.current


def node_of(url: URL) -> str:
    """``host:port`` of a broker URL (how logs and status name a node)."""
    return f"{url.host}:{url.port or (5671 if url.scheme == 'amqps' else 5672)}"


def with_query(url: URL, extra: dict[str, Any]) -> URL:
    """``url`` with ``extra`` query options added where it has none of its own."""
    query = {k: str(v) for k, v in extra.items() if v is not None and k not in url.query}
    return url.update_query(query) if query else url


class FailoverRobustConnection(RobustConnection):
    """aio-pika's robust connection that moves to the next node on each attempt.

    aio-pika's reconnect loop sets ``transport = None`` at the start of every
    connection attempt and sleeps ``reconnect_interval`` after every attempt (also
    after a successful one, before it waits for the next loss). Both are intercepted:
    an attempt that follows another (failed or lost) one goes to the next URL, and
    the sleep is the policy's delay after a failure, none after a success.
    ``on_switch(old, new)`` is called when an attempt starts on another node.
    Its aiormq connections read frames with :mod:`bridge.amqp.receiver` (every
    complete frame of a socket read decoded at once); ``frame_reader=False`` keeps
    aiormq's own reader.
    """

    def __init__(self, url: URL, *, rotation: NodeRotation, policy: ReconnectPolicy,
                 on_switch: Callable[[URL, URL], Any] | None = None,
                 frame_reader: bool = True, **kwargs: Any) -> None:
        self._rotation = rotation
        self._policy = policy
        self._on_switch = on_switch
        self._attempts = 0
        self._failures = 0
        self._delay = 0.0
        self.extra_query: dict[str, Any] = {}
        super().__init__(url, **kwargs)
        if frame_reader:  # passed on to aiormq.Connection (aio-pika filters its kwargs)
            self.kwargs["transport_factory"] = FrameTransportFactory()

    # aio-pika reads these two attributes; they are properties here (see class doc).

    @property
    def reconnect_interval(self) -> float:  # type: ignore[override]
        return self._delay

    @reconnect_interval.setter
    def reconnect_interval(self, _value: float) -> None:
        pass  # the policy decides (aio-pika sets its configured value in __init__)

    @property
    def transport(self) -> Any:  # type: ignore[override]
        return self.__dict__.get("_failover_transport")

    @transport.setter
    def transport(self, value: Any) -> None:
        self.__dict__["_failover_transport"] = value
        factory = self.kwargs.get("transport_factory") if value is not None else None
        if isinstance(factory, FrameTransportFactory):  # the connection it just opened
            factory.bind(getattr(value, "connection", None))
        state = self.__dict__  # Connection.__init__ sets transport before these exist
        if value is None and not state.get("_close_called", True) \
                and not state.get("_close_in_progress", False):
            self._attempt_starts()

    def _attempt_starts(self) -> None:
        if self._attempts:
            old = self.url
            self.url = with_query(self._rotation.advance(), self.extra_query)
            if self._on_switch is not None and node_of(old) != node_of(self.url):
                self._on_switch(old, self.url)
        self._attempts += 1
        # Decided now, read by aio-pika's loop if this attempt fails.
        self._failures += 1
        self._delay = self._policy.delay(self._failures)

    async def _on_connected(self) -> None:
        await super()._on_connected()  # raises if restoring channels failed
        self._failures = 0
        self._delay = 0.0

    @property
    def node(self) -> str:
        """``host:port`` of the node this connection uses (or tries) now."""
        return node_of(self.url)

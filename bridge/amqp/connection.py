"""One robust AMQP connection, the clu exchange, and channels for endpoints/commanders.

:class:`AmqpConnection` wraps ``aio_pika.connect_robust``: when the broker goes away
aio-pika reconnects every ``reconnect_interval`` seconds and re-declares, on every
channel opened through it, the exchange, the queues, their bindings and consumers (the
channels' QoS too). Code that must react to the outage registers listeners with
:meth:`AmqpConnection.on_disconnect` / :meth:`AmqpConnection.on_reconnect`.

Each endpoint and commander gets its own :class:`AmqpChannel` (publisher confirms on,
``on_return_raises=True`` and ``prefetch_count=1`` as clu), on which the exchange is
declared exactly as clu declares it (topic, ``auto_delete=True``, ``durable=False``).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import aio_pika
import aiormq
from yarl import URL
from aio_pika.abc import (
    AbstractIncomingMessage,
    AbstractRobustChannel,
    AbstractRobustConnection,
    AbstractRobustExchange,
    AbstractRobustQueue,
)

from bridge.protocol.clu_messages import (
    EXCHANGE_AUTO_DELETE,
    EXCHANGE_DURABLE,
    EXCHANGE_NAME,
    EXCHANGE_TYPE,
)

log = logging.getLogger(__name__)

DEFAULT_RECONNECT_INTERVAL = 1.0
DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_PUBLISH_TIMEOUT = 10.0
# Below the broker's 60 s default so that, after a silent network loss, the broker drops
# our old connection (and its exclusive queues) sooner; until it does, re-declaring them
# on reconnect fails with RESOURCE_LOCKED and aio-pika keeps retrying
# (github.com/mosquito/aio-pika/issues/679).
DEFAULT_HEARTBEAT = 20
PREFETCH_COUNT = 1  # as clu: basic.qos(prefetch_count=1)

DisconnectListener = Callable[[BaseException | None], Any]
ReconnectListener = Callable[[], Any]


class AmqpError(RuntimeError):
    """Base class of this package's AMQP errors."""


class AmqpUnavailable(AmqpError):
    """The broker cannot be reached (not connected, or a publish could not complete)."""


class Unroutable(AmqpError):
    """A mandatory message was returned by the broker: no queue is bound for its key."""


class QueueInUse(AmqpError):
    """An exclusive queue with this name is owned by another connection."""


def _call_listener(listener: Callable[..., Any], *args: Any) -> None:
    """Call a sync or async listener; log (never raise) its errors."""
    try:
        result = listener(*args)
        if inspect.isawaitable(result):
            task = asyncio.ensure_future(result)
            task.add_done_callback(_log_task_error)
    except Exception:
        log.exception("AMQP connection listener %r failed", listener)


def _log_task_error(task: asyncio.Future[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("AMQP listener task failed", exc_info=task.exception())


class AmqpChannel:
    """A robust channel with the clu exchange declared on it."""

    def __init__(
        self,
        owner: AmqpConnection,
        channel: AbstractRobustChannel,
        exchange: AbstractRobustExchange,
    ) -> None:
        self.owner = owner
        self.channel = channel
        self.exchange = exchange

    async def publish(
        self,
        message: aio_pika.Message,
        routing_key: str,
        *,
        mandatory: bool = False,
        timeout: float | None = DEFAULT_PUBLISH_TIMEOUT,
        retry: bool = True,
        reconnect_wait: float | None = None,
    ) -> None:
        """Publish to the clu exchange and wait for the broker's confirm (``timeout`` s).

        While the connection is down this first waits for aio-pika to reconnect and
        restore every channel of this connection (queues, bindings, consumers): at most
        ``reconnect_wait`` seconds from the call (default: ``timeout``). With ``retry`` a
        publish that fails because the connection dropped is tried again after the
        reconnect, within the same ``reconnect_wait`` (a lost confirm can then produce a
        duplicate); without it the first such failure raises.

        Raises :class:`Unroutable` (``mandatory`` and nothing bound for the key) or
        :class:`AmqpUnavailable`.
        """
        loop = asyncio.get_running_loop()
        wait = timeout if reconnect_wait is None else reconnect_wait
        wait_until = None if wait is None else loop.time() + wait
        while True:
            if not self.owner.connected:
                # After a reconnect, wait until *every* channel is restored (aio-pika
                # restores them in no fixed order): a reply held during the outage
                # must not go out before this process's own replies queue is back.
                self.owner.held_publishes += 1
                try:
                    await self.owner.wait_connected(
                        None if wait_until is None else max(wait_until - loop.time(), 0.0))
                finally:
                    self.owner.held_publishes -= 1
            try:
                async with asyncio.timeout(timeout):
                    await self.channel.ready()
                    await self._publish_once(message, routing_key, mandatory)
                return
            except aio_pika.exceptions.PublishError as exc:
                raise Unroutable(f"no queue bound for routing key {routing_key!r}") from exc
            except TimeoutError:
                raise AmqpUnavailable(
                    f"could not publish to {routing_key!r}: the AMQP broker did not confirm "
                    f"within {timeout} s"
                ) from None
            except aio_pika.exceptions.CONNECTION_EXCEPTIONS as exc:
                if self.owner.stopping:
                    raise AmqpUnavailable("the AMQP connection is closed") from exc
                if not retry or (wait_until is not None and loop.time() >= wait_until):
                    raise AmqpUnavailable(f"publishing to {routing_key!r} failed: {exc!r}") from exc
                log.debug("publish to %r failed (%r); retrying after reconnect", routing_key, exc)
                await asyncio.sleep(0.05)

    async def _publish_once(self, message: aio_pika.Message, routing_key: str,
                            mandatory: bool) -> None:
        """``Exchange.publish`` without waiting for aiormq's writer to send the frames.

        aio-pika's publish holds the channel lock until the writer task has written the
        message: a loop turn or two per message, during which every other publish on
        the channel waits (a busy bridge then queued hundreds of replies behind that lock
        for seconds). With ``wait=False`` the lock covers only queueing the frames, in
        order, on the connection's (bounded) write queue; the broker's confirm is awaited
        as before.
        """
        channel = await self.channel.get_underlay_channel()
        await channel.basic_publish(
            message.body, exchange=self.exchange.name, routing_key=routing_key,
            properties=message.properties, mandatory=mandatory, wait=False)

    async def declare_exclusive_queue(
        self,
        name: str,
        bindings: Sequence[str],
        callback: Callable[[AbstractIncomingMessage], Awaitable[Any]],
        *,
        no_ack: bool = False,
    ) -> tuple[AbstractRobustQueue, str]:
        """Declare an exclusive queue as clu does, bind it, consume it (with ``no_ack``
        the broker delivers without waiting for acknowledgements: prefetch does not
        apply, and nothing is ever redelivered, which an exclusive queue never does anyway).

        Ownership is checked first on a throw-away plain channel, so that a name already
        owned by another connection raises :class:`QueueInUse` without the broker
        closing this (shared, robust) channel. Returns the queue and the consumer tag.
        """
        await self.owner.check_exclusive_queue(name)
        queue = await self.channel.declare_queue(name, exclusive=True)
        for binding in bindings:
            await queue.bind(self.exchange, routing_key=binding)
        tag = await queue.consume(callback, no_ack=no_ack)
        return queue, tag

    async def bind(self, queue: AbstractRobustQueue, routing_key: str) -> None:
        """Bind ``queue`` to the clu exchange (restored by aio-pika after a reconnect)."""
        await queue.bind(self.exchange, routing_key=routing_key)

    async def close(self) -> None:
        """Close the channel (errors while closing are logged, not raised)."""
        try:
            if not self.channel.is_closed:
                await self.channel.close()
        except Exception as exc:  # connection already gone, etc.
            log.debug("closing channel: %r", exc)


class AmqpConnection:
    """A robust connection to RabbitMQ that knows the clu exchange.

    ``await start()`` connects (raising :class:`AmqpUnavailable` if the broker cannot
    be reached) and declares the exchange (the URL may carry aio-pika/aiormq query
    options; ``heartbeat`` is added unless the URL has one); ``await stop()`` closes everything.
    ``connected`` tells whether the link is up right now; listeners registered with
    :meth:`on_disconnect` run when an established link is lost, those registered with
    :meth:`on_reconnect` after aio-pika has reconnected and restored every channel's
    exchange, queues, bindings and consumers.
    """

    def __init__(
        self,
        url: str,
        *,
        exchange_name: str = EXCHANGE_NAME,
        reconnect_interval: float = DEFAULT_RECONNECT_INTERVAL,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        heartbeat: int | None = DEFAULT_HEARTBEAT,
        connection_name: str | None = None,
    ) -> None:
        self.url = url
        self.heartbeat = heartbeat
        self.exchange_name = exchange_name
        self.reconnect_interval = reconnect_interval
        self.connect_timeout = connect_timeout
        self.connection_name = connection_name
        self.stopping = False
        # Up and topology restored; listeners fire on its transitions only.
        self._link_up = asyncio.Event()
        self._connection: AbstractRobustConnection | None = None
        self._channels: list[AmqpChannel] = []
        self._main: AmqpChannel | None = None
        self._owned_queues: set[str] = set()
        self._disconnect_listeners: list[DisconnectListener] = []
        self._reconnect_listeners: list[ReconnectListener] = []
        #: Publishes (replies, commands) waiting for a lost broker to come back.
        self.held_publishes = 0

    # -- state -----------------------------------------------------------------------

    @property
    def started(self) -> bool:
        """True between a successful :meth:`start` and :meth:`stop`."""
        return self._connection is not None and not self.stopping

    @property
    def connected(self) -> bool:
        """True if the link is up and its topology is in place (False while reconnecting)."""
        conn = self._connection
        return (
            conn is not None
            and not self.stopping
            and self._link_up.is_set()
            and conn.connected.is_set()
        )

    @property
    def robust_connection(self) -> AbstractRobustConnection:
        """The underlying aio-pika robust connection (after :meth:`start`)."""
        if self._connection is None:
            raise AmqpError("AmqpConnection.start() has not been called")
        return self._connection

    async def wait_connected(self, timeout: float | None = None) -> None:
        """Wait until :attr:`connected`; raise :class:`AmqpUnavailable` after ``timeout`` s."""
        self.robust_connection  # raises if not started
        try:
            async with asyncio.timeout(timeout):
                while not self.connected:
                    if self.stopping:
                        raise AmqpUnavailable("the AMQP connection is closed")
                    try:  # woken by the reconnect; polled so that a stop() is noticed
                        await asyncio.wait_for(self._link_up.wait(), 0.25)
                    except TimeoutError:
                        pass
                    if not self.connected:
                        await asyncio.sleep(0.05)
        except TimeoutError:
            raise AmqpUnavailable(f"not connected to {self._safe_url()} after {timeout} s") from None

    def on_disconnect(self, listener: DisconnectListener) -> None:
        """Call ``listener(exc)`` once each time an established link is lost (not on
        stop, not again for each failed reconnection attempt)."""
        self._disconnect_listeners.append(listener)

    def on_reconnect(self, listener: ReconnectListener) -> None:
        """Call ``listener()`` after each reconnect, once topology has been restored."""
        self._reconnect_listeners.append(listener)

    def remove_listener(self, listener: Callable[..., Any]) -> None:
        """Forget ``listener`` (disconnect or reconnect); no error if unknown."""
        for listeners in (self._disconnect_listeners, self._reconnect_listeners):
            while listener in listeners:
                listeners.remove(listener)

    # -- life cycle ------------------------------------------------------------------

    async def start(self) -> AmqpConnection:
        """Connect and declare the exchange; return self."""
        if self._connection is not None:
            raise AmqpError("AmqpConnection already started")
        self.stopping = False
        kwargs: dict[str, Any] = {}
        if self.heartbeat is not None and "heartbeat" not in URL(self.url).query:
            kwargs["heartbeat"] = self.heartbeat
        if self.connection_name:
            kwargs["client_properties"] = {"connection_name": self.connection_name}
        try:
            self._connection = await aio_pika.connect_robust(
                self.url,
                reconnect_interval=self.reconnect_interval,
                timeout=self.connect_timeout,
                **kwargs,
            )
        except (asyncio.TimeoutError, *aio_pika.exceptions.CONNECTION_EXCEPTIONS) as exc:
            raise AmqpUnavailable(
                f"cannot connect to the AMQP broker at {self._safe_url()}: {exc!r}"
            ) from exc
        self._connection.close_callbacks.add(self._on_close)
        self._connection.reconnect_callbacks.add(self._on_reconnected)
        try:
            self._main = await self.open_channel()
        except BaseException:
            await self.stop()
            raise
        self._link_up.set()
        log.info("connected to %s (exchange %r)", self._safe_url(), self.exchange_name)
        return self

    async def stop(self) -> None:
        """Close all channels and the connection (no reconnect afterwards)."""
        if self._connection is None:
            return
        self.stopping = True
        for channel in reversed(self._channels):
            await channel.close()
        self._channels.clear()
        self._owned_queues.clear()
        self._link_up.clear()
        self._main = None
        try:
            await self._connection.close()
        except Exception as exc:
            log.debug("closing connection: %r", exc)
        self._connection = None

    async def __aenter__(self) -> AmqpConnection:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # -- channels --------------------------------------------------------------------

    async def open_channel(self) -> AmqpChannel:
        """A new robust channel (confirms, returns raise, prefetch 1) with the exchange."""
        conn = self.robust_connection
        channel = conn.channel(publisher_confirms=True, on_return_raises=True)
        await channel.initialize(timeout=self.connect_timeout)
        await channel.set_qos(prefetch_count=PREFETCH_COUNT)
        exchange = await channel.declare_exchange(
            self.exchange_name,
            type=EXCHANGE_TYPE,
            auto_delete=EXCHANGE_AUTO_DELETE,
            durable=EXCHANGE_DURABLE,
        )
        wrapped = AmqpChannel(self, channel, exchange)
        self._channels.append(wrapped)
        return wrapped

    async def release_channel(self, channel: AmqpChannel) -> None:
        """Close a channel obtained from :meth:`open_channel`."""
        if channel in self._channels:
            self._channels.remove(channel)
        await channel.close()

    async def check_exclusive_queue(self, name: str) -> None:
        """Raise :class:`QueueInUse` if another connection owns exclusive queue ``name``.

        Declares it (exclusive, as clu) on a plain, non-robust channel that is thrown
        away: if the broker refuses, only that channel is closed. If it succeeds the
        queue now belongs to this connection and is reserved until
        :meth:`release_queue_name` (a second endpoint/commander on this same connection
        would otherwise share it silently: the broker only checks the owner connection).
        """
        if name in self._owned_queues:
            raise QueueInUse(f"queue {name!r} is already used by this connection")
        probe = aio_pika.Channel(self.robust_connection, publisher_confirms=False)
        await probe.initialize(timeout=self.connect_timeout)
        try:
            await probe.declare_queue(name, exclusive=True)
        except aiormq.exceptions.ChannelLockedResource as exc:
            raise QueueInUse(
                f"cannot create queue {name!r}: it is owned by another connection "
                "(another instance with the same name is running)"
            ) from exc
        finally:
            if not probe.is_closed:
                await probe.close()
        self._owned_queues.add(name)

    def release_queue_name(self, name: str) -> None:
        """Allow ``name`` to be declared again on this connection (after deleting it)."""
        self._owned_queues.discard(name)

    # -- aio-pika callbacks ----------------------------------------------------------

    def _on_close(self, _sender: Any, exc: BaseException | None = None) -> None:
        # aio-pika also calls this for every failed reconnection attempt: only the
        # transition from "up" counts.
        if self.stopping or not self._link_up.is_set():
            return
        self._link_up.clear()
        log.warning("lost the connection to the AMQP broker: %r", exc)
        for listener in list(self._disconnect_listeners):
            _call_listener(listener, exc)

    def _on_reconnected(self, _sender: Any) -> None:
        if self.stopping:
            return
        self._link_up.set()
        log.info("reconnected to the AMQP broker; exchange, queues and consumers restored")
        for listener in list(self._reconnect_listeners):
            _call_listener(listener)

    def _safe_url(self) -> str:
        return str(self._connection) if self._connection is not None else _mask(self.url)


def _mask(url: str) -> str:
    """``url`` without its password."""
    parsed = URL(url)
    return str(parsed.with_password("******")) if parsed.password else url

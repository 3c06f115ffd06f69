"""One robust AMQP connection, the clu exchange, and channels for endpoints/commanders.

:class:`AmqpConnection` wraps aio-pika's robust connection. It is given one or more
broker URLs (the nodes of a RabbitMQ cluster): when the link is lost it tries the next
URL at once, then each in turn with exponential backoff and jitter
(:class:`ReconnectPolicy`), logging every switch of node. Once a node answers, aio-pika
re-declares on every channel opened through it the exchange and the channels' QoS;
the exclusive queues of endpoints and commanders (their bindings and consumers) are
restored here, one by one (:meth:`AmqpChannel.declare_exclusive_queue`): a queue
whose name another connection holds now (``RESOURCE_LOCKED``) is reported in
:attr:`AmqpConnection.queue_problems` and retried with backoff, and does not keep the
connection or any other queue down. Code that must react to the outage registers
listeners with :meth:`AmqpConnection.on_disconnect` / :meth:`AmqpConnection.on_reconnect`.

Each endpoint and commander gets its own :class:`AmqpChannel` (publisher confirms on,
``on_return_raises=True`` and ``prefetch_count=1`` as clu), on which the exchange is
declared exactly as clu declares it (topic, ``auto_delete=True``, ``durable=False``).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any

import aio_pika
import aiormq
from yarl import URL
from aio_pika.abc import (
    AbstractRobustChannel,
    AbstractRobustConnection,
    AbstractRobustExchange,
    AbstractRobustQueue,
)

from aiormq.abc import DeliveredMessage

from bridge.amqp import throwaway, writer
from bridge.amqp.frames import ReplyFrames
from bridge.amqp.receiver import InlineConsumer, deliver_inline
from bridge.amqp.failover import (
    FailoverRobustConnection,
    NodeRotation,
    ReconnectPolicy,
    node_of,
    with_query,
)
from bridge.protocol.clu_messages import (
    EXCHANGE_AUTO_DELETE,
    EXCHANGE_DURABLE,
    EXCHANGE_NAME,
    EXCHANGE_TYPE,
)

log = logging.getLogger(__name__)

DEFAULT_RECONNECT = ReconnectPolicy()
DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_PUBLISH_TIMEOUT = 10.0
# Below the broker's 60 s default so that, after a silent network loss, the broker drops
# our old connection (and its exclusive queues) sooner; until it does, re-declaring them
# on reconnect fails with RESOURCE_LOCKED and aio-pika keeps retrying
# (github.com/mosquito/aio-pika/issues/679).
DEFAULT_HEARTBEAT = 20
PREFETCH_COUNT = 1  # as clu: basic.qos(prefetch_count=1)
#: How often (s) the connection checks that the broker still has each of its queues, and
#: the quicker checks after each reconnect (see AmqpConnection.audit_queues).
AUDIT_INTERVAL = 5.0
AUDIT_AFTER_RECONNECT = (0.25, 0.5, 1.0, 2.0, 4.0)

DisconnectListener = Callable[[BaseException | None], Any]
#: ``callback(delivery)`` (a plain function) or ``await callback(delivery)`` for each
#: message of a consumed queue: aiormq's own :class:`~aiormq.abc.DeliveredMessage`
#: (header, body, channel), see :meth:`AmqpChannel.consume`.
DeliveryCallback = Callable[[DeliveredMessage], Awaitable[Any] | None]
ReconnectListener = Callable[[], Any]
QueueLostListener = Callable[[str], Any]


class AmqpError(RuntimeError):
    """Base class of this package's AMQP errors."""


class AmqpUnavailable(AmqpError):
    """The broker cannot be reached (not connected, or a publish could not complete)."""


class Unroutable(AmqpError):
    """A mandatory message was returned by the broker: no queue is bound for its key."""


class DeliveryUnknown(AmqpUnavailable):
    """The link was lost after a message was sent and before its confirm: the broker
    may or may not have routed it. It is not sent again (no duplicates)."""


class QueueInUse(AmqpError):
    """An exclusive queue with this name is owned by another connection."""


#: Arguments of a replicated command queue served by several bridges, one at a time.
HA_QUEUE_ARGUMENTS: dict[str, Any] = {"x-queue-type": "quorum", "x-single-active-consumer": True}


@dataclass(eq=False)
class ManagedQueue:
    """A queue this connection declares again after every reconnect: exclusive (as
    clu's), or shared (``arguments``: durable, e.g. :data:`HA_QUEUE_ARGUMENTS`).

    ``problem`` says why it is not in place right now (``None``: consuming, or being
    restored). ``in_place`` is set while it is declared, bound and consumed: cleared
    when the link is lost, set again once this queue is restored (which can be after
    the link is back: a name the dead connection still holds is retried).
    """

    channel: "AmqpChannel"
    queue: AbstractRobustQueue
    bindings: list[str]
    callback: DeliveryCallback
    no_ack: bool
    consumer_tag: str
    arguments: dict[str, Any] | None = None
    problem: str | None = None
    failures: int = 0
    retry: asyncio.Task[None] | None = field(default=None, repr=False)
    in_place: asyncio.Event = field(default_factory=asyncio.Event, repr=False)

    @property
    def name(self) -> str:
        return self.queue.name


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
        channel.reopen_callbacks.add(self._on_reopened)

    def _on_reopened(self, _sender: Any) -> None:
        # aio-pika reopened the channel (awaited inside its restore: nothing here may
        # wait for the channel). Its new underlying channel has none of our consumers.
        self.owner._channel_reopened(self)

    def watch_cancels(self) -> None:
        """Have a broker-side cancel of one of our consumers (its queue was deleted)
        trigger a queue audit at once (idempotent per underlying channel)."""
        underlay = getattr(getattr(self.channel, "_channel", None), "channel", None)
        if underlay is not None and not getattr(underlay, "_bridge_watched", False):
            underlay._bridge_watched = True
            underlay.on_consumer_cancel_callbacks.add(
                lambda *_args: self.owner.audit_soon())

    async def drop_consumer(self, consumer_tag: str) -> None:
        """Cancel ``consumer_tag`` on the current underlying channel (errors ignored:
        the broker may have cancelled it already)."""
        underlay = getattr(getattr(self.channel, "_channel", None), "channel", None)
        if underlay is None or underlay.is_closed:
            return
        try:
            await asyncio.wait_for(underlay.basic_cancel(consumer_tag), 5)
        except Exception as exc:
            log.debug("cancelling consumer %s: %r", consumer_tag, exc)
        underlay.consumers.pop(consumer_tag, None)

    def consuming(self, consumer_tag: str) -> bool:
        """True if ``consumer_tag`` consumes on this channel's current underlying channel."""
        underlay = getattr(getattr(self.channel, "_channel", None), "channel", None)
        return (underlay is not None and not underlay.is_closed
                and consumer_tag in underlay.consumers)

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
        publish that the broker cannot have seen (the channel was already closed when
        it was to be written) is tried again after the reconnect, within the same
        ``reconnect_wait``. A publish whose frames were handed to the connection and
        whose confirm was lost with it is never re-published: the broker may have
        routed it, and a second copy would reach the consumer as a duplicate (a clu
        client shows a reply twice). Its delivery is unknown; :class:`DeliveryUnknown`
        is raised (at most once, never twice: see protocol_specs/amqp.md).

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
                raise self.publish_error(exc, routing_key, message.message_id, timeout) from exc
            except TimeoutError as exc:
                raise self.publish_error(exc, routing_key, message.message_id,
                                         timeout) from None
            except aio_pika.exceptions.CONNECTION_EXCEPTIONS as exc:
                if self.owner.stopping or not isinstance(
                        exc, aiormq.exceptions.ChannelInvalidStateError):
                    raise self.publish_error(exc, routing_key, message.message_id,
                                             timeout) from exc
                if not retry or (wait_until is not None and loop.time() >= wait_until):
                    raise AmqpUnavailable(f"publishing to {routing_key!r} failed: {exc!r}") from exc
                log.debug("publish to %r not sent (%r); retrying after reconnect",
                          routing_key, exc)
                await asyncio.sleep(0.05)

    def publish_error(self, exc: BaseException, routing_key: str, message_id: str | None,
                      timeout: float | None) -> BaseException:
        """What a publish to ``routing_key`` raises when its confirm failed with ``exc``
        (:meth:`publish`, :meth:`publish_encoded_nowait`'s callers)."""
        if isinstance(exc, aio_pika.exceptions.PublishError):
            return Unroutable(f"no queue bound for routing key {routing_key!r}")
        if isinstance(exc, TimeoutError):
            return AmqpUnavailable(
                f"could not publish to {routing_key!r}: the AMQP broker did not confirm "
                f"within {timeout} s")
        if isinstance(exc, aio_pika.exceptions.CONNECTION_EXCEPTIONS):
            if self.owner.stopping:
                return AmqpUnavailable("the AMQP connection is closed")
            if not isinstance(exc, aiormq.exceptions.ChannelInvalidStateError):
                # Written, then the link went: maybe routed, maybe not.
                return DeliveryUnknown(
                    f"the connection was lost before the broker confirmed the message "
                    f"to {routing_key!r} (message id {message_id}); not "
                    "re-published, so that it cannot arrive twice")
            return AmqpUnavailable(f"publishing to {routing_key!r} failed: {exc!r}")
        return exc

    def publish_encoded_nowait(self, encode: Callable[[int, int], bytes],
                               message_id: str) -> asyncio.Future[Any] | None:
        """Start publishing the message whose frames are ``encode(channel_number,
        max_content_size)`` (e.g. :class:`~bridge.amqp.frames.CommandFrames`) now and
        return the future of its confirm (no timeout: the caller keeps one; failures as
        :meth:`publish_error` maps them), or None if the link or the channel is not
        ready (then :meth:`publish`). ``message_id`` is the one encoded (a returned
        mandatory message is matched to its confirm by it)."""
        if not self.owner.connected:
            return None
        channel = writer.usable_channel(self.channel)
        if channel is None:
            return None
        size = channel.max_content_size
        return writer.publish(channel, lambda number: encode(number, size), message_id)

    async def _publish_once(self, message: aio_pika.Message, routing_key: str,
                            mandatory: bool) -> None:
        """Publish ``message`` and wait for its confirm, holding no lock.

        The frames go onto aiormq's write queue at once, in order, several messages per
        socket write (:mod:`bridge.amqp.writer`); aio-pika's publish instead held the
        channel lock until the writer task had sent each message, a loop turn or two
        per message during which every other publish on the channel waited (a busy
        bridge queued hundreds of replies behind that lock for seconds).
        """
        channel = writer.usable_channel(self.channel)
        if channel is None:
            channel = await self.channel.get_underlay_channel()  # raises if it is closed
        if not message.message_id:  # as aiormq names it (and errors can quote it)
            message.message_id = writer.new_message_id()
        await writer.publish_message(channel, self.exchange.name, routing_key, message.body,
                                     message.properties, mandatory)

    def publish_frames_nowait(self, frames: ReplyFrames, code: str, internal: bool,
                              body: bytes) -> asyncio.Future[Any] | None:
        """Start publishing one reply (:class:`~bridge.amqp.frames.ReplyFrames`) now and
        return the future of its confirm (no timeout: the caller keeps one), or None if
        the link is down or the body needs several frames (then :meth:`publish`)."""
        if not self.owner.connected:
            return None
        channel = writer.usable_channel(self.channel)
        if channel is None or len(body) >= channel.max_content_size:
            return None
        number = channel.number
        return writer.publish(channel, lambda _n: frames.encode(number, code, internal, body))

    async def declare_exclusive_queue(
        self,
        name: str,
        bindings: Sequence[str],
        callback: DeliveryCallback,
        *,
        no_ack: bool = False,
    ) -> tuple[AbstractRobustQueue, str]:
        """Declare an exclusive queue as clu does, bind it, consume it (with ``no_ack``
        the broker delivers without waiting for acknowledgements: prefetch does not
        apply, and nothing is ever redelivered, which an exclusive queue never does anyway).

        Ownership is checked first on a throw-away plain channel, so that a name already
        owned by another connection raises :class:`QueueInUse` without the broker
        closing this (shared, robust) channel. Returns the queue and the consumer tag.

        After each reconnect the connection declares the queue again, with its bindings
        and consumer (same tag): by itself, not through aio-pika's channel restore, so
        that a name taken meanwhile by another connection (another bridge, a clu actor)
        leaves this one queue down -- reported in :attr:`AmqpConnection.queue_problems`,
        retried with backoff -- and not the whole connection.
        """
        await self.owner.check_exclusive_queue(name)
        queue = await self.channel.declare_queue(name, exclusive=True, robust=False)
        for binding in bindings:
            await queue.bind(self.exchange, routing_key=binding, robust=False)
        tag = await self.consume(name, callback, no_ack=no_ack)
        self.watch_cancels()
        self.owner._manage(ManagedQueue(self, queue, list(bindings), callback, no_ack, tag))
        return queue, tag

    async def declare_shared_queue(
        self,
        name: str,
        bindings: Sequence[str],
        callback: DeliveryCallback,
        *,
        arguments: dict[str, Any] = HA_QUEUE_ARGUMENTS,
    ) -> tuple[AbstractRobustQueue, str]:
        """Declare a durable queue several connections consume (by default a replicated
        quorum queue with single-active-consumer: one consumer gets the messages, the
        others stand by and the broker hands over when it goes), bind it, consume it.

        The declaration is tried first on a throw-away channel: a queue of that name
        declared otherwise (a clu actor's exclusive queue) raises :class:`QueueInUse`
        without the broker closing this channel. Restored after each reconnect as
        :meth:`declare_exclusive_queue`'s queues are.
        """
        await self.owner._probe_declare(name, durable=True, arguments=arguments)
        queue = await self.channel.declare_queue(name, durable=True, arguments=arguments,
                                                 robust=False)
        for binding in bindings:
            await queue.bind(self.exchange, routing_key=binding, robust=False)
        tag = await self.consume(name, callback)
        self.watch_cancels()
        self.owner._manage(ManagedQueue(self, queue, list(bindings), callback, False, tag,
                                        arguments=dict(arguments)))
        return queue, tag

    async def _restore_queue(self, managed: ManagedQueue) -> None:
        """Declare, bind and consume ``managed`` again (after a reconnect)."""
        if managed.arguments is None:
            await self.owner._probe_exclusive(managed.name)
        else:
            await self.owner._probe_declare(managed.name, durable=True,
                                            arguments=managed.arguments)
        queue = managed.queue
        await queue.declare()
        for binding in managed.bindings:
            await queue.bind(self.exchange, routing_key=binding, robust=False)
        await self.consume(managed.name, managed.callback, no_ack=managed.no_ack,
                           consumer_tag=managed.consumer_tag)
        self.watch_cancels()

    async def consume(self, queue_name: str, callback: DeliveryCallback, *,
                      no_ack: bool = False, consumer_tag: str | None = None) -> str:
        """Consume ``queue_name`` on this channel's current aiormq channel; return the tag.

        Each delivery reaches ``callback`` as aiormq's
        :class:`~aiormq.abc.DeliveredMessage`: a coroutine function from the one task
        aiormq starts for it, a plain function (which must not block) straight from the
        channel's reader, without a task (:func:`~bridge.amqp.receiver.deliver_inline`).
        aio-pika's ``Queue.consume`` would build an ``IncomingMessage`` (every property
        decoded again) and start a second task per delivery. Not restored by aio-pika:
        the connection restores its managed queues itself.
        """
        channel = await self.channel.get_underlay_channel()
        consumer: Any = callback
        if not inspect.iscoroutinefunction(callback):
            deliver_inline(channel)
            consumer = InlineConsumer(callback)
        ok = await channel.basic_consume(queue_name, consumer, no_ack=no_ack,
                                         consumer_tag=consumer_tag)
        return str(ok.consumer_tag)

    async def bind(self, queue: AbstractRobustQueue, routing_key: str) -> None:
        """Bind ``queue`` to the clu exchange (restored after a reconnect)."""
        managed = self.owner._managed.get(queue.name)
        if managed is not None:
            await queue.bind(self.exchange, routing_key=routing_key, robust=False)
            if routing_key not in managed.bindings:
                managed.bindings.append(routing_key)
        else:
            await queue.bind(self.exchange, routing_key=routing_key)

    async def close(self) -> None:
        """Close the channel (errors while closing are logged, not raised)."""
        try:
            if not self.channel.is_closed:
                await self.channel.close()
        except Exception as exc:  # connection already gone, etc.
            log.debug("closing channel: %r", exc)


class AmqpConnection:
    """A robust connection to RabbitMQ (one node or a cluster) that knows the clu exchange.

    ``url`` is one broker URL or several (the nodes of a cluster, tried in turn; each
    may carry aio-pika/aiormq query options; ``heartbeat`` is added unless a URL has
    one). ``await start()`` connects to the first node that answers and declares the
    exchange: with ``fail_fast`` it raises :class:`AmqpUnavailable` once every URL
    failed; without it, it logs and keeps trying (``reconnect`` backoff) until one
    answers or :meth:`stop` is called. ``await stop()`` closes everything.
    ``connected`` tells whether the link is up right now, :attr:`node` which node it
    uses; listeners registered with :meth:`on_disconnect` run when an established
    link is lost, those registered with :meth:`on_reconnect` after the link is back on
    some node and every channel's exchange and every managed queue, binding and
    consumer is restored (or reported in :attr:`queue_problems`).
    """

    def __init__(
        self,
        url: str | Sequence[str],
        *,
        exchange_name: str = EXCHANGE_NAME,
        reconnect_interval: float | None = None,
        reconnect: ReconnectPolicy | None = None,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        heartbeat: int | None = DEFAULT_HEARTBEAT,
        connection_name: str | None = None,
        fail_fast: bool = True,
        audit_interval: float | None = AUDIT_INTERVAL,
    ) -> None:
        self.urls = [url] if isinstance(url, str) else list(url)
        if not self.urls:
            raise ValueError("no AMQP URL given")
        self.url = self.urls[0]
        self.heartbeat = heartbeat
        self.exchange_name = exchange_name
        if reconnect is None:  # a fixed interval (as aio-pika's), or the default backoff
            reconnect = DEFAULT_RECONNECT if reconnect_interval is None else ReconnectPolicy(
                reconnect_interval, reconnect_interval, 1.0, 0.0)
        self.reconnect = reconnect
        self.connect_timeout = connect_timeout
        self.connection_name = connection_name
        self.fail_fast = fail_fast
        self.stopping = False
        #: How many times the link was lost, and when it was last lost / back (loop time).
        self.losses = 0
        self.lost_at: float | None = None
        self.restored_at: float | None = None
        self._rotation = NodeRotation(self.urls)
        # Up and topology restored; listeners fire on its transitions only.
        self._link_up = asyncio.Event()
        self._connection: FailoverRobustConnection | None = None
        self._channels: list[AmqpChannel] = []
        self._main: AmqpChannel | None = None
        self._owned_queues: set[str] = set()
        self._managed: dict[str, ManagedQueue] = {}
        self._restore_lock = asyncio.Lock()  # one queue restore at a time
        self._reopen_tasks: set[asyncio.Task[None]] = set()
        self._disconnect_listeners: list[DisconnectListener] = []
        self._reconnect_listeners: list[ReconnectListener] = []
        self._queue_lost_listeners: list[QueueLostListener] = []
        #: Seconds between queue audits (None: no audits); see :meth:`audit_queues`.
        self.audit_interval: float | None = audit_interval
        self._audit_task: asyncio.Task[None] | None = None
        self._audit_wake = asyncio.Event()
        self._audit_schedule: list[float] = []
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
    def node(self) -> str:
        """``host:port`` of the broker node in use (being tried while reconnecting)."""
        if self._connection is not None:
            return self._connection.node
        return node_of(self._rotation.current)

    @property
    def state(self) -> str:
        """``connected``, ``reconnecting`` (started, link down), ``stopped``."""
        if self.connected:
            return "connected"
        return "reconnecting" if self.started else "stopped"

    @property
    def queue_problems(self) -> dict[str, str]:
        """Managed queues not in place now, with the reason (e.g. name taken elsewhere)."""
        return {name: m.problem for name, m in self._managed.items() if m.problem}

    def link_status(self) -> dict[str, Any]:
        """State, node and queue problems, as ``bridge status`` shows them."""
        return {"connected": self.connected, "state": self.state, "node": self.node,
                "nodes": [node_of(u) for u in self._rotation.urls], "losses": self.losses,
                "queue_problems": self.queue_problems}

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
            raise AmqpUnavailable(f"not connected to the AMQP broker ({self._safe_url()}) "
                                  f"after {timeout} s") from None

    def on_disconnect(self, listener: DisconnectListener) -> None:
        """Call ``listener(exc)`` once each time an established link is lost (not on
        stop, not again for each failed reconnection attempt)."""
        self._disconnect_listeners.append(listener)

    def on_reconnect(self, listener: ReconnectListener) -> None:
        """Call ``listener()`` after each reconnect, once topology has been restored."""
        self._reconnect_listeners.append(listener)

    def on_queue_lost(self, listener: QueueLostListener) -> None:
        """Call ``listener(queue_name)`` when the broker is found to have lost one of the
        managed queues while the link stayed up (:meth:`audit_queues`): what was routed
        to it meanwhile is gone. The queue is declared again after the listeners ran."""
        self._queue_lost_listeners.append(listener)

    def remove_listener(self, listener: Callable[..., Any]) -> None:
        """Forget ``listener`` (disconnect, reconnect, queue lost); no error if unknown."""
        for listeners in (self._disconnect_listeners, self._reconnect_listeners,
                          self._queue_lost_listeners):
            while listener in listeners:
                listeners.remove(listener)

    # -- life cycle ------------------------------------------------------------------

    async def start(self) -> AmqpConnection:
        """Connect and declare the exchange; return self (see the class doc)."""
        if self._connection is not None:
            raise AmqpError("AmqpConnection already started")
        self.stopping = False
        self._connection = await self._first_connection()
        self._connection.close_callbacks.add(self._on_close)
        self._connection.reconnect_callbacks.add(self._on_reconnected)
        try:
            self._main = await self.open_channel()
        except BaseException:
            await self.stop()
            raise
        self._link_up.set()
        if self.audit_interval:
            self._audit_task = asyncio.ensure_future(self._audit_loop())
        log.info("connected to %s (exchange %r)", self._safe_url(), self.exchange_name)
        return self

    async def _first_connection(self) -> FailoverRobustConnection:
        """Try the URLs in turn until one answers (see :attr:`fail_fast`)."""
        loop = asyncio.get_running_loop()
        failures = 0
        while True:
            url = with_query(self._rotation.current, self._query())
            connection = FailoverRobustConnection(
                url, rotation=self._rotation, policy=self.reconnect,
                on_switch=self._on_switch, client_properties=self._client_properties())
            connection.extra_query = self._query()
            try:
                await connection.connect(timeout=self.connect_timeout)
                return connection
            except (asyncio.TimeoutError, *aio_pika.exceptions.CONNECTION_EXCEPTIONS) as exc:
                await connection.close()
                failures += 1
                if self.stopping:
                    raise AmqpUnavailable("the AMQP connection was stopped while connecting")
                if self.fail_fast and failures >= len(self.urls):
                    raise AmqpUnavailable(
                        f"cannot connect to the AMQP broker at {_mask(str(url))}: {exc!r}"
                        + (f" (nor at the {len(self.urls) - 1} other URL(s))"
                           if len(self.urls) > 1 else "")) from exc
                delay = self.reconnect.delay(failures)
                nxt = self._rotation.advance()
                log.warning("no AMQP broker at %s (%s); waiting for one: trying %s in %.1f s "
                            "(attempt %d)", node_of(url), _short(exc), node_of(nxt), delay,
                            failures + 1)
                wake = loop.create_future()
                loop.call_later(delay, lambda: wake.done() or wake.set_result(None))
                await wake

    def _query(self) -> dict[str, Any]:
        return {"heartbeat": self.heartbeat}

    def _client_properties(self) -> dict[str, Any] | None:
        return {"connection_name": self.connection_name} if self.connection_name else None

    async def stop(self) -> None:
        """Close all channels and the connection (no reconnect afterwards)."""
        self.stopping = True
        if self._connection is None:
            return
        for task in list(self._reopen_tasks):
            task.cancel()
        if self._audit_task is not None:
            self._audit_task.cancel()
            self._audit_task = None
        for managed in self._managed.values():
            if managed.retry is not None:
                managed.retry.cancel()
        self._managed.clear()
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
        """Close a channel obtained from :meth:`open_channel` (its queues are forgotten)."""
        if channel in self._channels:
            self._channels.remove(channel)
        for name in [n for n, m in self._managed.items() if m.channel is channel]:
            self._forget(name)
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
        await self._probe_exclusive(name)
        self._owned_queues.add(name)

    async def _probe_exclusive(self, name: str) -> None:
        """Declare exclusive queue ``name`` on a throw-away channel (QueueInUse if locked)."""
        await self._probe_declare(name, exclusive=True)

    async def _probe_declare(self, name: str, **declare: Any) -> None:
        """Declare queue ``name`` on a throw-away channel; QueueInUse if it is exclusive
        to another connection or declared with other arguments (another kind of owner)."""
        try:
            async with self.throwaway_channel() as probe:
                await probe.declare_queue(name, **declare)
        except aiormq.exceptions.ChannelLockedResource as exc:
            raise QueueInUse(
                f"cannot create queue {name!r}: it is owned by another connection "
                "(another instance with the same name is running)"
            ) from exc
        except aiormq.exceptions.ChannelPreconditionFailed as exc:
            raise QueueInUse(
                f"cannot create queue {name!r}: it exists with other properties "
                f"({exc.args[0] if exc.args else exc}); another kind of actor serves it"
            ) from exc

    def throwaway_channel(self) -> AbstractAsyncContextManager[aio_pika.Channel]:
        """A throw-away channel on this connection, opened within ``connect_timeout``,
        for RPCs the broker may refuse by closing the channel
        (:func:`bridge.amqp.throwaway.throwaway_channel`)."""
        return throwaway.throwaway_channel(self.robust_connection, self.connect_timeout)

    def release_queue_name(self, name: str) -> None:
        """Allow ``name`` to be declared again on this connection (after deleting it);
        it is no longer restored after a reconnect."""
        self._owned_queues.discard(name)
        self._forget(name)

    # -- managed queues (restored after each reconnect, one by one) -----------------

    def _manage(self, managed: ManagedQueue) -> None:
        managed.in_place.set()  # declared, bound and consumed by the caller
        self._managed[managed.name] = managed

    def queue_in_place(self, name: str) -> bool:
        """True unless managed queue ``name`` is being restored (see
        :meth:`wait_queue_in_place`, which returns at once then)."""
        managed = self._managed.get(name)
        return managed is None or managed.in_place.is_set()

    async def wait_queue_in_place(self, name: str, timeout: float | None) -> None:
        """Wait until managed queue ``name`` is declared, bound and consumed.

        After a reconnect a queue can come back later than the link (its name still
        held by the dead connection for a moment: retried with backoff): a command
        published before its replies queue is back would have its replies dropped by
        the broker. Raises :class:`AmqpUnavailable` after ``timeout`` s. A name that is
        not managed (never declared, or released) returns at once.
        """
        managed = self._managed.get(name)
        if managed is None or managed.in_place.is_set():
            return
        try:
            async with asyncio.timeout(timeout):
                await managed.in_place.wait()
        except TimeoutError:
            raise AmqpUnavailable(
                f"queue {name!r} is not in place after {timeout} s "
                f"({managed.problem or 'being restored after a reconnect'})") from None

    def _forget(self, name: str) -> None:
        managed = self._managed.pop(name, None)
        if managed is not None and managed.retry is not None:
            managed.retry.cancel()

    async def _restore_queues(self) -> None:
        """After a reconnect: every managed queue again, each on its own."""
        for managed in list(self._managed.values()):
            if managed.retry is not None:
                managed.retry.cancel()
                managed.retry = None
            await self._restore_one(managed)

    def _channel_reopened(self, channel: AmqpChannel) -> None:
        """aio-pika reopened ``channel`` (as part of a reconnect, or by itself: after a
        channel-level error, or when it noticed the old channel's close only after a
        fast failover had already restored it): consume its queues again on the new
        underlying channel, once the link is up, those whose consumer is not there."""
        if self.stopping or not any(m.channel is channel for m in self._managed.values()):
            return
        task = asyncio.ensure_future(self._restore_reopened(channel))
        self._reopen_tasks.add(task)
        task.add_done_callback(self._reopen_tasks.discard)
        task.add_done_callback(_log_task_error)

    async def _restore_reopened(self, channel: AmqpChannel) -> None:
        try:
            await self.wait_connected()  # a reconnect restores first (_on_reconnected)
        except AmqpUnavailable:
            return  # stopped
        for managed in [m for m in self._managed.values() if m.channel is channel]:
            if managed.retry is None and not channel.consuming(managed.consumer_tag):
                managed.in_place.clear()
                log.warning("queue %r lost its consumer when its channel was reopened; "
                            "consuming again", managed.name)
                await self._restore_one(managed)

    async def _restore_one(self, managed: ManagedQueue) -> bool:
        try:
            async with self._restore_lock, asyncio.timeout(self.connect_timeout):
                await managed.channel.channel.ready()
                if self._managed.get(managed.name) is not managed:
                    return False  # forgotten (released) meanwhile
                if not managed.channel.consuming(managed.consumer_tag):
                    await managed.channel._restore_queue(managed)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if self._managed.get(managed.name) is not managed or self.stopping:
                return False
            managed.failures += 1
            managed.problem = (str(exc) if isinstance(exc, QueueInUse)
                               else f"could not declare it again: {_short(exc)}")
            delay = self.reconnect.delay(managed.failures)
            log.error("queue %r not restored on %s (%s); retrying in %.1f s", managed.name,
                      self.node, managed.problem, delay)
            managed.retry = asyncio.ensure_future(self._retry_later(managed, delay))
            return False
        if managed.problem:
            log.info("queue %r restored on %s after %d attempt(s)", managed.name, self.node,
                     managed.failures + 1)
        managed.problem, managed.failures = None, 0
        managed.in_place.set()
        return True

    # -- audits: does the broker still have our queues? ------------------------------

    def audit_soon(self) -> None:
        """Run :meth:`audit_queues` now (in the audit task) instead of at its next turn."""
        self._audit_wake.set()

    async def _audit_loop(self) -> None:
        while not self.stopping:
            delay = (self._audit_schedule.pop(0) if self._audit_schedule
                     else self.audit_interval or AUDIT_INTERVAL)
            try:
                await asyncio.wait_for(self._audit_wake.wait(), delay)
                if self._audit_schedule:  # woken by a reconnect: its quick checks first
                    await asyncio.sleep(self._audit_schedule.pop(0))
            except TimeoutError:
                pass
            self._audit_wake.clear()
            try:
                await self.audit_queues()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the link went meanwhile: the reconnect restores
                log.debug("queue audit failed: %r", exc)

    async def audit_queues(self) -> list[str]:
        """Check, with a passive declare on a throw-away channel, that the broker still
        has every managed queue that is in place; declare, bind and consume again each
        one it lost, after telling the :meth:`on_queue_lost` listeners. Returns the
        names of the lost queues.

        Why: RabbitMQ 3.10's clean-up after a node loss deletes the transient queues
        that were on that node *by name* (record and bindings, in a later transaction,
        on every surviving node); a bridge that failed over and declared its queue again
        on another node in between can have its new queue's record and bindings deleted
        while its consumer stays attached: it hears nothing more and nothing says so. A
        queue deleted outright (``rabbitmqctl delete_queue``) is found the same way,
        and at once (the broker cancels our consumer).
        """
        if not self.connected:
            return []
        lost = []
        for managed in list(self._managed.values()):
            if managed.in_place.is_set() and managed.retry is None \
                    and not await self._queue_exists(managed.name):
                lost.append(managed)
        for managed in lost:
            if self._managed.get(managed.name) is not managed or not self.connected:
                continue
            log.error("the broker lost queue %r (deleted, or its node's clean-up removed it "
                      "by name after a failover); declaring it again on %s", managed.name,
                      self.node)
            managed.in_place.clear()
            for listener in list(self._queue_lost_listeners):
                _call_listener(listener, managed.name)
            await managed.channel.drop_consumer(managed.consumer_tag)
            await self._restore_one(managed)
        return [m.name for m in lost]

    async def _queue_exists(self, name: str) -> bool:
        try:
            async with self.throwaway_channel() as probe:
                await probe.declare_queue(name, passive=True)
            return True
        except aiormq.exceptions.ChannelNotFoundEntity:
            return False

    async def _retry_later(self, managed: ManagedQueue, delay: float) -> None:
        await asyncio.sleep(delay)
        managed.retry = None
        if self.connected and self._managed.get(managed.name) is managed:
            await self._restore_one(managed)
        # While disconnected, the next reconnect restores it.

    # -- aio-pika callbacks ----------------------------------------------------------

    def _on_close(self, _sender: Any, exc: BaseException | None = None) -> None:
        # aio-pika also calls this for every failed reconnection attempt: only the
        # transition from "up" counts.
        if self.stopping or not self._link_up.is_set():
            return
        self._link_up.clear()
        for managed in self._managed.values():
            managed.in_place.clear()
        self.losses += 1
        self.lost_at = asyncio.get_running_loop().time()
        log.warning("lost the connection to the AMQP broker node %s: %s", self.node,
                    _short(exc))
        for listener in list(self._disconnect_listeners):
            _call_listener(listener, exc)

    def _on_switch(self, old: URL, new: URL) -> None:
        if not self.stopping:
            log.warning("AMQP failover: trying node %s (was %s)", node_of(new), node_of(old))

    async def _on_reconnected(self, _sender: Any) -> None:
        # Awaited by aio-pika before it counts the attempt as a success.
        if self.stopping:
            return
        await self._restore_queues()
        self._link_up.set()
        self._audit_schedule = list(AUDIT_AFTER_RECONNECT)
        self.audit_soon()
        self.restored_at = asyncio.get_running_loop().time()
        down = "" if self.lost_at is None else f" after {self.restored_at - self.lost_at:.2f} s"
        problems = self.queue_problems
        log.warning("reconnected to the AMQP broker on node %s%s; exchange, queues and "
                    "consumers restored%s", self.node, down,
                    f" but for {sorted(problems)}" if problems else "")
        for listener in list(self._reconnect_listeners):
            _call_listener(listener)

    def _safe_url(self) -> str:
        return str(self._connection) if self._connection is not None else _mask(self.url)


def _short(exc: BaseException | None) -> str:
    """An exception as one short line for logs."""
    if exc is None:
        return "closed"
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if type(exc).__name__ not in text else text


def _mask(url: str) -> str:
    """``url`` without its password."""
    parsed = URL(url)
    return str(parsed.with_password("******")) if parsed.password else url

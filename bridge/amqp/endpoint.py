"""An AMQP actor endpoint that clu clients cannot tell from a clu ``AMQPActor``.

:class:`ActorEndpoint` owns the exclusive queue ``<name>_commands`` bound to
``command.<name>.#``, consumed without acknowledgements (clu acks each delivery on
receipt, at prefetch 1: for an exclusive queue the same at-most-once delivery, one
frame and one socket write more per command; see protocol_specs/amqp.md), decoded
with :func:`~bridge.protocol.clu_messages.decode_command` and handed to ``on_command``
as an :class:`IncomingCommand`; commands run concurrently. A coroutine function runs
in a task of its own per command. A plain function returning an awaitable is called
at once, in the turn the delivery was read in (the relay sends the command on to its
legacy actor there, without waiting for a task's first turn); what it returns is
awaited in a task, or, if it is a future, watched by a done callback (no task).
Replies go to ``reply.<commander_id>`` with clu's headers and properties; ``>`` is
flagged internal like clu's.

Guarantees:

* a malformed delivery is never dropped silently: it is answered with
  ``f {"error": ...}`` routed to its commander when the ``commander_id`` header can be
  read, otherwise broadcast as ``f`` (and logged);
* every accepted command gets exactly one terminal reply: if ``on_command`` raises
  before finishing the command it is failed with the exception text, and at
  :meth:`ActorEndpoint.stop` every unfinished command is failed;
* a second terminal reply for the same command is dropped with a warning;
* a reply (above all a terminal one) that finds the broker connection down waits for
  aio-pika to reconnect, up to ``reconnect_wait`` seconds, instead of being lost: a
  command that ends while the broker restarts is answered once it is back;
* :meth:`ActorEndpoint.release` gives the actor's name up without losing a command:
  the consumer is cancelled (basic.cancel: nothing more is delivered), every message
  still queued is fetched and served, and the queue is deleted only when it is empty
  (queue.delete with if_empty, repeated until the broker agrees), so a message routed
  to it meanwhile is served too, never dropped. Then another actor (a clu actor of the
  same name) can declare the queue, while the commands accepted before keep running
  and their replies go out as usual.

With ``ha`` (high availability, beyond clu) the commands queue is not exclusive but a
durable, replicated quorum queue with single-active-consumer, so that several bridges
can serve the same actor: the broker delivers to one consumer (the active bridge) and
hands over to a standby when it goes; the queue survives the loss of a node and of any
bridge, so a command that reached it is served by whichever bridge is active then.
:meth:`ActorEndpoint.stop` of such an endpoint only leaves (cancels its consumer: the
standby serves on); :meth:`ActorEndpoint.release` still deletes the queue (handing the
actor to a clu actor, which declares its exclusive queue: every bridge serving it must
let go). See protocol_specs/amqp.md.

The commands queue is consumed on a channel of its own (the *intake* channel), apart
from the channel replies are published on: releasing closes the intake channel (aio-pika
then never re-declares the queue after a reconnect), and a refused ``if_empty`` delete,
which makes the broker close the channel it was sent on, happens on a throw-away channel
and disturbs no reply.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import aio_pika
import aiormq
from aio_pika.abc import AbstractRobustQueue
from aiormq.abc import DeliveredMessage

from bridge.amqp.connection import (
    DEFAULT_PUBLISH_TIMEOUT,
    AmqpChannel,
    AmqpConnection,
    AmqpError,
    AmqpUnavailable,
    DeliveryUnknown,
    QueueInUse,
)
from bridge.amqp import writer
from bridge.amqp.frames import ReplyFrames
from bridge.amqp.wire import incoming_command, reply_to_message
from bridge.core.handover import Handover, HandoverEvent, HandoverState
from bridge.protocol.clu_messages import (
    FAILED,
    CommandMessage,
    MessageError,
    ReplyMessage,
    check_code,
    check_name,
    commands_binding,
    commands_queue_name,
    default_internal,
    encode_json,
    is_terminal,
    reply_routing_key,
)

log = logging.getLogger(__name__)

#: How long a reply waits for a lost broker connection to come back (a broker restart
#: takes tens of seconds; ``publish_timeout`` alone would lose the reply).
DEFAULT_RECONNECT_WAIT = 60.0

#: Pause between two attempts to delete a released queue that was not empty yet.
RELEASE_RETRY_PAUSE = 0.01

#: After unbinding a released queue: time for a command the broker routed to it just
#: before the unbind to reach it, before the queue may be found empty and deleted.
RELEASE_SETTLE = 0.02

#: How long :meth:`ActorEndpoint.stop` lets a release try before it deletes the queue
#: regardless (what is still queued then is lost with it, and logged).
STOP_RELEASE_LIMIT = 5.0


class ActorNameInUse(QueueInUse):
    """Another actor (clu or bridge) with the same name is connected to the broker."""


class IncomingCommand:
    """A command received by an :class:`ActorEndpoint`, and the way to answer it."""

    def __init__(self, endpoint: ActorEndpoint, message: CommandMessage) -> None:
        self.endpoint = endpoint
        self.message = message
        self.final_code: str | None = None
        self._frames: ReplyFrames | None = None

    @property
    def command_string(self) -> str:
        return self.message.command_string

    @property
    def command_id(self) -> str:
        return self.message.command_id

    @property
    def commander_id(self) -> str:
        return self.message.commander_id

    @property
    def done(self) -> bool:
        """True once a terminal reply (``:``, ``f`` or ``!``) has been sent."""
        return self.final_code is not None

    async def reply(
        self, code: str, body: Mapping[str, Any] | None = None, internal: bool | None = None
    ) -> bool:
        """Publish a reply to this command's commander; return False if it was dropped.

        ``code`` is one of ``> i d w e f : !``. ``internal=None`` follows clu: ``>`` is
        internal, other replies inherit the command's ``internal`` flag. A terminal
        reply after the command finished is dropped (logged). While the connection is
        down the reply waits for it, up to the endpoint's ``reconnect_wait``; raises
        :class:`~bridge.amqp.connection.AmqpUnavailable` if the broker cannot be
        reached in that time (or does not confirm within ``publish_timeout``).
        """
        check_code(code)
        if not self._claim(code, body):
            return False
        confirm = self._publish_nowait(code, body, internal)
        if confirm is not None:
            try:
                async with asyncio.timeout(self.endpoint.publish_timeout):
                    await confirm
                return True
            except TimeoutError:
                raise AmqpUnavailable(
                    f"could not publish a reply of {self!r}: the AMQP broker did not confirm "
                    f"within {self.endpoint.publish_timeout} s") from None
            except aio_pika.exceptions.CONNECTION_EXCEPTIONS as exc:
                if isinstance(exc, AmqpError):
                    raise
                raise delivery_unknown(self, exc) from exc
            return True
        await self.resend(code, body, internal)
        return True

    def reply_nowait(self, code: str, body: Mapping[str, Any] | None = None,
                     internal: bool | None = None) -> asyncio.Future[Any] | None:
        """Start publishing a reply now, in order with the replies started before it.

        Returns the future of the broker's confirm, or None when the reply cannot go
        out at once (link down, large body): the caller then awaits :meth:`resend`
        (in order). No timeout: the caller keeps one. A connection error on the
        future means the link went after the reply was written: it may or may not have
        been routed, and it is not sent again (:func:`delivery_unknown`). A terminal
        reply after the command finished is dropped (logged) and gives a future with
        result False.
        """
        check_code(code)
        if not self._claim(code, body):
            dropped: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            dropped.set_result(False)
            return dropped
        return self._publish_nowait(code, body, internal)

    async def resend(self, code: str, body: Mapping[str, Any] | None = None,
                     internal: bool | None = None) -> None:
        """Publish a reply through the patient path: waits for a lost link (up to the
        endpoint's ``reconnect_wait``; :meth:`AmqpChannel.publish`), no terminal-reply
        bookkeeping (the reply was claimed by :meth:`reply_nowait`)."""
        await self.endpoint._publish(
            ReplyMessage.for_command(self.message, code, body, self.endpoint.name, internal))

    def _claim(self, code: str, body: Mapping[str, Any] | None) -> bool:
        if is_terminal(code):
            if self.done:
                log.warning(
                    "%s: dropping second terminal reply %r %r to command %s (already %r)",
                    self.endpoint.name, code, body, self.command_id, self.final_code,
                )
                return False
            self.final_code = code
            self.endpoint._finished(self)
        return True

    def _publish_nowait(self, code: str, body: Mapping[str, Any] | None,
                        internal: bool | None) -> asyncio.Future[Any] | None:
        channel = self.endpoint._channel
        if channel is None:
            return None
        frames = self._frames
        if frames is None:
            message = self.message
            frames = self._frames = ReplyFrames(
                channel.exchange.name, reply_routing_key(message.commander_id),
                message.commander_id, message.command_id, self.endpoint.name)
        if internal is None:
            internal = default_internal(code, self.message.internal)
        return channel.publish_frames_nowait(frames, code, internal,
                                             encode_json(dict(body) if body else {}))

    async def finish(self, body: Mapping[str, Any] | None = None) -> bool:
        """Reply ``:`` with ``body``."""
        return await self.reply(":", body)

    async def fail(self, error: str) -> bool:
        """Reply ``f {"error": error}``."""
        return await self.reply(FAILED, {"error": error})

    def __repr__(self) -> str:
        return (
            f"<IncomingCommand {self.endpoint.name} {self.command_string!r} "
            f"id={self.command_id} from={self.commander_id} final={self.final_code}>"
        )


CommandHandler = Callable[[IncomingCommand], Awaitable[None]]


def delivery_unknown(command: IncomingCommand, error: BaseException) -> DeliveryUnknown:
    """The error of a reply of ``command`` written before its link went (as
    :meth:`AmqpChannel.publish` raises it: the reply is not published again)."""
    return DeliveryUnknown(
        f"the connection was lost before the broker confirmed a reply of {command!r} "
        f"({error!r}); not re-published, so that it cannot arrive twice")


class ActorEndpoint:
    """Serve clu commands for actor ``name`` on ``connection``.

    ``await start()`` declares and consumes ``<name>_commands`` (raises
    :class:`ActorNameInUse` if another connection owns it); ``await release()`` stops
    intake and gives the name up, losing no command, while accepted commands run on;
    ``await stop()`` releases (if not done yet), fails unfinished commands and closes.
    :attr:`handover` tells where the endpoint stands (serving, releasing, draining,
    stopped).
    """

    def __init__(
        self,
        connection: AmqpConnection,
        name: str,
        on_command: CommandHandler,
        *,
        publish_timeout: float = DEFAULT_PUBLISH_TIMEOUT,
        reconnect_wait: float = DEFAULT_RECONNECT_WAIT,
        ha: bool = False,
    ) -> None:
        self.connection = connection
        self.name = check_name(name)
        self.ha = ha
        self.on_command = on_command
        #: A handler that is a plain function (returning an awaitable) is called at once,
        #: in the delivery's own turn; a coroutine function's body runs in the task.
        self._starts_at_once = not inspect.iscoroutinefunction(on_command)
        self.publish_timeout = publish_timeout
        self.reconnect_wait = reconnect_wait
        self.queue_name = commands_queue_name(name)
        self._channel: AmqpChannel | None = None  # replies
        self._intake: AmqpChannel | None = None   # the commands queue's consumer
        self._queue: AbstractRobustQueue | None = None
        self._consumer_tag: str | None = None
        self._in_flight: set[IncomingCommand] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        #: Futures handlers returned (commands that need no task of their own).
        self._futures: set[asyncio.Future[Any]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None  # looked up once
        self.handover = Handover(name)
        self._releasing: asyncio.Task[None] | None = None

    @property
    def started(self) -> bool:
        return self._queue is not None

    @property
    def accepting(self) -> bool:
        """True while the endpoint consumes its commands queue (started, not released)."""
        return self._queue is not None and self.handover.accepting

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The event loop the endpoint runs on (found once, at :meth:`start`)."""
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        return self._loop

    @property
    def in_flight(self) -> list[IncomingCommand]:
        """Commands received and not finished yet."""
        return list(self._in_flight)

    async def start(self) -> ActorEndpoint:
        """Declare ``<name>_commands`` (exclusive) bound to ``command.<name>.#``, consume it."""
        if self._queue is not None:
            raise AmqpError(f"endpoint {self.name!r} already started")
        if not self.handover.accepting:
            raise AmqpError(f"endpoint {self.name!r} was released; build a new one")
        self._loop = asyncio.get_running_loop()  # the commands' (a look-up costs a getpid())
        self._channel = await self.connection.open_channel()
        try:
            self._intake = await self.connection.open_channel()
            if self.ha:
                self._queue, self._consumer_tag = await self._intake.declare_shared_queue(
                    self.queue_name, [commands_binding(self.name)], self._ack_and_accept)
            else:
                self._queue, self._consumer_tag = await self._intake.declare_exclusive_queue(
                    self.queue_name, [commands_binding(self.name)], self._accept, no_ack=True)
        except QueueInUse as exc:
            await self._close_channels()
            raise ActorNameInUse(
                f"cannot serve actor {self.name!r}: queue {self.queue_name!r} is owned by "
                "another connection (another instance of this actor is running)"
            ) from exc
        except BaseException:
            await self._close_channels()
            self.connection.release_queue_name(self.queue_name)
            raise
        log.info("actor endpoint %r consuming %r", self.name, self.queue_name)
        return self

    async def release(self) -> None:
        """Stop intake at once and give the actor's name up, losing no command.

        basic.cancel the consumer and unbind ``<name>_commands`` from the exchange; then,
        on throw-away channels, fetch and serve every message still in it and delete it
        with ``if_empty`` (a message that arrived meanwhile makes the broker refuse: fetch
        again, retry) until it is gone.
        Commands accepted before, or fetched here, keep running and are answered as
        usual. Returns once the name is free; calling it again waits for the same release.
        """
        if self._releasing is None:
            if not self.handover.can(HandoverEvent.RELEASE) or self._queue is None:
                return
            self.handover.handle(HandoverEvent.RELEASE)
            self._releasing = asyncio.ensure_future(self._release())
        await asyncio.shield(self._releasing)

    async def _release(self) -> None:
        if self.ha:
            await self._release_shared()
            return
        loop = asyncio.get_running_loop()
        started = loop.time()
        queue, self._queue = self._queue, None
        if queue is not None and self._consumer_tag is not None:
            try:  # deliveries sent before the broker's cancel-ok still reach _accept
                await asyncio.wait_for(queue.cancel(self._consumer_tag), 5)
            except Exception as exc:
                log.warning("%s: cancelling the consumer: %r", self.name, exc)
        if self._intake is not None:  # closed by us: aio-pika will not re-declare the queue
            await self.connection.release_channel(self._intake)
            self._intake = None
        served = attempts = 0
        unbound = False
        while self.handover.state is HandoverState.RELEASING:
            attempts += 1
            try:
                if not unbound:
                    # Nothing new is routed to the queue from here on (a clu client gets
                    # clu's routing failure, as between any release and the new actor's
                    # start): queue.delete with if_empty alone is not enough, since the
                    # broker drops a command routed to the queue that reaches it only
                    # after an if_empty delete (seen: one in ~2 releases under a stream).
                    unbound = await self._unbind()
                    await asyncio.sleep(RELEASE_SETTLE)
                fetched, deleted = await self._fetch_and_delete()
            except Exception as exc:
                if not self.connection.connected:
                    # The exclusive queue went with the broker connection; our intake
                    # channel is closed, so aio-pika does not declare it again.
                    log.warning("%s: broker connection lost while releasing %r: %r",
                                self.name, self.queue_name, exc)
                    break
                log.warning("%s: releasing %r: %r; retrying", self.name, self.queue_name, exc)
                await asyncio.sleep(0.1)
                continue
            served += fetched
            if deleted:
                break
            await asyncio.sleep(RELEASE_RETRY_PAUSE)
        self.connection.release_queue_name(self.queue_name)
        if self.handover.can(HandoverEvent.RELEASED):
            self.handover.handle(HandoverEvent.RELEASED)
        log.info("actor endpoint %r released %r in %.3f s (%d queued command(s) served, "
                 "%d delete attempt(s)); %d command(s) still running",
                 self.name, self.queue_name, loop.time() - started, served, attempts,
                 len(self._in_flight))

    async def _release_shared(self) -> None:
        """HA: a quorum queue refuses basic.get and queue.delete with if_empty (the
        latter closes the whole connection), so: unbind it (nothing new is routed to it:
        a clu client then gets clu's routing failure, as between any release and the new
        actor's start), let the active consumer -- this bridge or a standby -- take what
        is queued, and delete the queue once the broker counts no message in it."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        attempts = 0
        unbound = False
        while self.handover.state is HandoverState.RELEASING:
            attempts += 1
            try:
                unbound = unbound or await self._unbind()
                if await self._delete_when_empty():
                    break
            except Exception as exc:
                log.warning("%s: releasing %r: %r; retrying", self.name, self.queue_name, exc)
                await asyncio.sleep(0.1)
                continue
            await asyncio.sleep(RELEASE_RETRY_PAUSE)
        self._queue = None
        if self._intake is not None:
            await self.connection.release_channel(self._intake)
            self._intake = None
        self.connection.release_queue_name(self.queue_name)
        if self.handover.can(HandoverEvent.RELEASED):
            self.handover.handle(HandoverEvent.RELEASED)
        log.info("actor endpoint %r released the replicated %r in %.3f s (%d attempt(s)); "
                 "%d command(s) still running", self.name, self.queue_name,
                 loop.time() - started, attempts, len(self._in_flight))

    async def _unbind(self) -> bool:
        """Unbind the commands queue from the exchange (on a throw-away channel)."""
        async with self.connection.throwaway_channel() as probe:
            underlay = await probe.get_underlay_channel()
            await underlay.queue_unbind(queue=self.queue_name,
                                        exchange=self.connection.exchange_name,
                                        routing_key=commands_binding(self.name), timeout=5)
            return True

    async def _delete_when_empty(self) -> bool:
        """Delete the queue if the broker counts no message in it; True once it is gone."""
        async with self.connection.throwaway_channel() as probe:
            try:
                queue = await probe.declare_queue(self.queue_name, passive=True, timeout=5)
            except aiormq.exceptions.ChannelNotFoundEntity:
                return True
            if queue.declaration_result.message_count:
                return False  # the active consumer takes them: look again
            await probe.queue_delete(self.queue_name, if_unused=False, if_empty=False,
                                     timeout=5)
            return True

    async def _fetch_and_delete(self) -> tuple[int, bool]:
        """One round: serve what is queued, then delete if empty. Returns (served, deleted)."""
        served = 0
        try:
            async with self.connection.throwaway_channel() as probe:
                queue = await probe.get_queue(self.queue_name, ensure=False)
                underlay = await probe.get_underlay_channel()
                while True:
                    message = await underlay.basic_get(self.queue_name, no_ack=True,
                                                       timeout=5)
                    if not isinstance(message.delivery, aiormq.spec.Basic.GetOk):
                        break  # GetEmpty
                    served += 1
                    self._accept(message)
                try:
                    await queue.delete(if_unused=False, if_empty=True, timeout=5)
                except aiormq.exceptions.ChannelPreconditionFailed:
                    return served, False  # a message arrived after the last get
                except aiormq.exceptions.ChannelNotFoundEntity:
                    pass  # already gone (e.g. with a lost connection)
                return served, True
        except aiormq.exceptions.ChannelNotFoundEntity:
            return served, True

    async def stop(self, reason: str | None = None,
                   event: HandoverEvent = HandoverEvent.STOP) -> None:
        """Release (if not done yet), fail unfinished commands with ``reason``, close.

        ``event`` says why, for :attr:`handover`: ``stop`` (the default: the bridge or the
        endpoint's owner stops), ``idle`` (nothing runs any more) or ``limit`` (the drain
        limit ran out).
        """
        if self._channel is None:
            return
        if self.ha and self._releasing is None and self._queue is not None:
            await self._leave()
        if self._queue is not None or self._releasing is not None:
            try:
                await asyncio.wait_for(self.release(), STOP_RELEASE_LIMIT)
            except Exception as exc:
                log.warning("%s: could not release %r before stopping: %r", self.name,
                            self.queue_name, exc)
        if self.handover.can(event):
            self.handover.handle(event)
        elif self.handover.can(HandoverEvent.STOP):
            self.handover.handle(HandoverEvent.STOP)
        error = reason or f"actor {self.name!r} is shutting down; command aborted"
        for command in list(self._in_flight):
            try:
                await asyncio.wait_for(command.fail(error), 5)
            except Exception as exc:
                log.warning("%s: could not fail command %s at stop: %r", self.name, command, exc)
        for task in list(self._tasks):
            task.cancel()
        for future in list(self._futures):
            future.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._releasing is not None and not self._releasing.done():
            # The release did not finish in time: delete regardless (logged).
            self._releasing.cancel()
            await asyncio.gather(self._releasing, return_exceptions=True)
            log.error("%s: deleting %r although the release did not finish: messages still "
                      "queued in it are lost", self.name, self.queue_name)
            await self._delete_now()
        await self._close_channels()
        self.connection.release_queue_name(self.queue_name)

    async def _leave(self) -> None:
        """HA: stop consuming and leave the replicated queue to the standby bridges."""
        queue, self._queue = self._queue, None
        if queue is not None and self._consumer_tag is not None:
            try:
                await asyncio.wait_for(queue.cancel(self._consumer_tag), 5)
            except Exception as exc:
                log.warning("%s: cancelling the consumer: %r", self.name, exc)
        if self._intake is not None:
            await self.connection.release_channel(self._intake)
            self._intake = None
        self.connection.release_queue_name(self.queue_name)
        log.info("actor endpoint %r left %r to the standby bridges", self.name,
                 self.queue_name)

    async def _delete_now(self) -> None:
        try:
            async with self.connection.throwaway_channel() as probe:
                await probe.queue_delete(self.queue_name, if_unused=False, if_empty=False,
                                         timeout=5)
        except Exception as exc:
            log.debug("%s: deleting queue: %r", self.name, exc)

    async def _close_channels(self) -> None:
        for channel in (self._intake, self._channel):
            if channel is not None:
                await self.connection.release_channel(channel)
        self._intake = self._channel = None

    async def __aenter__(self) -> ActorEndpoint:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def broadcast(
        self, code: str, body: Mapping[str, Any] | None = None, internal: bool = False
    ) -> None:
        """Publish a reply not tied to a command: ``reply.broadcast``, null ids."""
        await self._publish(ReplyMessage.broadcast_reply(code, body, self.name, internal))

    # -- internals ---------------------------------------------------------------------

    async def _publish(self, reply: ReplyMessage) -> None:
        if self._channel is None:
            raise AmqpError(f"endpoint {self.name!r} is not started")
        await self._channel.publish(reply_to_message(reply), reply.routing_key(),
                                    mandatory=False, timeout=self.publish_timeout,
                                    reconnect_wait=self.reconnect_wait)

    def _finished(self, command: IncomingCommand) -> None:
        self._in_flight.discard(command)

    def _ack_and_accept(self, message: DeliveredMessage) -> None:
        """Consumer callback of the shared (``ha``) queue, whose deliveries need acks,
        called from the channel's reader: never raises (a failure here would stop
        nothing but logs), never blocks.

        The ack is written first (nothing waits for it: aio-pika's ack waits for
        aiormq's writer task to send it), so that it leaves before anything the command
        makes the bridge send (at most once: protocol_specs/amqp.md); then
        :meth:`_accept`.
        """
        try:
            tag = message.delivery.delivery_tag  # type: ignore[union-attr]
            writer.ack(message.channel, tag)  # type: ignore[arg-type]
        except Exception as exc:
            log.warning("%s: could not ack delivery: %r", self.name, exc)
        self._accept(message)

    def _accept(self, message: DeliveredMessage) -> None:
        """Start serving one message (a delivery, or one fetched while releasing); a
        malformed one is answered with ``f`` (from a task). The consumer callback of the
        exclusive commands queue (no acks), called from the channel's reader: never
        raises, never blocks. The command runs in a task of its own (commands must
        outlive the intake channel, and the channel reads nothing while this runs); a
        handler that starts at once (see :class:`ActorEndpoint`) sends the command on
        before this returns."""
        try:
            command = incoming_command(message)
        except MessageError as err:
            self._spawn(self._reject(message, err), "reject")
            return
        except Exception as exc:  # pragma: no cover - decode_command only raises MessageError
            log.exception("%s: unexpected error decoding a delivery", self.name)
            self._spawn(self._reject(message, MessageError(f"undecodable message: {exc!r}")),
                        "reject")
            return
        incoming = IncomingCommand(self, command)
        self._in_flight.add(incoming)
        work: Awaitable[None] | None = None
        if self._starts_at_once:
            try:
                work = self.on_command(incoming)
            except Exception as exc:  # failed before its first await
                self._handler_failed(incoming, exc)
                return
            if asyncio.isfuture(work):  # nothing to run: its end is watched, no task
                self._futures.add(work)  # type: ignore[arg-type]
                work.add_done_callback(  # type: ignore[union-attr]
                    functools.partial(self._future_done, incoming))
                return
        self._spawn(self._run(incoming, work), str(command.command_id))

    def _future_done(self, command: IncomingCommand, future: asyncio.Future[Any]) -> None:
        """The future a handler returned for ``command`` is done: as :meth:`_run` ends."""
        self._futures.discard(future)
        if future.cancelled():
            return
        exc = future.exception()
        if exc is not None:
            self._handler_failed(command, exc)

    def _handler_failed(self, command: IncomingCommand, exc: BaseException) -> None:
        """Outside a task: log why ``command``'s handler failed and fail it in one."""
        self._log_failure(command, exc)
        if not command.done:
            self._spawn(self._fail_for(command, exc), f"{command.command_id}:failed")

    def _spawn(self, coro: Awaitable[None], what: str) -> None:
        task = self.loop.create_task(coro, name=f"{self.name}:{what}")  # type: ignore[arg-type]
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, command: IncomingCommand, work: Awaitable[None] | None) -> None:
        """Await the command's handler (``work``: what it returned when it started at
        once, else None: call it now); fail the command if it raises."""
        try:
            await (self.on_command(command) if work is None else work)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._log_failure(command, exc)
            await self._fail_for(command, exc)

    def _log_failure(self, command: IncomingCommand, exc: BaseException) -> None:
        """Log why ``command``'s handler failed."""
        if isinstance(exc, AmqpUnavailable):  # the broker, not the handler: no traceback
            log.error("%s: could not deliver a reply of %r: %s", self.name, command, exc)
        else:
            log.error("%s: command handler failed for %r", self.name, command, exc_info=exc)

    async def _fail_for(self, command: IncomingCommand, exc: BaseException) -> None:
        """Fail ``command`` (unless it has ended) because its handler raised ``exc``."""
        if command.done:
            return
        try:
            await command.fail(
                f"Command {command.command_string!r} failed because of an uncaught "
                f"error '{type(exc).__name__}: {exc}'."
            )
        except Exception as exc2:
            log.error("%s: could not fail %r: %r", self.name, command, exc2)

    async def _reject(self, message: DeliveredMessage, err: MessageError) -> None:
        """Answer a malformed delivery with ``f`` (to its commander, else broadcast)."""
        error = f"Rejected message on {self.queue_name!r}: {err.reason}"
        log.error(
            "%s: %s (routing_key=%r, headers=%r, body=%r)",
            self.name, error, message.routing_key, message.header.properties.headers,
            message.body[:200],
        )
        reply = ReplyMessage(
            message_code=FAILED,
            commander_id=err.commander_id,
            command_id=err.command_id if err.commander_id is not None else None,
            sender=self.name,
            internal=err.internal,
            body={"error": error},
        )
        try:
            await self._publish(reply)
        except Exception as exc:
            log.error("%s: could not publish the rejection of a message: %r", self.name, exc)

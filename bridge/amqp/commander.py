"""Command clu actors over AMQP, like clu's ``AMQPClient``.

:class:`AmqpCommander` owns the exclusive queue ``<name>_replies``, sends commands to
``command.<actor>`` and tracks them by command id (= correlation id, as clu).

What the queue hears: with ``hear_all`` (the default) it is bound to ``reply.#`` and
sees every reply on the exchange, as every clu client does. Without it (the bridge),
it is bound to ``reply.broadcast`` and, before the first command to an actor is
published, to ``reply.#.<actor>`` (every clu-style commander's replies from that
actor; see :func:`~bridge.protocol.clu_messages.replies_binding_for`), plus what
:meth:`AmqpCommander.listen_to` asks for: a process that publishes replies itself
(the bridge's faces) then does not hear its own replies again, nor unrelated traffic.
The queue is consumed without acknowledgements (exclusive: nothing to redeliver).

Failures are always terminal, never silent hangs:

* no queue bound for the actor (mandatory publish returned): the command fails at
  once with ``{"error": "Failed routing message to consumer '<actor>'."}``; like clu,
  that fake ``f`` reply is also published to ``reply.<name>`` for other listeners;
* ``time_limit`` expired: the command fails locally;
* the connection to the broker is lost: every command in flight fails locally. Its
  exclusive replies queue disappears with the connection, so replies published while
  disconnected are lost and the command could never finish. After aio-pika has
  reconnected (queue and binding restored) new commands work again; while it is
  reconnecting, ``send_command`` waits up to ``publish_timeout`` and then fails.
  A command is published only once the replies queue is back (it can come back
  later than the link: see ``AmqpConnection.wait_queue_in_place``);
* the broker lost the replies queue while the link stayed up (found by the
  connection's queue audit, e.g. a node's clean-up after a failover): every command
  in flight fails, the queue is declared again.

Publishing: while the link, the replies queue and its binding for the actor are in
place, a command's frames (:class:`~bridge.amqp.frames.CommandFrames`, the bytes aio-pika
wrote for it, encoded from cached parts) are written at once and its confirm is handled
by a callback; otherwise it waits in a task as described above (later commands queue
behind it, so the order stays).

Commands are tracked with the transport-agnostic core: each one is a
:class:`bridge.core.CommandHandle` in a :class:`bridge.core.CommandTable` keyed by its
command id, and every reply is a :class:`bridge.core.Reply` (the JSON body is its JSON
form). Local failures end the handle with a synthetic ``f {"error": ...}`` reply
(sender = the target actor) through ``CommandHandle.fail``; reply listeners only
receive what actually arrives from the broker.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from typing import Any

import aio_pika
from aio_pika.abc import AbstractRobustQueue
from aiormq.abc import DeliveredMessage

from bridge.amqp.connection import (
    DEFAULT_PUBLISH_TIMEOUT,
    AmqpChannel,
    AmqpConnection,
    AmqpError,
    AmqpUnavailable,
    QueueInUse,
    Unroutable,
)
from bridge.amqp.frames import CommandFrames, new_message_id
from bridge.amqp.presence import amqp_actor_present as actor_present
from bridge.amqp.wire import command_to_message, incoming_reply, reply_from_message
from bridge.core.commands import (
    CommandHandle,
    CommandTable,
    ReplyCallback,
    is_awaitable_result,
)
from bridge.core.replies import Reply
from bridge.protocol.clu_messages import (
    BROADCAST_ROUTING_KEY,
    CONTENT_TYPE,
    FAILED,
    MAX_SHORT_STRING,
    REPLIES_BINDING,
    CommandMessage,
    MessageError,
    actor_replies_binding,
    check_name,
    command_routing_key,
    default_commander_id,
    encode_json,
    fits_short_string,
    replies_binding_for,
    replies_queue_name,
    reply_routing_key,
    routing_failure_body,
    usable_commander_id,
)

log = logging.getLogger(__name__)

#: How often actors with commands in flight are checked for presence (seconds).
DEFAULT_WATCH_INTERVAL = 1.0

#: Encoders of (commander id, actor) kept at most (the cache starts again when full).
MAX_CACHED_FRAMES = 1024

#: ``listener(reply)`` for every reply heard on ``reply.#`` (sync or async).
ReplyListener = Callable[[Reply], Any]


class CommanderNameInUse(QueueInUse):
    """Another client with the same name is connected (its replies queue exists)."""


def _invoke(callback: Callable[..., Any], *args: Any) -> None:
    """Call a sync or async callback; log its errors."""
    try:
        result = callback(*args)
        if is_awaitable_result(result):
            task = asyncio.ensure_future(result)
            task.add_done_callback(
                lambda t: t.cancelled()
                or t.exception() is None
                or log.error("reply callback failed", exc_info=t.exception())
            )
    except Exception:
        log.exception("reply callback %r failed", callback)


def _actor_binding(actor: str | None) -> str:
    """The binding that hears ``actor``'s replies to clu-style commanders (all: None)."""
    return REPLIES_BINDING if actor is None else actor_replies_binding(actor)


class AmqpCommander:
    """A clu-style AMQP client named ``name``: send commands, hear every reply."""

    def __init__(
        self,
        connection: AmqpConnection,
        name: str,
        *,
        publish_timeout: float = DEFAULT_PUBLISH_TIMEOUT,
        watch_interval: float | None = DEFAULT_WATCH_INTERVAL,
        hear_all: bool = True,
    ) -> None:
        self.connection = connection
        self.name = check_name(name)
        self.hear_all = hear_all
        #: Bindings of the replies queue, each done (or being made: a future).
        self._bindings: dict[str, asyncio.Future[None]] = {}
        self.publish_timeout = publish_timeout
        self.watch_interval = watch_interval
        self._watchdog: asyncio.Task[None] | None = None
        self.queue_name = replies_queue_name(name)
        #: Commands in flight by command id; an entry goes when its command ends.
        self.running: CommandTable[str] = CommandTable()
        self._listeners: list[ReplyListener] = []
        self._publishing: set[asyncio.Task[None]] = set()
        self._channel: AmqpChannel | None = None
        self._queue: AbstractRobustQueue | None = None
        self._consumer_tag: str | None = None
        self._command_frames: dict[tuple[str, str], CommandFrames] = {}

    @property
    def started(self) -> bool:
        return self._queue is not None

    async def start(self) -> AmqpCommander:
        """Declare ``<name>_replies`` (exclusive), bind it (``reply.#``, or
        ``reply.broadcast`` without ``hear_all``) and consume it."""
        if self._queue is not None:
            raise AmqpError(f"commander {self.name!r} already started")
        self._channel = await self.connection.open_channel()
        first = REPLIES_BINDING if self.hear_all else BROADCAST_ROUTING_KEY
        try:
            self._queue, self._consumer_tag = await self._channel.declare_exclusive_queue(
                self.queue_name, [first], self._on_message, no_ack=True
            )
        except QueueInUse as exc:
            await self.connection.release_channel(self._channel)
            self._channel = None
            raise CommanderNameInUse(
                f"cannot start commander {self.name!r}: queue {self.queue_name!r} is owned "
                "by another connection (another client with this name is running)"
            ) from exc
        except BaseException:
            await self.connection.release_channel(self._channel)
            self.connection.release_queue_name(self.queue_name)
            self._channel = None
            raise
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        self._bindings = {first: done}
        self.connection.on_disconnect(self._on_disconnect)
        self.connection.on_queue_lost(self._on_queue_lost)
        if self.watch_interval:
            self._watchdog = asyncio.ensure_future(self._watch_actors())
        return self

    async def stop(self) -> None:
        """Fail commands in flight, stop consuming, delete the replies queue."""
        if self._channel is None:
            return
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        self.connection.remove_listener(self._on_disconnect)
        self.connection.remove_listener(self._on_queue_lost)
        self.running.fail_all(f"commander {self.name!r} stopped before the command finished")
        for task in list(self._publishing):
            task.cancel()
        queue, self._queue = self._queue, None
        for binding in self._bindings.values():
            binding.cancel()
        self._bindings = {}
        if queue is not None and self._consumer_tag is not None:
            try:
                await asyncio.wait_for(queue.cancel(self._consumer_tag), 5)
                await asyncio.wait_for(queue.delete(if_unused=False, if_empty=False), 5)
            except Exception as exc:
                log.debug("%s: releasing the replies queue: %r", self.name, exc)
        await self.connection.release_channel(self._channel)
        self.connection.release_queue_name(self.queue_name)
        self._channel = None

    async def __aenter__(self) -> AmqpCommander:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    def add_reply_listener(self, listener: ReplyListener) -> None:
        """Call ``listener(reply)`` for every valid reply received: what the queue is
        bound to (with ``hear_all`` all of ``reply.#``: broadcasts, other commanders'
        traffic, our own commands' replies; else see :meth:`listen_to`)."""
        if listener not in self._listeners:
            self._listeners.append(listener)

    def listen_to(self, actor: str | None) -> None:
        """Also hear the replies of every clu-style command to ``actor`` (``None``:
        everything). The binding is made in the background; replies published before
        it is in place are not heard (nothing waits for them)."""
        binding = _actor_binding(actor)
        task = asyncio.ensure_future(self.hear(binding))
        task.add_done_callback(lambda t: t.cancelled() or t.exception() is None or log.warning(
            "%s: could not bind %r: %r", self.name, binding, t.exception()))

    async def hear_actor(self, actor: str | None) -> None:
        """:meth:`hear` the replies of every clu-style command to ``actor`` (``None``:
        everything): the binding :meth:`listen_to` asks for in the background."""
        await self.hear(_actor_binding(actor))

    async def hear(self, binding: str) -> None:
        """Make sure the replies queue is bound with ``binding`` (once; concurrent
        callers wait for the same bind). Nothing to do with ``hear_all``."""
        if self.hear_all:
            return
        # A failed bind removes its entry (``_bind``), stop() clears them all: an entry
        # is a binding made or being made; ``reply.#`` covers every other.
        pending = self._bindings.get(binding) or self._bindings.get(REPLIES_BINDING)
        if pending is None:
            if self._channel is None or self._queue is None:
                raise AmqpError(f"commander {self.name!r} is not started")
            pending = self._bindings[binding] = asyncio.ensure_future(self._bind(binding))
        await asyncio.shield(pending)

    def hears(self, binding: str) -> bool:
        """Whether the replies queue is bound with ``binding`` (or with ``reply.#``, or
        the commander hears all): a bind that finished, not one still on its way."""
        if self.hear_all:
            return True
        for key in (binding, REPLIES_BINDING):
            pending = self._bindings.get(key)
            if pending is not None and pending.done() and not pending.cancelled() \
                    and pending.exception() is None:
                return True
        return False

    async def _bind(self, binding: str) -> None:
        assert self._channel is not None and self._queue is not None
        try:
            await asyncio.wait_for(self._channel.bind(self._queue, binding),
                                   self.publish_timeout)
        except BaseException:
            if self._bindings.get(binding) is asyncio.current_task():
                del self._bindings[binding]
            raise
        log.debug("%s: replies queue bound to %r", self.name, binding)

    def remove_reply_listener(self, listener: ReplyListener) -> None:
        """Forget ``listener``; no error if unknown."""
        if listener in self._listeners:
            self._listeners.remove(listener)

    async def send_command(
        self,
        actor: str,
        command_string: str,
        commander_id: str | None = None,
        command_id: str | None = None,
        internal: bool = False,
        callback: ReplyCallback | None = None,
        time_limit: float | None = None,
        write_to_log: bool = True,
    ) -> CommandHandle:
        """Send ``command_string`` to ``actor`` and return its handle once published.

        Defaults as clu: ``commander_id = "<name>.<actor>"``, ``command_id`` a new
        UUID4 string. ``callback(reply)`` (a :class:`~bridge.core.Reply`) runs for each
        reply of this command. The returned handle may already be failed (unroutable,
        broker unreachable). Raises ``ValueError`` for a bad actor name, a blank command
        (a clu actor never answers it) or a command id already in flight, ``AmqpError``
        if the commander is not started.
        """
        handle, message = self._track(actor, command_string, commander_id, command_id,
                                      internal, callback, time_limit, write_to_log)
        confirmation = self._publish_now(handle, message)
        if confirmation is None:
            await self._publish(handle, message)
        else:  # its callback (added first) has ended the handle if the publish failed
            await asyncio.wait((confirmation,))
        return handle

    def submit_command(
        self,
        actor: str,
        command_string: str,
        commander_id: str | None = None,
        command_id: str | None = None,
        internal: bool = False,
        callback: ReplyCallback | None = None,
        time_limit: float | None = None,
        write_to_log: bool = True,
        handle: CommandHandle | None = None,
    ) -> CommandHandle:
        """Like :meth:`send_command`, but return the handle at once: the command is
        written now if nothing needs waiting for (see :meth:`_publish_now`), else
        published in a task.

        The command is tracked before this returns, so no reply can be missed; a
        publishing failure ends the handle later, never here. Raises as
        :meth:`send_command` for a bad name, a duplicate id or a stopped commander.
        ``handle``: track this handle (made by the caller for this ``actor``,
        ``command_string`` and ``command_id``, with its own callback) instead of making
        one, so that a relay keeps one handle per command, not one wrapping another.
        """
        handle, message = self._track(actor, command_string, commander_id, command_id,
                                      internal, callback, time_limit, write_to_log, handle)
        if self._publish_now(handle, message) is None:
            task = asyncio.ensure_future(self._publish(handle, message))
            self._publishing.add(task)
            task.add_done_callback(self._publishing.discard)
        return handle

    # -- internals ---------------------------------------------------------------------

    def _track(
        self,
        actor: str,
        command_string: str,
        commander_id: str | None,
        command_id: str | None,
        internal: bool,
        callback: ReplyCallback | None,
        time_limit: float | None,
        write_to_log: bool,
        handle: CommandHandle | None = None,
    ) -> tuple[CommandHandle, CommandMessage]:
        """Check the arguments, make the handle (unless given) and put it in :attr:`running`."""
        check_name(actor)
        if not command_string.strip():
            raise ValueError("empty command (a clu actor never answers one)")
        if self._channel is None:
            raise AmqpError(f"commander {self.name!r} is not started")
        command_id = command_id or str(uuid.uuid4())
        commander_id = commander_id or default_commander_id(self.name, actor)
        if not usable_commander_id(commander_id):
            raise ValueError(f"commander id too long for AMQP ({len(commander_id)} characters): "
                             f"reply.<commander id> must fit a {MAX_SHORT_STRING}-byte routing key")
        if not fits_short_string(command_id):
            raise ValueError(f"command id too long for AMQP ({MAX_SHORT_STRING} bytes at most)")
        if command_id in self.running:
            raise ValueError(f"command id {command_id!r} is already in flight")
        message = CommandMessage(
            command_id=command_id,
            commander_id=commander_id,
            command_string=command_string,
            internal=internal,
            write_to_log=write_to_log,
            reply_to=self.queue_name,
        )
        if handle is None:
            handle = CommandHandle(actor, command_string, commander=message.commander_id,
                                   command_id=command_id, callback=callback)
        elif callback is not None or handle.command_id != command_id \
                or handle.actor != actor or handle.text != command_string or handle.done():
            raise ValueError(f"{handle!r} is not a running handle of command {command_id!r} "
                             f"to {actor!r} (or a callback was given too)")
        self.running.add(command_id, handle, time_limit)
        return handle, message

    def _frames(self, commander_id: str, actor: str) -> CommandFrames:
        """The frames of the commands ``commander_id`` sends to ``actor`` (cached)."""
        key = (commander_id, actor)
        frames = self._command_frames.get(key)
        if frames is None:
            if len(self._command_frames) >= MAX_CACHED_FRAMES:
                self._command_frames.clear()
            frames = self._command_frames[key] = CommandFrames(
                self.connection.exchange_name, command_routing_key(actor), commander_id,
                self.queue_name, mandatory=True)
            frames.binding = replies_binding_for(commander_id, actor)
        return frames

    def _bound(self, binding: str) -> bool:
        """True if the replies queue is bound for ``binding`` (what :meth:`hear` makes)."""
        if self.hear_all:
            return True
        done = self._bindings.get(binding) or self._bindings.get(REPLIES_BINDING)
        return (done is not None and done.done() and not done.cancelled()
                and done.exception() is None)

    def _publish_now(self, handle: CommandHandle,
                     message: CommandMessage) -> asyncio.Future[Any] | None:
        """Publish the command at once if nothing needs waiting for: the link and the
        replies queue are up, the queue is bound for the replies and no earlier command
        is still waiting to be published (the order stays). The frames are written now
        (:class:`~bridge.amqp.frames.CommandFrames`, the bytes :meth:`_publish` writes)
        and the broker's confirm is handled by a callback, with the same time limit and
        failures as :meth:`_publish`. Returns the confirm's future, or None if nothing was
        written (then :meth:`_publish`)."""
        channel = self._channel
        if channel is None or self._publishing:
            return None
        actor = handle.actor
        frames = self._frames(message.commander_id, actor)
        if not self._bound(frames.binding) or not self.connection.queue_in_place(
                self.queue_name):
            return None
        message_id = new_message_id()
        command_id, body = message.command_id, message.body()
        internal, write_to_log = message.internal, message.write_to_log
        try:
            confirmation = channel.publish_encoded_nowait(
                lambda number, size: frames.encode(number, size, command_id, body,
                                                   message_id, internal, write_to_log),
                message_id)
        except Exception as exc:  # the channel closed under us: nothing was written
            log.debug("%s: publishing at once failed (%r); publishing in a task", self.name,
                      exc)
            return None
        if confirmation is None:
            return None
        timeout = self.publish_timeout
        expired = False

        def time_out() -> None:  # as ``asyncio.timeout`` cancels the wait in publish()
            nonlocal expired
            expired = True
            confirmation.cancel()

        timer = None if timeout is None else confirmation.get_loop().call_later(
            timeout, time_out)

        def confirmed(future: asyncio.Future[Any]) -> None:
            if timer is not None:
                timer.cancel()
            if future.cancelled():
                exc: BaseException = TimeoutError() if expired else asyncio.CancelledError()
            else:
                exc = future.exception()  # type: ignore[assignment]
                if exc is None:
                    return
            self._publish_failed(handle, message, channel.publish_error(
                exc, command_routing_key(actor), message_id, timeout))

        confirmation.add_done_callback(confirmed)
        return confirmation

    def _publish_failed(self, handle: CommandHandle, message: CommandMessage,
                        exc: BaseException) -> asyncio.Task[None] | None:
        """End ``handle`` for a publish that failed with ``exc``; for a command nothing
        was bound for, also publish clu's routing failure (the task returned)."""
        actor = handle.actor
        if isinstance(exc, Unroutable):
            body = routing_failure_body(actor)
            handle.fail(body["error"])
            task = asyncio.ensure_future(self._publish_routing_failure(message, actor, body))
            self._publishing.add(task)
            task.add_done_callback(self._publishing.discard)
            return task
        elif isinstance(exc, AmqpUnavailable):
            handle.fail(f"Could not send the command to {actor!r}: {exc}")
        else:
            handle.fail(f"Could not send the command to {actor!r}: {exc!r}")
        return None

    async def _publish(self, handle: CommandHandle, message: CommandMessage) -> None:
        """Publish the command (mandatory); any failure ends ``handle`` with ``f``."""
        actor = handle.actor
        if self._channel is None:  # stopped meanwhile (the handle was failed then)
            handle.fail(f"Could not send the command to {actor!r}: "
                        f"commander {self.name!r} is not started")
            return
        try:
            # Its replies must be heard: after a reconnect, wait for the replies queue
            # itself to be back; bind for them (once per actor).
            await self.connection.wait_queue_in_place(self.queue_name, self.publish_timeout)
            await self.hear(replies_binding_for(message.commander_id, actor))
            await self._channel.publish(
                command_to_message(message),
                command_routing_key(actor),
                mandatory=True,
                timeout=self.publish_timeout,
                retry=False,
            )
        except Exception as exc:
            routing_failure = self._publish_failed(handle, message, exc)
            if routing_failure is not None:
                await routing_failure

    async def _watch_actors(self) -> None:
        """Fail the commands of an actor that went away (its commands queue has no consumer).

        A clu actor's commands queue is exclusive: when the actor's connection dies the
        broker deletes it, and the replies of its commands in flight can never come. clu
        clients then wait forever; we fail those commands within ``watch_interval``.
        """
        assert self.watch_interval
        while True:
            await asyncio.sleep(self.watch_interval)
            if not self.running or not self.connection.connected:
                continue
            actors = {h.actor for h in (self.running.get(k) for k in self.running) if h}
            for actor in actors:
                try:
                    present = await actor_present(self.connection, actor)
                except Exception as exc:  # broker trouble: the disconnect path handles it
                    log.debug("%s: presence check of %s failed: %r", self.name, actor, exc)
                    continue
                if present:
                    continue
                gone = [h for h in (self.running.get(k) for k in self.running)
                        if h is not None and h.actor == actor]
                if gone:
                    log.warning("%s: actor %s went away; failing %d command(s)", self.name,
                                actor, len(gone))
                for handle in gone:
                    handle.fail(f"Actor {actor!r} went away while the command was running "
                                "(no consumer on its command queue).")

    def _on_disconnect(self, exc: BaseException | None) -> None:
        if self.running:
            log.warning(
                "%s: failing %d command(s) in flight: connection to the broker lost",
                self.name, len(self.running),
            )
        self.running.fail_all(
            "Lost the connection to the AMQP broker while the command was running; "
            "its replies cannot be received."
        )

    def _on_queue_lost(self, name: str) -> None:
        if name != self.queue_name or not self.running:
            return
        log.warning("%s: failing %d command(s) in flight: the broker lost the replies queue",
                    self.name, len(self.running))
        self.running.fail_all(
            f"The AMQP broker lost this bridge's replies queue {name!r} (a node failure) "
            "while the command was running; its replies may be lost.")

    async def _publish_routing_failure(
        self, message: CommandMessage, actor: str, body: dict[str, str]
    ) -> None:
        """Publish clu's fake routing-failure reply to ``reply.<name>`` (best effort)."""
        if self._channel is None:
            return
        headers = message.headers()
        headers.update({"message_code": FAILED, "sender": actor})
        wire = aio_pika.Message(
            encode_json(body),
            content_type=CONTENT_TYPE,
            headers=headers,
            correlation_id=message.command_id,
        )
        try:
            await self._channel.publish(
                wire, reply_routing_key(self.name), mandatory=False,
                timeout=self.publish_timeout, retry=False,
            )
        except Exception as exc:
            log.debug("%s: could not publish routing failure: %r", self.name, exc)

    def _on_message(self, message: DeliveredMessage) -> None:
        """Consumer callback for ``<name>_replies`` (no acks), called from the channel's
        reader: never raises, never blocks."""
        try:
            decoded = incoming_reply(message)
        except MessageError as err:
            log.error(
                "%s: invalid reply dropped (%s): routing_key=%r headers=%r body=%r",
                self.name, err.reason, message.routing_key, message.header.properties.headers,
                message.body[:200],
            )
            return
        except Exception:
            log.exception("%s: undecodable reply dropped", self.name)
            return
        reply = reply_from_message(decoded)
        if reply.command_id is not None:
            self.running.reply(reply.command_id, reply)
        for listener in list(self._listeners):
            _invoke(listener, reply)

"""Command clu actors over AMQP, like clu's ``AMQPClient``.

:class:`AmqpCommander` owns the exclusive queue ``<name>_replies`` bound to ``reply.#``
(so it sees every reply on the exchange, as every clu client does), sends commands to
``command.<actor>`` and tracks them by command id (= correlation id, as clu).

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

Local failures add a synthetic ``f`` :class:`ReplyMessage` (sender = the target actor)
to the handle's replies and pass it to its callback; reply listeners only receive what
actually arrives from the broker.
"""

from __future__ import annotations

import asyncio
import enum
import inspect
import logging
import uuid
from collections.abc import Callable, Generator
from typing import Any

import aio_pika
from aio_pika.abc import AbstractIncomingMessage, AbstractRobustQueue

from bridge.amqp.connection import (
    DEFAULT_PUBLISH_TIMEOUT,
    AmqpChannel,
    AmqpConnection,
    AmqpError,
    AmqpUnavailable,
    QueueInUse,
    Unroutable,
)
from bridge.amqp.wire import command_to_message, incoming_reply
from bridge.protocol.clu_messages import (
    CONTENT_TYPE,
    FAILED,
    REPLIES_BINDING,
    CommandMessage,
    MessageError,
    ReplyMessage,
    check_name,
    command_routing_key,
    default_commander_id,
    encode_json,
    is_failure,
    is_terminal,
    replies_queue_name,
    reply_routing_key,
    routing_failure_body,
)

log = logging.getLogger(__name__)

ReplyCallback = Callable[[ReplyMessage], Any]


class CommanderNameInUse(QueueInUse):
    """Another client with the same name is connected (its replies queue exists)."""


class CommandStatus(str, enum.Enum):
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


def _invoke(callback: Callable[..., Any], *args: Any) -> None:
    """Call a sync or async callback; log its errors."""
    try:
        result = callback(*args)
        if inspect.isawaitable(result):
            task = asyncio.ensure_future(result)
            task.add_done_callback(
                lambda t: t.cancelled()
                or t.exception() is None
                or log.error("reply callback failed", exc_info=t.exception())
            )
    except Exception:
        log.exception("reply callback %r failed", callback)


class AmqpCommandHandle:
    """A command sent by :class:`AmqpCommander`.

    Awaiting the handle waits until the command finishes (``:``, ``f`` or ``!``) and
    returns the handle. ``status``, ``replies`` (every reply, in arrival order),
    ``done()``, ``succeeded``, ``error`` (the ``error`` text of a failure, if any).
    """

    def __init__(
        self,
        actor: str,
        message: CommandMessage,
        callback: ReplyCallback | None = None,
    ) -> None:
        self.actor = actor
        self.message = message
        self.callback = callback
        self.status = CommandStatus.RUNNING
        self.replies: list[ReplyMessage] = []
        self.error: str | None = None
        self._future: asyncio.Future[AmqpCommandHandle] = asyncio.get_running_loop().create_future()
        self._timer: asyncio.TimerHandle | None = None

    @property
    def command_id(self) -> str:
        return self.message.command_id

    @property
    def commander_id(self) -> str:
        return self.message.commander_id

    @property
    def command_string(self) -> str:
        return self.message.command_string

    @property
    def succeeded(self) -> bool:
        return self.status is CommandStatus.DONE

    def done(self) -> bool:
        """True once the command has finished (successfully or not)."""
        return self._future.done()

    async def wait(self, timeout: float | None = None) -> AmqpCommandHandle:
        """Wait for the command to finish; ``TimeoutError`` after ``timeout`` s (the
        command itself keeps running; use ``time_limit`` to fail it)."""
        async with asyncio.timeout(timeout):
            return await asyncio.shield(self._future)

    def __await__(self) -> Generator[Any, None, AmqpCommandHandle]:
        return asyncio.shield(self._future).__await__()

    def _add_reply(self, reply: ReplyMessage) -> None:
        if self.done():
            return
        self.replies.append(reply)
        if self.callback is not None:
            _invoke(self.callback, reply)
        if is_terminal(reply.message_code):
            if is_failure(reply.message_code):
                self.status = CommandStatus.FAILED
                err = reply.body.get("error")
                self.error = str(err) if err is not None else f"failed with code {reply.message_code!r}"
            else:
                self.status = CommandStatus.DONE
            if self._timer is not None:
                self._timer.cancel()
            self._future.set_result(self)

    def _fail_locally(self, error: str) -> None:
        """Finish with a synthetic ``f {"error": error}`` reply (nothing is published)."""
        if self.done():
            return
        self._add_reply(
            ReplyMessage(
                message_code=FAILED,
                commander_id=self.commander_id,
                command_id=self.command_id,
                sender=self.actor,
                internal=self.message.internal,
                body={"error": error},
            )
        )

    def __repr__(self) -> str:
        return (
            f"<AmqpCommandHandle {self.actor} {self.command_string!r} id={self.command_id} "
            f"status={self.status.value} replies={len(self.replies)}>"
        )


class AmqpCommander:
    """A clu-style AMQP client named ``name``: send commands, hear every reply."""

    def __init__(
        self,
        connection: AmqpConnection,
        name: str,
        *,
        publish_timeout: float = DEFAULT_PUBLISH_TIMEOUT,
    ) -> None:
        self.connection = connection
        self.name = check_name(name)
        self.publish_timeout = publish_timeout
        self.queue_name = replies_queue_name(name)
        self.running: dict[str, AmqpCommandHandle] = {}
        self._listeners: list[ReplyCallback] = []
        self._channel: AmqpChannel | None = None
        self._queue: AbstractRobustQueue | None = None
        self._consumer_tag: str | None = None

    @property
    def started(self) -> bool:
        return self._queue is not None

    async def start(self) -> AmqpCommander:
        """Declare ``<name>_replies`` (exclusive) bound to ``reply.#`` and consume it."""
        if self._queue is not None:
            raise AmqpError(f"commander {self.name!r} already started")
        self._channel = await self.connection.open_channel()
        try:
            self._queue, self._consumer_tag = await self._channel.declare_exclusive_queue(
                self.queue_name, [REPLIES_BINDING], self._on_message
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
        self.connection.on_disconnect(self._on_disconnect)
        return self

    async def stop(self) -> None:
        """Fail commands in flight, stop consuming, delete the replies queue."""
        if self._channel is None:
            return
        self.connection.remove_listener(self._on_disconnect)
        self._fail_all(f"commander {self.name!r} stopped before the command finished")
        queue, self._queue = self._queue, None
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

    def add_reply_listener(self, listener: ReplyCallback) -> None:
        """Call ``listener(reply)`` for every valid reply received (all of ``reply.#``:
        broadcasts, other commanders' traffic, our own commands' replies)."""
        if listener not in self._listeners:
            self._listeners.append(listener)

    def remove_reply_listener(self, listener: ReplyCallback) -> None:
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
    ) -> AmqpCommandHandle:
        """Send ``command_string`` to ``actor`` and return its handle once published.

        Defaults as clu: ``commander_id = "<name>.<actor>"``, ``command_id`` a new
        UUID4 string. ``callback(reply)`` runs for each reply of this command. The
        returned handle may already be failed (unroutable, broker unreachable).
        Raises ``ValueError`` for a bad actor name or a command id already in flight.
        """
        check_name(actor)
        if self._channel is None:
            raise AmqpError(f"commander {self.name!r} is not started")
        command_id = command_id or str(uuid.uuid4())
        if command_id in self.running:
            raise ValueError(f"command id {command_id!r} is already in flight")
        message = CommandMessage(
            command_id=command_id,
            commander_id=commander_id or default_commander_id(self.name, actor),
            command_string=command_string,
            internal=internal,
            write_to_log=write_to_log,
            reply_to=self.queue_name,
        )
        handle = AmqpCommandHandle(actor, message, callback)
        self.running[command_id] = handle
        handle._future.add_done_callback(lambda _f: self._forget(handle))
        if time_limit is not None:
            handle._timer = asyncio.get_running_loop().call_later(
                time_limit,
                handle._fail_locally,
                f"Command {command_string!r} to {actor!r} timed out after {time_limit} s "
                "without a terminal reply.",
            )
        try:
            await self._channel.publish(
                command_to_message(message),
                command_routing_key(actor),
                mandatory=True,
                timeout=self.publish_timeout,
                retry=False,
            )
        except Unroutable:
            body = routing_failure_body(actor)
            handle._fail_locally(body["error"])
            await self._publish_routing_failure(message, actor, body)
        except AmqpUnavailable as exc:
            handle._fail_locally(f"Could not send the command to {actor!r}: {exc}")
        except Exception as exc:
            handle._fail_locally(f"Could not send the command to {actor!r}: {exc!r}")
        return handle

    # -- internals ---------------------------------------------------------------------

    def _forget(self, handle: AmqpCommandHandle) -> None:
        if self.running.get(handle.command_id) is handle:
            del self.running[handle.command_id]
        if handle._timer is not None:
            handle._timer.cancel()

    def _fail_all(self, error: str) -> None:
        for handle in list(self.running.values()):
            handle._fail_locally(error)

    def _on_disconnect(self, exc: BaseException | None) -> None:
        if self.running:
            log.warning(
                "%s: failing %d command(s) in flight: connection to the broker lost",
                self.name, len(self.running),
            )
        self._fail_all(
            "Lost the connection to the AMQP broker while the command was running; "
            "its replies cannot be received."
        )

    async def _publish_routing_failure(
        self, message: CommandMessage, actor: str, body: dict[str, str]
    ) -> None:
        """Publish clu's fake routing-failure reply to ``reply.<name>`` (best effort)."""
        assert self._channel is not None
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

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        """Consumer callback for ``<name>_replies``: never raises."""
        try:
            await message.ack()
        except Exception as exc:
            log.warning("%s: could not ack reply: %r", self.name, exc)
        try:
            reply = incoming_reply(message)
        except MessageError as err:
            log.error(
                "%s: invalid reply dropped (%s): routing_key=%r headers=%r body=%r",
                self.name, err.reason, message.routing_key, message.headers, message.body[:200],
            )
            return
        except Exception:
            log.exception("%s: undecodable reply dropped", self.name)
            return
        if reply.command_id is not None:
            handle = self.running.get(reply.command_id)
            if handle is not None:
                handle._add_reply(reply)
        for listener in list(self._listeners):
            _invoke(listener, reply)

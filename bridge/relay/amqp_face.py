"""Serve a legacy actor on AMQP: clu clients command it as if it were a clu actor.

The face consumes ``<actor>_commands`` through an :class:`~bridge.amqp.endpoint.ActorEndpoint`
and sends each command to a *target* that reaches the legacy actor (an
:class:`~bridge.legacy.actor_link.ActorLink` in direct mode, the Tron hub connection in
hub mode). Every reply comes back, in order, as a clu JSON reply to
``reply.<commander_id>``; the actor's unsolicited output becomes ``reply.broadcast``
with ``sender=<actor>``, and so do its replies to commands others sent it through the
same link (a hub-port commander, a local actor), as Tron shows every commander every
reply. The target guarantees one terminal reply per command (it fails
commands whose actor is down, drops or times out), so the AMQP commander never waits
in silence.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

import aio_pika

from ..amqp.connection import DEFAULT_PUBLISH_TIMEOUT, AmqpConnection, AmqpError, AmqpUnavailable
from ..amqp.endpoint import (
    DEFAULT_RECONNECT_WAIT,
    ActorEndpoint,
    IncomingCommand,
    delivery_unknown,
)
from ..core import CommandHandle, IssuedCommands, Reply
from ..core.handover import Handover, HandoverEvent

log = logging.getLogger(__name__)


#: Replies of one command published at a time without their broker confirm yet.
PUBLISH_WINDOW = 256


def _consume_outcome(task: asyncio.Future[Any]) -> None:
    """Retrieve the outcome of a publish nobody awaits any more (no "never retrieved")."""
    if not task.cancelled():
        task.exception()


def amqp_code(code: str) -> str:
    """The code as clu expects it: lower case (the TCC writes ``I``, ``W``, ``F``)."""
    return _LOWER.get(code) or code.lower()


_LOWER = {c: c.lower() for c in ">iwdef:!IWDEF"}


def _lost_link(error: BaseException) -> bool:
    """True for the errors of a publish whose connection or channel went away."""
    return isinstance(error, aio_pika.exceptions.CONNECTION_EXCEPTIONS) \
        and not isinstance(error, AmqpError)


class _ReplyPublisher:
    """Publishes the replies of one command as they arrive, in order.

    Each reply is written from the target's callback (no task, no queue: its frames go
    onto the connection's write queue at once, several replies per socket write,
    :meth:`IncomingCommand.reply_nowait`), without waiting for the broker's confirm of
    the one before, at most PUBLISH_WINDOW unconfirmed; replies beyond the window wait
    here, in order. A reply that cannot go out at once (link down) and the replies
    after it go one by one through the patient path (:meth:`IncomingCommand.resend`,
    which waits for the broker to come back). A reply written whose link drops before
    its confirm is not sent again (``DeliveryUnknown``, as :meth:`AmqpChannel.publish`:
    no duplicates). One timer watches the oldest unconfirmed reply (``publish_timeout``).
    :attr:`finished` is done once the terminal reply and every one before it are
    confirmed, or has the first publish error.
    """

    def __init__(self, command: IncomingCommand, counters: dict[str, int]) -> None:
        self.command = command
        self.counters = counters
        self.loop = command.endpoint.loop
        self.finished: asyncio.Future[None] = self.loop.create_future()
        #: (reply, confirm future, time published), oldest first.
        self._unconfirmed: deque[tuple[Reply, asyncio.Future[Any], float]] = deque()
        self._waiting: deque[Reply] = deque()
        self._ended = False  # the terminal reply arrived
        self._patient: asyncio.Task[None] | None = None  # publishing one by one
        self._timer: asyncio.TimerHandle | None = None

    def add(self, reply: Reply) -> None:
        """The target's reply callback."""
        if self.finished.done() or self._ended:
            return
        self.counters["replies"] += 1
        self._ended = reply.is_terminal
        if self._waiting or self._patient is not None \
                or len(self._unconfirmed) >= PUBLISH_WINDOW:
            self._waiting.append(reply)
        else:
            self._start(reply)

    def closed(self, _finished: asyncio.Future[None]) -> None:
        """:meth:`close`, as a done callback of :attr:`finished`."""
        self.close()

    def close(self) -> None:
        """Stop: replies not yet published are dropped (after a failure or a cancel)."""
        self._waiting.clear()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._patient is not None:
            self._patient.cancel()
        if not self.finished.done():
            self.finished.cancel()

    def _start(self, reply: Reply) -> None:
        code = amqp_code(reply.code)
        confirm = self.command.reply_nowait(code, reply.json)
        if confirm is None:  # cannot go out now: this one and the rest, patiently
            self._waiting.appendleft(reply)
            self._go_patient()
            return
        self._unconfirmed.append((reply, confirm, self.loop.time()))
        confirm.add_done_callback(self._confirmed)
        if self._timer is None:
            self._arm_timer()

    def _confirmed(self, confirm: asyncio.Future[Any]) -> None:
        if self.finished.done() or self._patient is not None:
            _consume_outcome(confirm)  # a patient publish took over (or it is over)
            return
        if confirm.cancelled():
            self.finished.cancel()
            return
        error = confirm.exception()
        if error is not None:
            self.finished.set_exception(
                delivery_unknown(self.command, error) if _lost_link(error) else error)
            return
        unconfirmed = self._unconfirmed
        while unconfirmed and unconfirmed[0][1].done():
            unconfirmed.popleft()
        while self._waiting and len(unconfirmed) < PUBLISH_WINDOW \
                and self._patient is None:
            self._start(self._waiting.popleft())
        self._check_finished()

    def _check_finished(self) -> None:
        if self._ended and not self._waiting and not self._unconfirmed \
                and self._patient is None and not self.finished.done():
            self.finished.set_result(None)

    def _go_patient(self) -> None:
        """From now on publish one by one: first see the unconfirmed replies confirmed,
        then every waiting reply."""
        pending = list(self._unconfirmed)
        self._unconfirmed.clear()
        for _reply, confirm, _t in pending:
            confirm.remove_done_callback(self._confirmed)
        self._patient = asyncio.ensure_future(self._publish_patiently(pending))

    async def _publish_patiently(self, pending: list[tuple[Reply, asyncio.Future[Any], float]]
                                 ) -> None:
        command = self.command
        try:
            for reply, confirm, _t in pending:
                await asyncio.wait([confirm], timeout=command.endpoint.publish_timeout)
                if not confirm.done():
                    confirm.add_done_callback(_consume_outcome)
                    raise AmqpUnavailable(
                        f"could not publish a reply of {command!r}: the AMQP broker did not "
                        f"confirm within {command.endpoint.publish_timeout} s")
                if confirm.cancelled():
                    raise asyncio.CancelledError
                error = confirm.exception()
                if error is not None:
                    raise delivery_unknown(command, error) if _lost_link(error) else error
            while self._waiting:
                reply = self._waiting[0]
                await command.resend(amqp_code(reply.code), reply.json)
                self._waiting.popleft()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if not self.finished.done():
                self.finished.set_exception(exc)
            return
        self._patient = None
        self._check_finished()

    def _arm_timer(self) -> None:
        self._timer = None
        if not self._unconfirmed or self.finished.done():
            return
        timeout = self.command.endpoint.publish_timeout
        oldest = self._unconfirmed[0][2]
        if self.loop.time() - oldest >= timeout:
            self.finished.set_exception(AmqpUnavailable(
                f"could not publish a reply of {self.command!r}: the AMQP broker did not "
                f"confirm within {timeout} s"))
            return
        self._timer = self.loop.call_at(oldest + timeout, self._arm_timer)


class AmqpFace:
    """The AMQP side of one legacy actor.

    ``target`` has ``send_command(actor, text, commander=..., callback=...)`` and
    ``add_reply_listener(cb)`` for the actor's unsolicited replies. ``schema``
    (a JSON schema, e.g. from the actor's keyword dictionary) lets the face answer
    clu's ``get_schema`` itself, so ``AMQPClient(models=[actor])`` gets typed models.
    ``publish_timeout`` and ``reply_hold`` are the endpoint's (confirm wait; how long
    replies wait for a lost broker).
    """

    #: Counts the commands this face receives (a BridgeMetrics), or None.
    metrics: Any = None

    def __init__(self, connection: AmqpConnection, name: str, target: Any, *,
                 schema: dict[str, Any] | None = None,
                 time_limit: float | None = None,
                 publish_timeout: float = DEFAULT_PUBLISH_TIMEOUT,
                 reply_hold: float = DEFAULT_RECONNECT_WAIT, ha: bool = False) -> None:
        self.connection = connection
        self.name = name
        self.target = target
        self.schema = schema
        self.time_limit = time_limit
        self.endpoint = ActorEndpoint(connection, name, self._on_command,
                                      publish_timeout=publish_timeout, reconnect_wait=reply_hold,
                                      ha=ha)
        self._broadcasts: asyncio.Queue[Reply] = asyncio.Queue(maxsize=10_000)
        #: Handles of the commands this face sent (their replies go to their commanders).
        self._issued = IssuedCommands()
        self._broadcaster: asyncio.Task[None] | None = None
        self._listening = False
        self.counters = {"commands": 0, "replies": 0, "broadcasts": 0, "dropped": 0}

    @property
    def in_flight(self) -> int:
        return len(self.endpoint.in_flight)

    async def start(self) -> None:
        """Start consuming commands and mirroring the actor's unsolicited output.

        May be called again after it raised (e.g. the actor's name was held elsewhere):
        the target's listeners are added once."""
        if not self._listening:
            self._listening = True
            listen: Callable[[Callable[[Reply], Any]], None] | None = getattr(
                self.target, "add_reply_listener", None)
            if listen is not None:
                listen(self._on_unsolicited)  # queued until the endpoint can publish
            listen_commands = getattr(self.target, "add_command_reply_listener", None)
            if listen_commands is not None:  # others' commands (hub port, local actors)
                listen_commands(self._on_command_reply)
        await self.endpoint.start()
        self._broadcaster = asyncio.ensure_future(self._broadcast_forever())

    @property
    def handover(self) -> Handover:
        """Where this face stands when a reload hands its actor over (see core.handover)."""
        return self.endpoint.handover

    async def release(self) -> None:
        """Take no new command and give the actor's AMQP name up at once (nothing queued
        is lost: see :meth:`ActorEndpoint.release`); commands accepted run on."""
        await self.endpoint.release()

    async def stop(self, reason: str | None = None,
                   event: HandoverEvent = HandoverEvent.STOP) -> None:
        """Stop consuming; commands still running are failed by the endpoint with
        ``reason`` (default: the bridge stopped serving the actor)."""
        await self.endpoint.stop(reason or f"The bridge stopped serving actor {self.name}.",
                                 event)
        if self._broadcaster is not None:
            self._broadcaster.cancel()
            self._broadcaster = None

    def _on_command(self, command: IncomingCommand) -> Awaitable[None]:
        """The endpoint's handler: sends the command on to the target at once (in the
        turn its delivery was read in, after its ack where the queue takes acks: a
        plain function, so the endpoint calls it there) and returns the future that ends when its replies are
        published (the endpoint watches it; no task per command)."""
        self.counters["commands"] += 1
        text = command.command_string
        if self.schema is not None and text.strip() == "get_schema":
            return self._answer_schema(command)
        publisher = _ReplyPublisher(command, self.counters)
        try:
            handle = self._issued.add(self.target.send_command(
                self.name, text, commander=command.commander_id, callback=publisher.add,
                time_limit=self.time_limit))
        except BaseException:
            publisher.close()
            raise
        if self.metrics is not None:
            self.metrics.track(self.name, "amqp", handle, command.commander_id, command.command_id)
        finished = publisher.finished  # done when every reply is published (or failed)
        finished.add_done_callback(publisher.closed)
        return finished

    async def _answer_schema(self, command: IncomingCommand) -> None:
        await command.reply(">", {})
        await command.finish({"schema": json.dumps(self.schema)})

    def _on_command_reply(self, reply: Reply, handle: CommandHandle) -> None:
        """A reply to a command someone else sent the actor: a broadcast, as in hub mode."""
        if handle not in self._issued:
            self._on_unsolicited(reply)

    def _on_unsolicited(self, reply: Reply) -> None:
        try:
            self._broadcasts.put_nowait(reply)
        except asyncio.QueueFull:
            self.counters["dropped"] += 1
            log.warning("actor %s: broadcast queue full, unsolicited reply dropped", self.name)

    async def _broadcast_forever(self) -> None:
        while True:
            reply = await self._broadcasts.get()
            try:
                await self.endpoint.broadcast(amqp_code(reply.code), reply.json)
                self.counters["broadcasts"] += 1
            except Exception as exc:
                self.counters["dropped"] += 1
                log.warning("actor %s: could not publish a broadcast: %r", self.name, exc)

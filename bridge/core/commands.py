"""Commands in flight: awaitable handles, their status, and the table that tracks them."""

from __future__ import annotations

import asyncio
import enum
import inspect
import logging
from collections.abc import Awaitable, Callable, Container, Generator, Hashable, Iterator
from typing import Any, Generic, Protocol, TypeVar

from .replies import Reply, failure

log = logging.getLogger(__name__)

ReplyCallback = Callable[[Reply], "Awaitable[None] | None"]
K = TypeVar("K", bound=Hashable)

#: How a command that exceeded its time limit fails (``error`` keyword's start).
TIMED_OUT = "Command timed out after"


def is_awaitable_result(result: object) -> bool:
    """True if a callback's ``result`` is to be awaited (scheduled as a task).

    Reply callbacks are mostly plain functions returning None or a bool: those are told
    apart without :func:`inspect.isawaitable`'s ABC check, on every relayed reply."""
    return result is not None and type(result) is not bool and inspect.isawaitable(result)


class CommandObserver(Protocol):
    """Watches one command (:meth:`CommandHandle.observe`): metrics, traffic logs."""

    def command_reply(self, handle: "CommandHandle", reply: Reply) -> None:
        """Each reply, as it is recorded (before the handle's callback sees it)."""

    def command_ended(self, handle: "CommandHandle") -> None:
        """Once, when the command has ended (after its terminal reply was recorded)."""


class CommandStatus(str, enum.Enum):
    """Where a command stands."""

    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class CommandHandle:
    """A command sent to an actor. ``await handle`` waits for its end and returns it.

    ``replies`` collects every reply in order; ``callback`` (sync or async) sees each
    one as it arrives. Without awaiting, the command is fire-and-forget: it still
    runs and is still tracked until its terminal reply.
    """

    def __init__(self, actor: str, text: str, *, commander: str | None = None,
                 command_id: str | int | None = None,
                 callback: ReplyCallback | None = None,
                 loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.actor = actor
        self.text = text
        self.commander = commander
        self.command_id = command_id
        self.callback = callback
        self.status = CommandStatus.RUNNING
        self.replies: list[Reply] = []
        # ``loop``: a caller that knows it saves a loop look-up (a getpid() call in Python 3.11).
        self._finished: asyncio.Future[CommandHandle] = \
            (loop or asyncio.get_event_loop()).create_future()
        self._timer: asyncio.TimerHandle | None = None
        #: The command this one carries out, when a target relays through another
        #: (a prefer-AMQP target's inner command for the handle it returned).
        self.on_behalf_of: CommandHandle | None = None
        #: Told of each reply and of the end (see :meth:`observe`); None: nobody watches.
        self.observer: CommandObserver | None = None
        #: The :class:`IssuedCommands` that sent this command (usually one).
        self.issuers: tuple[IssuedCommands, ...] = ()

    def is_one_of(self, handles: Container[CommandHandle]) -> bool:
        """True if this command, or one it carries out (:attr:`on_behalf_of`), is in ``handles``."""
        handle: CommandHandle | None = self
        while handle is not None:
            if handle in handles:
                return True
            handle = handle.on_behalf_of
        return False

    def __repr__(self) -> str:
        return (f"<CommandHandle {self.actor} {self.text!r} id={self.command_id} "
                f"{self.status.value}>")

    def __await__(self) -> Generator[Any, None, "CommandHandle"]:
        return asyncio.shield(self._finished).__await__()

    def done(self) -> bool:
        """True once a terminal reply arrived (or the command was failed locally)."""
        return self.status is not CommandStatus.RUNNING

    @property
    def succeeded(self) -> bool:
        return self.status is CommandStatus.DONE

    @property
    def failed(self) -> bool:
        return self.status is CommandStatus.FAILED

    @property
    def error(self) -> str | None:
        """Why the command failed: the ``error`` value of its failing reply, else None.

        A failure without an ``error`` keyword gives ``failed with code 'f'``.
        """
        if not self.failed or not self.replies:
            return None
        last = self.replies[-1]
        error = last.json.get("error")
        if error is None:
            return f"failed with code {last.code!r}"
        return error if isinstance(error, str) else str(error)

    @property
    def keywords(self) -> dict[str, Any]:
        """All keywords of all replies as JSON, later values winning."""
        merged: dict[str, Any] = {}
        for reply in self.replies:
            merged.update(reply.json)
        return merged

    async def wait(self, timeout: float | None = None) -> CommandHandle:
        """Wait for the end of the command and return the handle.

        Raises ``TimeoutError`` after ``timeout`` seconds; the command itself keeps
        running (use a time limit to fail it).
        """
        async with asyncio.timeout(timeout):
            return await asyncio.shield(self._finished)

    def observe(self, observer: CommandObserver) -> None:
        """Tell ``observer`` of every later reply and of the command's end, synchronously
        (one observer per command: the place where it entered the bridge)."""
        self.observer = observer

    def add_done_callback(self, callback: Callable[[CommandHandle], object]) -> None:
        """Call ``callback(handle)`` once the command has ended (soon, if it already has)."""
        self._finished.add_done_callback(lambda _f: callback(self))

    def add_reply(self, reply: Reply) -> bool:
        """Record a reply; return True if it ended the command. Replies after the end are ignored."""
        if self.done():
            log.debug("reply after the end of %r ignored: %s", self, reply)
            return False
        self.replies.append(reply)
        if self.observer is not None:
            self.observer.command_reply(self, reply)
        self._notify(reply)
        if reply.is_terminal:
            self._finish(CommandStatus.FAILED if reply.is_failure else CommandStatus.DONE)
            return True
        return False

    def fail(self, message: str) -> bool:
        """End the command now with an ``f error="message"`` reply from the actor's side."""
        if self.done():
            return False
        return self.add_reply(failure(self.actor, message, self.commander, self.command_id))

    def set_time_limit(self, seconds: float | None) -> None:
        """Fail the command if it has not ended after ``seconds``."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if seconds is not None and not self.done():
            self._timer = self._finished.get_loop().call_later(
                seconds, self.fail, f"{TIMED_OUT} {seconds:g} s.")

    def _finish(self, status: CommandStatus) -> None:
        self.status = status
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._finished.done():
            self._finished.set_result(self)
        if self.observer is not None:
            self.observer.command_ended(self)

    def _notify(self, reply: Reply) -> None:
        if self.callback is None:
            return
        try:
            result = self.callback(reply)
            if is_awaitable_result(result):
                asyncio.ensure_future(result)
        except Exception:  # a user callback must not break reply delivery
            log.exception("reply callback of %r failed", self)


#: ``listener(reply, handle)`` for a reply to a command sent through a target (ActorLink,
#: AmqpTarget): whoever sent the command knows its handle and can skip its own.
CommandReplyListener = Callable[[Reply, CommandHandle], Any]


class IssuedCommands:
    """The commands one sender issued: tells a reply to one of them (or to a command
    carried out for one of them, :attr:`CommandHandle.on_behalf_of`) from a reply to
    somebody else's command through the same target.

    Each handle names its issuers (:attr:`CommandHandle.issuers`), so this keeps no
    handle alive and asking costs a tuple look-up per handle on the chain (it is asked
    for every reply an actor sends)."""

    __slots__ = ()

    def add(self, handle: CommandHandle) -> CommandHandle:
        """Remember ``handle``; return it."""
        if self not in handle.issuers:
            handle.issuers += (self,)
        return handle

    def __contains__(self, handle: object) -> bool:
        if not isinstance(handle, CommandHandle):
            return False
        current: CommandHandle | None = handle
        while current is not None:
            if self in current.issuers:
                return True
            current = current.on_behalf_of
        return False


class CommandTable(Generic[K]):
    """Commands in flight, by key (a mid, a (commander, mid) pair, a UUID...).

    An entry is removed when its command ends, however it ends, so the table
    returns to empty when nothing is running.
    """

    def __init__(self) -> None:
        self._commands: dict[K, CommandHandle] = {}

    def __len__(self) -> int:
        return len(self._commands)

    def __contains__(self, key: object) -> bool:
        return key in self._commands

    def __iter__(self) -> Iterator[K]:
        return iter(list(self._commands))

    def get(self, key: K) -> CommandHandle | None:
        return self._commands.get(key)

    def add(self, key: K, handle: CommandHandle, time_limit: float | None = None) -> CommandHandle:
        """Track ``handle`` under ``key`` until it ends; raise KeyError if the key is in use."""
        if key in self._commands:
            raise KeyError(f"command id {key!r} is already in flight")
        self._commands[key] = handle
        handle._finished.add_done_callback(lambda _f: self._forget(key, handle))
        handle.set_time_limit(time_limit)
        return handle

    def reply(self, key: K, reply: Reply) -> CommandHandle | None:
        """Deliver a reply to the command under ``key``; return it, or None if unknown."""
        handle = self._commands.get(key)
        if handle is not None:
            if handle.add_reply(reply):
                self._commands.pop(key, None)
        return handle

    def fail_all(self, message: str) -> int:
        """Fail every command in flight with ``message``; return how many."""
        handles = list(self._commands.values())
        self._commands.clear()
        for handle in handles:
            handle.fail(message)
        return len(handles)

    def _forget(self, key: K, handle: CommandHandle) -> None:
        if self._commands.get(key) is handle:
            del self._commands[key]

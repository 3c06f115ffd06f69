"""The hand-over of an actor's face: stop intake at once, let running work finish.

When a reload changes or removes an actor, the face that served it (its AMQP face, its
legacy face) is handed over: it takes no new command from that moment, the commands it
already accepted run to their end on the path they started on, and only those still
running after the drain limit are failed, with an error that says so. Nothing in it
waits for other actors or blocks the reload.

The life of one face in that hand-over is a small state machine written as data
(:data:`TRANSITIONS`, in the style of h11): :class:`Handover` only knows which event
leads from which state to which. Who drives it (bridge/service/bridge.py) performs the
I/O of each step and reports what happened as events.

::

    SERVING --release--> RELEASING --released--> DRAINING --idle--> STOPPED
                             |                       |
                             +------ stop -----------+--limit----> STOPPED (failed the rest)

``stop`` (the bridge itself stopping) is accepted in every state but ``STOPPED`` and ends
the hand-over at once: what still runs is failed.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable, Mapping

from .commands import CommandHandle


class HandoverState(str, enum.Enum):
    """Where a face stands in its hand-over."""

    #: Taking new commands (before the hand-over started).
    SERVING = "serving"
    #: Intake stopped (AMQP: consumer cancelled); giving up the face's name or port,
    #: serving what had already reached it (AMQP: the messages still queued).
    RELEASING = "releasing"
    #: Name released (another process may take it); commands accepted before run on.
    DRAINING = "draining"
    #: Nothing runs any more on this face; it is closed.
    STOPPED = "stopped"


class HandoverEvent(str, enum.Enum):
    """What happens to a face during its hand-over."""

    RELEASE = "release"      # the reload retires the face: stop intake now
    RELEASED = "released"    # name/port given up (AMQP: queue deleted once empty)
    IDLE = "idle"            # the last command accepted before the release ended
    LIMIT = "limit"          # the drain limit ran out: fail what still runs
    STOP = "stop"            # the bridge stops: fail what still runs, at once


S, E = HandoverState, HandoverEvent

#: ``(state, event) -> next state``; any pair not listed is a programming error.
TRANSITIONS: Mapping[tuple[HandoverState, HandoverEvent], HandoverState] = {
    (S.SERVING, E.RELEASE): S.RELEASING,
    (S.SERVING, E.STOP): S.STOPPED,
    (S.RELEASING, E.RELEASED): S.DRAINING,
    (S.RELEASING, E.STOP): S.STOPPED,
    (S.DRAINING, E.IDLE): S.STOPPED,
    (S.DRAINING, E.LIMIT): S.STOPPED,
    (S.DRAINING, E.STOP): S.STOPPED,
}

#: States in which a face takes new commands.
ACCEPTING: frozenset[HandoverState] = frozenset({S.SERVING})


class HandoverError(RuntimeError):
    """An event that is not allowed in the current state (see :data:`TRANSITIONS`)."""


def drain_limit_error(actor: str, limit: float) -> str:
    """The error of a command failed because it still ran when the drain limit ran out."""
    return (f"The bridge stopped serving actor {actor} here after a reload: the command "
            f"was still running after the drain limit ([timeouts] drain = {limit:g} s).")


def retired_error(actor: str) -> str:
    """The error of a command that reached a face after its actor was removed."""
    return (f"Actor {actor} is no longer served here: it was removed from the bridge's "
            "configuration.")


class RunningCommands:
    """The commands one part (a route's target) started and that have not ended: what its
    drain waits for, and what it fails when the drain limit runs out. For targets whose
    lower layer is shared by several actors (the hub connection, the AMQP commander)."""

    def __init__(self) -> None:
        self._handles: set[CommandHandle] = set()

    def add(self, handle: CommandHandle) -> CommandHandle:
        """Track ``handle`` until it ends; return it."""
        if not handle.done():
            self._handles.add(handle)
            handle.add_done_callback(self._handles.discard)
        return handle

    def __len__(self) -> int:
        return len(self._handles)

    def fail_all(self, error: str) -> int:
        """Fail every command still running with ``error``; return how many."""
        handles = list(self._handles)
        for handle in handles:
            handle.fail(error)
        return len(handles)


class Handover:
    """The hand-over state of one face (sans-IO: no clock of its own but ``clock``).

    ``history`` keeps ``(state, clock())`` for every state entered, so the time each
    step took can be reported; ``listener(old, event, new)`` hears every transition.
    """

    def __init__(self, name: str, *, clock: Callable[[], float] = time.monotonic,
                 listener: Callable[[HandoverState, HandoverEvent, HandoverState], object]
                 | None = None) -> None:
        self.name = name
        self.state = HandoverState.SERVING
        self._clock = clock
        self._listener = listener
        self.history: list[tuple[HandoverState, float]] = [(self.state, clock())]
        #: The event that ended the hand-over (``idle``, ``limit`` or ``stop``).
        self.ended_by: HandoverEvent | None = None

    @property
    def accepting(self) -> bool:
        """True while the face may take new commands."""
        return self.state in ACCEPTING

    @property
    def ended(self) -> bool:
        return self.state is HandoverState.STOPPED

    def can(self, event: HandoverEvent) -> bool:
        """True if ``event`` is allowed now."""
        return (self.state, event) in TRANSITIONS

    def handle(self, event: HandoverEvent) -> HandoverState:
        """Apply ``event``; return the new state. Raises :class:`HandoverError` if not allowed."""
        new = TRANSITIONS.get((self.state, event))
        if new is None:
            raise HandoverError(f"{self.name}: event {event.value!r} not allowed in state "
                                f"{self.state.value!r}")
        old, self.state = self.state, new
        self.history.append((new, self._clock()))
        if new is HandoverState.STOPPED:
            self.ended_by = event
        if self._listener is not None:
            self._listener(old, event, new)
        return new

    def time_in(self, state: HandoverState) -> float | None:
        """Seconds spent in ``state`` (until now if still in it), None if never entered."""
        for i, (entered, at) in enumerate(self.history):
            if entered is state:
                end = self.history[i + 1][1] if i + 1 < len(self.history) else self._clock()
                return end - at
        return None

    def __repr__(self) -> str:
        return f"<Handover {self.name} {self.state.value}>"


__all__ = ["ACCEPTING", "TRANSITIONS", "Handover", "HandoverError", "HandoverEvent",
           "HandoverState", "RunningCommands", "drain_limit_error", "retired_error"]

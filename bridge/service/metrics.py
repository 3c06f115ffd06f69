"""What the bridge counts: commands per actor and side, their outcomes and round trips.

A command is counted where it enters the bridge (the *side*: ``amqp`` for the AMQP face
of a legacy actor, ``legacy`` for the legacy face of an AMQP actor, ``hub`` for the hub
port): the entry point calls :meth:`BridgeMetrics.track` with the handle of the
command it sent on, and :class:`~bridge.core.CommandHandle` tells the watcher of each
reply and of the end (:meth:`~bridge.core.CommandHandle.observe`). The hot path is a few
integer additions and two clock reads per command, one per reply: the numbers live in
plain attributes and are turned into Prometheus metrics only when scraped
(:mod:`bridge.service.exposition`).

Outcomes: ``done`` (``:``), ``failed`` (``f`` from the actor, or its link lost
mid-command), ``timeout`` (the command's time limit expired), ``refused`` (never reached
the actor: its link was down, no AMQP actor consumes the name, the text could not be
sent).
"""

from __future__ import annotations

import logging
import time
from bisect import bisect_left
from collections.abc import Callable, Iterator
from typing import Any

from .. import writes
from ..core import TIMED_OUT, CommandHandle, CommandStatus, Reply
from ..core.routing import ROUTING_FAILURE_PREFIX
from ..protocol import format_keywords

command_log = logging.getLogger("bridge.commands")
#: One line per command at its end (``bridge.commands``).
COMMAND_LOG_FORMAT = "%s %s from %s id=%s -> id=%s: %s in %.6f s, %d replies: %r"

OUTCOMES = ("done", "failed", "timeout", "refused")
SIDES = ("amqp", "legacy", "hub")
#: Upper bounds (seconds) of the round-trip histogram's buckets.
RTT_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
               5.0, 10.0, 30.0, 60.0, 300.0)
_REFUSALS = (ROUTING_FAILURE_PREFIX, "Could not send the command to")
_DONE = CommandStatus.DONE
_now = time.perf_counter

#: ``sink(stats, handle, commander, incoming_id, outcome, seconds)`` at each command's end.
EndSink = Callable[["CommandStats", CommandHandle, str | None, Any, str, float], None]
#: ``sink(text)`` for each command and reply crossing (traffic logs).
TrafficSink = Callable[[str], None]


def outcome_of(handle: CommandHandle) -> str:
    """``done``, ``failed``, ``timeout`` or ``refused`` for an ended command."""
    if handle.succeeded:
        return "done"
    error = handle.error or ""
    if error.startswith(TIMED_OUT):
        return "timeout"
    if error.startswith(_REFUSALS):
        return "refused"
    return "failed"


class CommandStats:
    """The counters of one actor on one side (plain attributes; see the module docstring)."""

    __slots__ = ("actor", "side", "received", "ended", "in_flight", "replies", "last_reply",
                 "rtt_counts", "rtt_sum", "traffic")

    def __init__(self, actor: str, side: str) -> None:
        self.actor = actor
        self.side = side
        self.received = 0
        self.ended = dict.fromkeys(OUTCOMES, 0)
        self.in_flight = 0
        self.replies = 0
        self.last_reply: float | None = None  # time.perf_counter() of the last reply
        self.rtt_counts = [0] * (len(RTT_BUCKETS) + 1)  # the last one: above every bound
        self.rtt_sum = 0.0
        #: Where this actor's crossings are written (a traffic log), or None.
        self.traffic: TrafficSink | None = None

    def seconds_since_reply(self, now: float | None = None) -> float | None:
        if self.last_reply is None:
            return None
        return (time.perf_counter() if now is None else now) - self.last_reply

    def rtt_buckets(self) -> Iterator[tuple[float, int]]:
        """(upper bound, cumulative count) pairs, ending with +Inf."""
        total = 0
        for bound, count in zip((*RTT_BUCKETS, float("inf")), self.rtt_counts):
            total += count
            yield bound, total


class _Watch:
    """Watches one command for its :class:`CommandStats` (a CommandObserver)."""

    __slots__ = ("stats", "metrics", "commander", "incoming_id", "started")

    def __init__(self, stats: CommandStats, metrics: "BridgeMetrics", commander: str | None,
                 incoming_id: Any, started: float) -> None:
        self.stats = stats
        self.metrics = metrics
        self.commander = commander
        self.incoming_id = incoming_id
        self.started = started

    def command_reply(self, handle: CommandHandle, reply: Reply) -> None:
        stats = self.stats
        stats.replies += 1
        stats.last_reply = _now()
        if stats.traffic is not None:
            stats.traffic(f"{stats.side}< {self.commander} {self.incoming_id} "
                          f"{handle.command_id} {reply.code} {reply_text(reply)}")

    def command_ended(self, handle: CommandHandle) -> None:
        seconds = _now() - self.started
        stats = self.stats
        stats.in_flight -= 1
        outcome = "done" if handle.status is _DONE else outcome_of(handle)
        stats.ended[outcome] += 1
        if outcome != "refused":
            stats.rtt_counts[bisect_left(RTT_BUCKETS, seconds)] += 1
            stats.rtt_sum += seconds
        metrics = self.metrics
        if metrics.command_log or stats.traffic is not None:
            metrics._ended(stats, handle, self.commander, self.incoming_id, outcome, seconds)


def reply_text(reply: Reply) -> str:
    """A reply's keywords as a line would carry them (else its JSON)."""
    try:
        return format_keywords(reply.keywords)
    except Exception:  # a reply that has no line form: its JSON
        return str(reply.json)


class BridgeMetrics:
    """Every :class:`CommandStats` of one bridge, by (actor, side).

    ``command_log``: write one line per command at its end to the ``bridge.commands``
    logger (commander, actor, ids on both sides, outcome, duration).
    """

    def __init__(self, *, command_log: bool = True) -> None:
        self.stats: dict[tuple[str, str], CommandStats] = {}
        self.command_log = command_log
        #: actor -> traffic sink, given to the stats of that actor as they are made.
        self.traffic: dict[str, TrafficSink] = {}

    def stats_for(self, actor: str, side: str) -> CommandStats:
        key = (actor, side)
        stats = self.stats.get(key)
        if stats is None:
            stats = self.stats[key] = CommandStats(actor, side)
            stats.traffic = self.traffic.get(actor)
        return stats

    def set_traffic(self, actor: str, sink: TrafficSink | None) -> None:
        """Write ``actor``'s command and reply crossings to ``sink`` (None: stop)."""
        if sink is None:
            self.traffic.pop(actor, None)
        else:
            self.traffic[actor] = sink
        for (name, _side), stats in self.stats.items():
            if name == actor:
                stats.traffic = sink

    def track(self, actor: str, side: str, handle: CommandHandle, commander: str | None,
              incoming_id: Any) -> None:
        """Count a command that entered on ``side`` and was sent on as ``handle``.

        A handle that has already ended (its target failed it at once) was refused.
        """
        stats = self.stats_for(actor, side)
        stats.received += 1
        if stats.traffic is not None:
            stats.traffic(f"{side}> {commander} {incoming_id} {handle.command_id} {handle.text}")
        if handle.done():
            stats.ended["refused"] += 1
            self._ended(stats, handle, commander, incoming_id, "refused", 0.0)
            return
        stats.in_flight += 1
        handle.observe(_Watch(stats, self, commander, incoming_id, _now()))

    def refused(self, actor: str, side: str, commander: str | None, incoming_id: Any,
                reason: str) -> None:
        """Count a command refused before any handle existed (e.g. the hub port's NoTarget)."""
        stats = self.stats_for(actor, side)
        stats.received += 1
        stats.ended["refused"] += 1
        if self.command_log:
            command_log.info("%s %s from %s id=%s: refused (%s)", actor, side, commander,
                             incoming_id, reason)

    def _ended(self, stats: CommandStats, handle: CommandHandle, commander: str | None,
               incoming_id: Any, outcome: str, seconds: float) -> None:
        if stats.traffic is not None:
            stats.traffic(f"{stats.side}. {commander} {incoming_id} {handle.command_id} "
                          f"{outcome} {seconds:.6f}")
        if self.command_log and command_log.isEnabledFor(logging.INFO):
            args = (stats.actor, stats.side, commander, incoming_id, handle.command_id,
                    outcome, seconds, len(handle.replies), handle.text)
            if writes.holding():  # the terminal reply is still held: it leaves first
                writes.defer(lambda: command_log.info(COMMAND_LOG_FORMAT, *args))
            else:
                command_log.info(COMMAND_LOG_FORMAT, *args)

    def totals(self) -> dict[str, int]:
        """Sums over every actor and side (received, each outcome, in flight, replies)."""
        out = {"received": 0, **dict.fromkeys(OUTCOMES, 0), "in_flight": 0, "replies": 0}
        for s in self.stats.values():
            out["received"] += s.received
            out["in_flight"] += s.in_flight
            out["replies"] += s.replies
            for k, v in s.ended.items():
                out[k] += v
        return out

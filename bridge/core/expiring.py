"""A set whose members can be told to leave after a grace period, on one timer.

A relay remembers ids for a while after they matter (late copies of a terminal reply
must still be recognised), and a busy site ends many commands a second: a timer per id
would be one more timer handle, and one more timer callback, per command. Here the
pending removals wait in a deque in the order they were asked for (every one waits the
same ``grace``, so that is also the order they fall due), and a single timer removes all
that are due, then waits at least ``batch`` seconds before looking again: a member may
stay up to ``batch`` seconds longer than ``grace``, never shorter.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Hashable
from typing import Generic, TypeVar

__all__ = ["ExpiringSet"]

K = TypeVar("K", bound=Hashable)


class ExpiringSet(Generic[K]):
    """A set of keys; :meth:`expire` makes a key leave ``grace`` seconds later.

    The event loop is looked up (``asyncio.get_event_loop()``) at the first
    :meth:`expire`. Adding a key again does not cancel a pending expiry of it: the
    first expiry removes it (what the relay wants: an id is not reused).
    """

    def __init__(self, grace: float, *, batch: float = 0.5) -> None:
        self.grace = grace
        self.batch = batch
        self._loop: asyncio.AbstractEventLoop | None = None
        self._members: set[K] = set()
        self._due: deque[tuple[float, K]] = deque()  # (when, key), oldest first
        self._timer: asyncio.TimerHandle | None = None

    def __contains__(self, key: object) -> bool:
        return key in self._members

    def __len__(self) -> int:
        return len(self._members)

    def add(self, key: K) -> None:
        """Make ``key`` a member (until :meth:`discard` or an :meth:`expire` falls due)."""
        self._members.add(key)

    def discard(self, key: K) -> None:
        """Remove ``key`` now, if it is a member."""
        self._members.discard(key)

    def expire(self, key: K) -> None:
        """Remove ``key`` ``grace`` seconds from now (``grace`` to ``grace + batch``)."""
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_event_loop()
        self._due.append((loop.time() + self.grace, key))
        if self._timer is None:
            self._timer = loop.call_at(self._due[0][0], self._remove_due)

    def add_expiring(self, key: K) -> None:
        """:meth:`add` ``key`` and :meth:`expire` it at once."""
        self._members.add(key)
        self.expire(key)

    def _remove_due(self) -> None:
        self._timer = None
        loop = self._loop
        assert loop is not None
        now = loop.time()
        due, members = self._due, self._members
        while due and due[0][0] <= now:
            members.discard(due.popleft()[1])
        if due:
            self._timer = loop.call_at(max(due[0][0], now + self.batch), self._remove_due)

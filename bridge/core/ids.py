"""Integer command ids (mids) for the line protocol.

Each link to a legacy peer (ActorLink, TronConnection) allocates the mid of every command it
sends from its own table of commands in flight, so a foreign id (an AMQP UUID) and its
mid live and die with that one command handle: nothing to map, nothing to leak."""

from __future__ import annotations

from collections.abc import Container

#: Largest mid we hand out: opscore's Int range, safe for every reference parser.
MAX_MID = 2**31 - 1


class MidAllocator:
    """Hands out mids 1, 2, 3, ... wrapping at ``maximum``, skipping ids still in use.

    0 is never used: on the wire it means "not a reply to a command".
    """

    def __init__(self, maximum: int = MAX_MID) -> None:
        if maximum < 1:
            raise ValueError("maximum must be at least 1")
        self.maximum = maximum
        self._last = 0

    def allocate(self, in_use: Container[int] = ()) -> int:
        """The next mid not in ``in_use``; raise RuntimeError if every mid is in use."""
        for _ in range(self.maximum):
            self._last = self._last % self.maximum + 1
            if self._last not in in_use:
                return self._last
        raise RuntimeError("no free command id: too many commands in flight")

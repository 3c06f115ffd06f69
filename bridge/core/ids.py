"""Integer command ids (mids) for the line protocol, and the map between foreign ids and mids."""

from __future__ import annotations

from collections.abc import Container, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)

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


class IdMap(Generic[K]):
    """Two-way map between foreign command ids (e.g. AMQP UUIDs) and local mids.

    Mids are unique among live entries; :meth:`release` frees one when its command ends.
    """

    def __init__(self, maximum: int = MAX_MID) -> None:
        self._allocator = MidAllocator(maximum)
        self._by_mid: dict[int, K] = {}
        self._by_key: dict[K, int] = {}

    def __len__(self) -> int:
        return len(self._by_mid)

    def assign(self, key: K) -> int:
        """The mid for ``key``, allocating a fresh one if it has none."""
        mid = self._by_key.get(key)
        if mid is None:
            mid = self._allocator.allocate(self._by_mid)
            self._by_mid[mid] = key
            self._by_key[key] = mid
        return mid

    def key(self, mid: int) -> K | None:
        return self._by_mid.get(mid)

    def mid(self, key: K) -> int | None:
        return self._by_key.get(key)

    def release(self, mid: int) -> None:
        """Forget the entry of ``mid`` (no error if there is none)."""
        key = self._by_mid.pop(mid, None)
        if key is not None:
            self._by_key.pop(key, None)

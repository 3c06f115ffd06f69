"""A stand-in for the relay benchmark's ``Peers`` that only counts ``settle`` calls."""

from __future__ import annotations


class SettleCounter:
    """Counts the waits for a quiet machine a measurement asked for."""

    def __init__(self, processes: dict[str, list[int]] | None = None) -> None:
        self.settles = 0
        #: What :class:`bridge.bench.relay.Peers` charges each round trip's CPU to.
        self.processes = processes or {}

    def settle(self) -> None:
        self.settles += 1

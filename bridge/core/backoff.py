"""How long to wait before the next connection attempt: exponential backoff with jitter.

Transport-agnostic (the AMQP connection's failover across broker nodes uses it, see
:mod:`bridge.amqp.failover`); importable without aio-pika, e.g. by the configuration.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class ReconnectPolicy:
    """Delays between failed connection attempts.

    After a lost link the next node is tried at once; after the ``n``-th failed attempt
    in a row the bridge waits ``min(maximum, initial * factor ** (n - 1))`` seconds,
    scaled by a random factor in ``[1 - jitter, 1 + jitter]`` (so that many clients
    of a failed node do not all come back in step).
    """

    initial: float = 0.2
    maximum: float = 5.0
    factor: float = 2.0
    jitter: float = 0.2

    def __post_init__(self) -> None:
        if not 0 < self.initial <= self.maximum:
            raise ValueError("reconnect delays: need 0 < initial <= maximum")
        if self.factor < 1 or not 0 <= self.jitter < 1:
            raise ValueError("reconnect delays: need factor >= 1 and 0 <= jitter < 1")

    def delay(self, failures: int, rand: Callable[[], float] = random.random) -> float:
        """Seconds to wait after ``failures`` (>= 1) failed attempts in a row."""
        base = min(self.maximum, self.initial * self.factor ** max(failures - 1, 0))
        return base * (1 - self.jitter + 2 * self.jitter * rand())

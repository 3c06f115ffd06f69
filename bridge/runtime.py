"""One event loop for Twisted and asyncio: reactor installation and Deferred/future glue.

All application code in this package is written as asyncio coroutines. Twisted is
used for TCP only; whatever Twisted hands back as a Deferred is awaited through
:func:`as_future`, and coroutines that Twisted code must wait on are wrapped with
:func:`as_deferred`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

from twisted.internet.defer import Deferred

T = TypeVar("T")


def install_asyncio_reactor(loop: asyncio.AbstractEventLoop | None = None) -> asyncio.AbstractEventLoop:
    """Install Twisted's asyncio reactor on ``loop`` (a new loop if None) unless one is installed."""
    import sys

    if "twisted.internet.reactor" in sys.modules:
        from twisted.internet import reactor

        existing = getattr(reactor, "_asyncioEventloop", None)
        if existing is None:
            raise RuntimeError("a non-asyncio Twisted reactor is already installed")
        return existing
    from twisted.internet import asyncioreactor

    loop = loop or asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    asyncioreactor.install(loop)
    return loop


def as_future(d: Deferred[T]) -> asyncio.Future[T]:
    """Wrap a Deferred so that asyncio code can ``await`` it."""
    return d.asFuture(asyncio.get_event_loop())


def as_deferred(coro: Coroutine[Any, Any, T]) -> Deferred[T]:
    """Run a coroutine as an asyncio task and return a Deferred for its result."""
    return Deferred.fromFuture(asyncio.ensure_future(coro))

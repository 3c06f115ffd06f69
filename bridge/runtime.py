"""One event loop for Twisted and asyncio: reactor installation and Deferred/future glue.

All application code in this package is written as asyncio coroutines. Twisted is
used for TCP only; whatever Twisted hands back as a Deferred is awaited through
:func:`as_future`, and coroutines that Twisted code must wait on are wrapped with
:func:`as_deferred`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
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


def run_sync(main: Callable[[], Coroutine[Any, Any, T]]) -> T | None:
    """Run ``main()`` on Twisted's asyncio reactor (installed here) and return its result.

    For programs: ``run_sync(lambda: run(actor))``. Twisted's own signal handlers are
    not installed; the program handles SIGINT/SIGTERM itself (as
    :func:`bridge.legacy.actor.run` and ``bridge serve`` do). An exception raised by
    ``main()`` is raised again here.
    """
    install_asyncio_reactor()
    from twisted.internet import reactor
    from twisted.python.failure import Failure

    outcome: list[Any] = []

    def go() -> None:
        deferred = as_deferred(main())

        def finished(result: Any) -> None:
            outcome.append(result)
            reactor.stop()  # type: ignore[attr-defined]

        deferred.addBoth(finished)

    reactor.callWhenRunning(go)  # type: ignore[attr-defined]
    reactor.run(installSignalHandlers=False)  # type: ignore[attr-defined]
    if outcome and isinstance(outcome[0], Failure):
        outcome[0].raiseException()
    return outcome[0] if outcome else None

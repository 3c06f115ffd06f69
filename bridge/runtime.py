"""One event loop for Twisted and asyncio: reactor installation and Deferred/future glue.

All application code in this package is written as asyncio coroutines. Twisted is
used for TCP only; whatever Twisted hands back as a Deferred is awaited through
:func:`as_future`, and coroutines that Twisted code must wait on are wrapped with
:func:`as_deferred`.

The event loop is uvloop's when it is installed (the ``uvloop`` extra), else asyncio's
own; ``BRIDGE_LOOP=asyncio|uvloop`` (or ``bridge serve --loop``) chooses. Twisted's
``AsyncioSelectorReactor`` runs on either. uvloop is the default because it measures
better: less CPU per AMQP message and per TCP line (BENCHMARKS.md, relay section).
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
from collections.abc import Callable, Coroutine
from typing import Any, Literal, TypeVar

from twisted.internet.defer import Deferred

T = TypeVar("T")

LoopKind = Literal["asyncio", "uvloop"]
#: Environment variable that chooses the event loop (``asyncio`` or ``uvloop``).
LOOP_ENV = "BRIDGE_LOOP"
LOOP_KINDS: tuple[LoopKind, ...] = ("uvloop", "asyncio")


def uvloop_available() -> bool:
    """True if uvloop can be imported."""
    return importlib.util.find_spec("uvloop") is not None


def loop_kind(requested: str | None = None) -> LoopKind:
    """The event loop to use: ``requested``, else ``$BRIDGE_LOOP``, else uvloop if
    installed, else asyncio. Raises ``ValueError`` for an unknown name, and for
    ``uvloop`` when it is not installed."""
    name = (requested or os.environ.get(LOOP_ENV) or "").strip().lower()
    if not name:
        return "uvloop" if uvloop_available() else "asyncio"
    if name not in LOOP_KINDS:
        raise ValueError(f"unknown event loop {name!r} ({LOOP_ENV}): expected asyncio or uvloop")
    if name == "uvloop" and not uvloop_available():
        raise ValueError("event loop 'uvloop' requested but uvloop is not installed "
                         "(pip install 'bridge[uvloop]')")
    return name  # type: ignore[return-value]


def new_event_loop(kind: str | None = None) -> asyncio.AbstractEventLoop:
    """A new event loop of :func:`loop_kind` ``(kind)``."""
    if loop_kind(kind) == "uvloop":
        import uvloop

        return uvloop.new_event_loop()
    return asyncio.SelectorEventLoop()


def install_asyncio_reactor(loop: asyncio.AbstractEventLoop | None = None,
                            kind: str | None = None) -> asyncio.AbstractEventLoop:
    """Install Twisted's asyncio reactor on ``loop`` (else a new loop of :func:`loop_kind`
    ``(kind)``) unless one is installed; return the reactor's loop."""
    import sys

    if "twisted.internet.reactor" in sys.modules:
        from twisted.internet import reactor

        existing = getattr(reactor, "_asyncioEventloop", None)
        if existing is None:
            raise RuntimeError("a non-asyncio Twisted reactor is already installed")
        return existing
    from twisted.internet import asyncioreactor

    loop = loop or new_event_loop(kind)
    asyncio.set_event_loop(loop)
    asyncioreactor.install(loop)
    return loop


def as_future(d: Deferred[T]) -> asyncio.Future[T]:
    """Wrap a Deferred so that asyncio code can ``await`` it."""
    return d.asFuture(asyncio.get_event_loop())


def as_deferred(coro: Coroutine[Any, Any, T]) -> Deferred[T]:
    """Run a coroutine as an asyncio task and return a Deferred for its result."""
    return Deferred.fromFuture(asyncio.ensure_future(coro))


def run_sync(main: Callable[[], Coroutine[Any, Any, T]], loop: str | None = None) -> T | None:
    """Run ``main()`` on Twisted's asyncio reactor (installed here, on a new event loop of
    :func:`loop_kind` ``(loop)``) and return its result.

    For programs: ``run_sync(lambda: run(actor))``. Twisted's own signal handlers are
    not installed; the program handles SIGINT/SIGTERM itself (as
    :func:`bridge.legacy.actor.run` and ``bridge serve`` do). An exception raised by
    ``main()`` is raised again here.
    """
    install_asyncio_reactor(kind=loop)
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

"""Hold writes over one synchronous stretch of work, so that they leave together.

A reader that hands several messages on in one go -- a legacy socket's read that
holds several lines, say ``>`` and ``:`` of one command -- does that work inside
:class:`held`. A writer that would otherwise send each message at once (one system
call, and one wake-up of the peer, per message) checks :func:`holding` and, while it
is true, keeps what it is given and asks :func:`defer` for a call when the stretch
ends; then it writes everything it kept in one write, in the order given. Nothing
else can write in between: the stretch is synchronous (no ``await``), so the order of
frames on every connection is the order of the calls.

Only the outermost :class:`held` flushes; the deferred calls run in the order they
were asked for, also when the work raised, and all of them even if one raises (the
first error is raised after).
"""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType

__all__ = ["defer", "held", "holding"]

_depth = 0
_deferred: list[Callable[[], None]] = []


def holding() -> bool:
    """True inside a :class:`held` stretch."""
    return _depth > 0


def defer(flush: Callable[[], None]) -> None:
    """Call ``flush()`` when the outermost :class:`held` stretch ends (the caller asks
    once per stretch and keeps its own buffer). Only inside a stretch."""
    if not _depth:
        raise RuntimeError("defer() outside a held() stretch")
    _deferred.append(flush)


class held:
    """``with held(): ...``: writes asked for inside are sent when it ends."""

    __slots__ = ()

    def __enter__(self) -> None:
        global _depth
        _depth += 1

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        global _depth
        _depth -= 1
        if _depth or not _deferred:
            return
        flushes = _deferred[:]
        del _deferred[:]
        error: BaseException | None = None
        for flush in flushes:  # outside the stretch now: their writes are not held again
            try:
                flush()
            except BaseException as failure:  # every writer flushes; the first error is raised
                error = error or failure
        if error is not None:
            raise error

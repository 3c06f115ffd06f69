"""Hold writes over one synchronous stretch of work, so that they leave together.

A reader that hands several messages on in one go -- a legacy socket's read that
holds several lines, say ``>`` and ``:`` of one command -- does that work inside
:class:`held`. A writer that would otherwise send each message at once (one system
call, and one wake-up of the peer, per message) checks :func:`holding` and, while it
is true, keeps what it is given and asks :func:`defer` for a call when the stretch
ends; then it writes everything it kept in one write, in the order given. Nothing
else can write in between: the stretch is synchronous (no ``await``), so the order of
frames on every connection is the order of the calls.

:class:`HeldBytes` is that keeping, for a writer of bytes.

Only the outermost :class:`held` flushes; the deferred calls run in the order they
were asked for, also when the work raised, and all of them even if one raises (the
first error is raised after).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from types import TracebackType

__all__ = ["HeldBytes", "defer", "held", "holding"]

log = logging.getLogger(__name__)

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


class HeldBytes:
    """One writer's part in held stretches: what it is given inside one is kept and
    handed to ``write`` in one piece when the stretch ends.

    An error of that write is logged (naming ``owner``), not raised: the stretch may be
    another connection's reader, which must not stop for this writer's peer.
    """

    __slots__ = ("_write", "_owner", "_parts")

    def __init__(self, write: Callable[[bytes], None], owner: object) -> None:
        self._write = write
        self._owner = owner
        self._parts: list[bytes] | None = None

    def keep(self, data: bytes) -> bool:
        """Inside a held stretch keep ``data`` (after what was kept before) and return
        True; outside one return False (the caller writes it itself)."""
        if not _depth:
            return False
        parts = self._parts
        if parts is None:
            self._parts = [data]
            _deferred.append(self._flush)
        else:
            parts.append(data)
        return True

    def _flush(self) -> None:
        parts, self._parts = self._parts, None
        if not parts:
            return
        try:
            self._write(parts[0] if len(parts) == 1 else b"".join(parts))
        except Exception:
            log.exception("%s: could not write %d held piece(s)", self._owner, len(parts))


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

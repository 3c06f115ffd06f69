"""Typed objects for keywords, replies and commands of the legacy line protocol."""

from __future__ import annotations

from typing import NamedTuple

from .lexical import needs_quotes


class Keyword(tuple):
    """One keyword of a reply: ``name``, ``name=v1,v2`` or ``name="quoted"``.

    ``values`` are the value texts with quotes removed and escapes resolved;
    ``quoted`` says, value by value, whether the text was quoted on the wire
    (``"42"`` is a string, ``42`` a number in the untyped JSON mapping); it
    defaults to all False. A bare keyword has no values. Keywords are immutable
    (a tuple ``(name, values, quoted)``, which keeps parsing fast).
    """

    __slots__ = ()

    def __new__(
        cls, name: str, values: tuple[str, ...] = (), quoted: tuple[bool, ...] | None = None
    ) -> "Keyword":
        values = tuple(values)
        quoted = (False,) * len(values) if quoted is None else tuple(quoted)
        if len(quoted) != len(values):
            raise ValueError("quoted must have one flag per value")
        return tuple.__new__(cls, (name, values, quoted))

    @property
    def name(self) -> str:
        return self[0]

    @property
    def values(self) -> tuple[str, ...]:
        return self[1]

    @property
    def quoted(self) -> tuple[bool, ...]:
        return self[2]

    def __repr__(self) -> str:
        return f"Keyword({self[0]!r}, {self[1]!r}, {self[2]!r})"

    def __getnewargs__(self) -> tuple[str, tuple[str, ...], tuple[bool, ...]]:
        return (self[0], self[1], self[2])

    @classmethod
    def of(cls, name: str, *values: str, quoted: bool | None = None) -> "Keyword":
        """Build a keyword; ``quoted=None`` quotes exactly the values that need it."""
        flags = tuple(needs_quotes(v) if quoted is None else quoted for v in values)
        return cls(name, tuple(values), flags)


class ActorReply(NamedTuple):
    """A reply line written by a legacy actor: ``cid mid code keywords``."""

    cid: int
    mid: int
    code: str
    keywords: tuple[Keyword, ...] = ()


class HubReply(NamedTuple):
    """A reply line written by a hub to commanders: ``commander mid actor code keywords``."""

    commander: str
    mid: int
    actor: str
    code: str
    keywords: tuple[Keyword, ...] = ()


class ActorCommand(NamedTuple):
    """A command line received by a legacy actor: ``[commander] [[cid] mid] text``.

    ``commander`` and ``mid`` are None when the line did not carry them; ``cid`` is
    set only for the tron MCP-style header ``cid mid text``.
    """

    text: str
    mid: int | None = None
    commander: str | None = None
    cid: int | None = None


class HubCommand(NamedTuple):
    """A command line received by a hub: ``commander mid actor text``."""

    commander: str
    mid: int
    actor: str
    text: str = ""


class CommandBody(NamedTuple):
    """The text of a command split as opscore's CommandParser does.

    ``verb`` is the first word, ``values`` the verb's values (``expose 10, 20``),
    ``keywords`` the space-separated keywords; a ``raw=`` keyword takes the rest
    of the line verbatim and is always last.
    """

    verb: str
    values: tuple[str, ...] = ()
    keywords: tuple[Keyword, ...] = ()

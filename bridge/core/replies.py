"""The reply object the bridge carries between sides, whatever transport it came from."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..protocol import Keyword, json_to_keywords, keywords_to_json
from ..protocol.codes import FAILURE_CODES, TERMINAL_CODES


class Reply:
    """One reply of an actor, in both of its forms.

    ``keywords`` is the line-protocol form, ``json`` the JSON form (typed by a keyword
    dictionary, or the body an AMQP actor sent). Give either; the other is derived on
    first use with the untyped mapping of :mod:`bridge.protocol.jsonmap`.
    ``commander``/``command_id`` say which command it answers; both are None for a
    broadcast. ``internal`` is clu's flag for replies meant for machines.
    """

    __slots__ = ("code", "sender", "_keywords", "commander", "command_id", "_values", "internal")

    def __init__(self, code: str, sender: str, keywords: tuple[Keyword, ...] | None = None,
                 commander: str | None = None, command_id: str | int | None = None,
                 values: Mapping[str, Any] | None = None, internal: bool = False) -> None:
        self.code = code
        self.sender = sender
        self._keywords = keywords if keywords is not None or values is not None else ()
        self.commander = commander
        self.command_id = command_id
        self._values = dict(values) if values is not None else None
        self.internal = internal

    def __repr__(self) -> str:
        to = f" to {self.commander}/{self.command_id}" if self.commander else ""
        return f"<Reply {self.sender} {self.code}{to} {self.json}>"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Reply):
            return NotImplemented
        return (self.code, self.sender, self.commander, self.command_id, self.json) == (
            other.code, other.sender, other.commander, other.command_id, other.json)

    @property
    def keywords(self) -> tuple[Keyword, ...]:
        """The reply's keywords (derived from the JSON form if it came as JSON)."""
        if self._keywords is None:
            self._keywords = json_to_keywords(self._values or {})
        return self._keywords

    @property
    def json(self) -> dict[str, Any]:
        """The reply as a JSON object (typed if known, else the untyped mapping)."""
        if self._values is None:
            self._values = keywords_to_json(self._keywords or ())
        return self._values

    @property
    def values(self) -> dict[str, Any] | None:
        """The JSON form if it was given or already derived, else None."""
        return self._values

    @property
    def is_terminal(self) -> bool:
        """True if this reply ends its command (:func:`bridge.protocol.is_terminal`)."""
        return self.code in TERMINAL_CODES

    @property
    def is_failure(self) -> bool:
        """True if this reply ends its command unsuccessfully (``is_failure``)."""
        return self.code in FAILURE_CODES


def error_keywords(message: str) -> tuple[Keyword, ...]:
    """The ``error="..."`` keyword clu and the bridge use to explain a failure."""
    return (Keyword("error", (message,), (True,)),)


def failure(sender: str, message: str, commander: str | None = None,
            command_id: str | int | None = None) -> Reply:
    """An ``f`` reply with an ``error`` keyword."""
    return Reply("f", sender, error_keywords(message), commander, command_id,
                 {"error": message})

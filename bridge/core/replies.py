"""The reply object the bridge carries between sides, whatever transport it came from."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..protocol import Keyword, is_failure, is_terminal, keywords_to_json


@dataclass(slots=True)
class Reply:
    """One reply of an actor.

    ``keywords`` is the line-protocol form; ``values`` is the JSON form when it is
    known better than the untyped mapping (typed by a keyword dictionary, or the
    body an AMQP actor sent). ``commander``/``command_id`` say which command it
    answers; both are None for a broadcast.
    """

    code: str
    sender: str
    keywords: tuple[Keyword, ...] = ()
    commander: str | None = None
    command_id: str | int | None = None
    values: dict[str, Any] | None = field(default=None, repr=False)

    @property
    def json(self) -> dict[str, Any]:
        """The reply's keywords as a JSON object (typed if known, else the untyped mapping)."""
        if self.values is None:
            self.values = keywords_to_json(self.keywords)
        return self.values

    @property
    def is_terminal(self) -> bool:
        """True if this reply ends its command."""
        return is_terminal(self.code)

    @property
    def is_failure(self) -> bool:
        """True if this reply ends its command unsuccessfully."""
        return is_failure(self.code)


def error_keywords(message: str) -> tuple[Keyword, ...]:
    """The ``error="..."`` keyword clu and the bridge use to explain a failure."""
    return (Keyword("error", (message,), (True,)),)


def failure(sender: str, message: str, commander: str | None = None,
            command_id: str | int | None = None) -> Reply:
    """An ``f`` reply with an ``error`` keyword."""
    return Reply("f", sender, error_keywords(message), commander, command_id,
                 {"error": message})

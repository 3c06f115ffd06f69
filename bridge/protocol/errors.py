"""The one exception type the protocol layer raises for malformed input."""

from __future__ import annotations


class ProtocolError(ValueError):
    """A line (or part of one) that does not follow the protocol.

    ``reason`` says what is wrong, ``position`` is the 0-based character offset in
    ``line`` where parsing stopped, ``line`` is the text that was being parsed.
    """

    def __init__(self, reason: str, line: str = "", position: int = 0) -> None:
        self.reason = reason
        self.line = line
        self.position = position
        super().__init__(f"{reason} (at column {position + 1})" if line else reason)

    def to_json(self) -> dict[str, object]:
        """The error as a JSON-able object (used by `bridge parse`)."""
        return {"reason": self.reason, "position": self.position}

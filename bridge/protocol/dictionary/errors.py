"""Exceptions of the keyword-dictionary layer."""

from __future__ import annotations


class DictionaryError(ValueError):
    """A dictionary file (or dict) that does not follow our format.

    ``source`` names the file (or ``<dict>``), ``where`` is the path of the
    problem inside it (``keys.AirTemp.values[0].type``), ``reason`` says what is wrong.
    """

    def __init__(self, reason: str, where: str = "", source: str = "<dict>") -> None:
        self.reason = reason
        self.where = where
        self.source = source
        location = f"{source}: {where}" if where else source
        super().__init__(f"{location}: {reason}")


class ConversionError(ValueError):
    """One value text (or one JSON value) that a value type does not accept."""

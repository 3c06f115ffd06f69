"""Reply codes of the opscore line protocol and which of them end a command."""

from __future__ import annotations

#: Every code character accepted on input, in either case (the TCC writes I, W, F).
REPLY_CODES = frozenset(">iwde:f!IWDE:F!")

#: Codes that end a command. ``!`` is terminal for opscore and clu clients (tron
#: does not treat it so; we follow the clients: see protocol_specs/line-formats.md).
TERMINAL_CODES = frozenset(":fF!")

#: Codes that end a command unsuccessfully.
FAILURE_CODES = frozenset("fF!")

STARTED = ">"
INFO = "i"
WARNING = "w"
DEBUG = "d"
ERROR = "e"
DONE = ":"
FAILED = "f"
FATAL = "!"


def is_terminal(code: str) -> bool:
    """True if ``code`` finishes the command it answers (``:``, ``f``/``F``, ``!``)."""
    return code in TERMINAL_CODES


def is_failure(code: str) -> bool:
    """True if ``code`` finishes the command unsuccessfully."""
    return code in FAILURE_CODES


def normalize(code: str) -> str:
    """The lower-case form of a code (``I`` -> ``i``); clu and AMQP use lower case."""
    return code.lower()

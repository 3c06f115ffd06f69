"""Small I/O helpers shared by sub-commands."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import TextIO


@contextlib.contextmanager
def open_input(path: str) -> Iterator[TextIO]:
    """Open ``path`` for reading text (``-`` is stdin); undecodable bytes become U+FFFD."""
    if path == "-":
        sys.stdin.reconfigure(errors="replace")  # type: ignore[union-attr]
        yield sys.stdin
    else:
        with open(path, encoding="utf-8", errors="replace") as f:
            yield f

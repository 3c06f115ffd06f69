"""Small I/O helpers shared by sub-commands."""

from __future__ import annotations

import contextlib
import ctypes
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


#: glibc's ``mallopt`` parameter M_TOP_PAD and the pad we ask for.
_M_TOP_PAD = -2
_TOP_PAD = 16 << 20


def keep_freed_memory() -> bool:
    """Ask glibc to keep up to 16 MiB of freed heap instead of returning it at once.

    A command that makes and drops many small objects per line (`bridge parse`)
    otherwise has the top of its heap given back to the system and faulted in again
    over and over: on the TCC log that was one page fault per line and a fifth of
    the command's CPU time. Returns False (and changes nothing) where the C library
    is not glibc.
    """
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(_M_TOP_PAD, _TOP_PAD))

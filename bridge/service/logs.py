"""Logging: the standard library for everything, Twisted's logger bridged into it."""

from __future__ import annotations

import logging
import logging.handlers
import sys
from pathlib import Path

FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


def setup_logging(level: str = "info", log_file: str | Path | None = None,
                  max_bytes: int = 10 * 1024 * 1024, backups: int = 5) -> None:
    """One line per event on stderr (and in a rotating file if ``log_file`` is given)."""
    numeric = getattr(logging, level.upper(), None)
    if not isinstance(numeric, int):
        raise ValueError(f"unknown log level {level!r}")
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_file is not None:
        handlers.append(logging.handlers.RotatingFileHandler(
            log_file, maxBytes=max_bytes, backupCount=backups, encoding="utf-8"))
    logging.basicConfig(level=numeric, format=FORMAT, handlers=handlers, force=True)
    for noisy in ("aiormq", "aio_pika", "pamqp"):
        logging.getLogger(noisy).setLevel(max(numeric, logging.WARNING))
    from twisted.logger import STDLibLogObserver, globalLogBeginner

    globalLogBeginner.beginLoggingTo([STDLibLogObserver(name="twisted")],
                                     discardBuffer=True, redirectStandardIO=False)

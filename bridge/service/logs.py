"""Logging: the standard library for everything, Twisted's logger bridged into it.

Log files rotate by size (``RotatingFileHandler``) or, as Tron's logs, by observing
night (:class:`NightFileHandler`): one file per night, named after the night's MJD.
:class:`Rotation` says which; the main log and the per-actor traffic logs
(:mod:`bridge.service.traffic`) use the same one.
"""

from __future__ import annotations

import logging
import logging.handlers
import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"

#: MJD of the Unix epoch (1970-01-01T00:00Z).
MJD_UNIX_EPOCH = 40587
ROTATIONS = ("size", "mjd")


def night_of(unix_time: float, mjd_offset: float) -> int:
    """The observing night a moment belongs to: ``floor(MJD + mjd_offset)``.

    With 0.3 (APO, SDSS's convention) the night changes at MJD fraction 0.7, 16:48 UTC,
    mid-morning at the observatory, as tron's ``hub_log`` rolls over.
    """
    return math.floor((unix_time + mjd_offset * 86400.0) / 86400.0) + MJD_UNIX_EPOCH


def night_start(night: int, mjd_offset: float) -> float:
    """The Unix time at which ``night`` begins (inverse of :func:`night_of`)."""
    return (night - MJD_UNIX_EPOCH) * 86400.0 - mjd_offset * 86400.0


@dataclass(frozen=True)
class Rotation:
    """How log files rotate: ``size`` (``max_bytes``, keep ``backups``) or ``mjd`` (one file
    per night, changing at MJD fraction ``1 - mjd_offset``; every night is kept)."""

    kind: str = "size"
    max_bytes: int = 10 * 1024 * 1024
    backups: int = 5
    mjd_offset: float = 0.3

    def handler(self, path: str | Path,
                clock: Callable[[], float] = time.time) -> logging.Handler:
        """A file handler writing ``path`` (for ``mjd``: ``<stem>-<night><suffix>``)."""
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        if self.kind == "mjd":
            return NightFileHandler(path, self.mjd_offset, clock=clock)
        return logging.handlers.RotatingFileHandler(
            path, maxBytes=self.max_bytes, backupCount=self.backups, encoding="utf-8")


class NightFileHandler(logging.handlers.BaseRotatingHandler):
    """One log file per observing night, as Tron's logs.

    The records of night ``N`` (:func:`night_of`) go to ``<stem>-N<suffix>`` beside
    ``path`` (``bridge.log`` -> ``bridge-60945.log``); the first record of a new night
    closes that file and opens the next. ``path`` itself becomes a symbolic link to the
    current night's file (Tron's ``current.log``), unless a regular file is in the way.
    ``clock`` gives the time (injectable for tests).
    """

    def __init__(self, path: str | Path, mjd_offset: float = 0.3, *,
                 clock: Callable[[], float] = time.time) -> None:
        self.link = Path(path)
        self.mjd_offset = mjd_offset
        self.clock = clock
        self.night = night_of(clock(), mjd_offset)
        super().__init__(str(self.file_for(self.night)), "a", encoding="utf-8", delay=False)
        self._link()

    def file_for(self, night: int) -> Path:
        """The file of ``night``."""
        return self.link.with_name(f"{self.link.stem}-{night}{self.link.suffix or '.log'}")

    def shouldRollover(self, record: logging.LogRecord) -> bool:  # noqa: N802 (logging API)
        return night_of(self.clock(), self.mjd_offset) != self.night

    def doRollover(self) -> None:  # noqa: N802 (logging API)
        if self.stream:
            self.stream.close()
            self.stream = None  # type: ignore[assignment]
        self.night = night_of(self.clock(), self.mjd_offset)
        self.baseFilename = os.path.abspath(self.file_for(self.night))
        self.stream = self._open()
        self._link()

    def _link(self) -> None:
        target = Path(self.baseFilename).name
        try:
            if self.link.is_symlink():
                self.link.unlink()
            elif self.link.exists():
                return  # a file of the size rotation: leave it alone
            self.link.symlink_to(target)
        except OSError:
            pass  # a convenience only


class SecondCachingFormatter(logging.Formatter):
    """A :class:`logging.Formatter` that formats ``asctime`` once per second.

    The standard formatter converts and ``strftime``-formats the time of every record;
    the bridge logs a line per relayed command, so this one keeps the formatted second
    and adds the milliseconds, giving exactly the standard text (a custom ``datefmt``
    falls back to the standard way)."""

    _second = -1
    _text = ""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        if datefmt:
            return super().formatTime(record, datefmt)
        second = int(record.created)
        if second != self._second:
            self._text = time.strftime(self.default_time_format, self.converter(second))
            self._second = second
        return self.default_msec_format % (self._text, record.msecs)


def setup_logging(level: str = "info", log_file: str | Path | None = None,
                  max_bytes: int = 10 * 1024 * 1024, backups: int = 5,
                  rotation: Rotation | None = None) -> None:
    """One line per event on stderr (and in a rotated file if ``log_file`` is given)."""
    numeric = getattr(logging, level.upper(), None)
    if not isinstance(numeric, int):
        raise ValueError(f"unknown log level {level!r}")
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_file is not None:
        rotation = rotation or Rotation("size", max_bytes, backups)
        handlers.append(rotation.handler(log_file))
    formatter = SecondCachingFormatter(FORMAT)
    for handler in handlers:
        handler.setFormatter(formatter)
    logging.basicConfig(level=numeric, handlers=handlers, force=True)
    # What FORMAT does not show is not gathered per record (the logging HOWTO's
    # "Optimization": no caller's frame look-up, thread, process names).
    logging._srcfile = None  # type: ignore[attr-defined]
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    for noisy in ("aiormq", "aio_pika", "pamqp"):
        logging.getLogger(noisy).setLevel(max(numeric, logging.WARNING))
    from twisted.logger import STDLibLogObserver, globalLogBeginner

    globalLogBeginner.beginLoggingTo([STDLibLogObserver(name="twisted")],
                                     discardBuffer=True, redirectStandardIO=False)

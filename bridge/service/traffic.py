"""Per-actor traffic logs, as Tron's nub logs: one file per actor under one directory.

Each line is a UTC timestamp and what crossed, marked by its direction:

* ``> <line>`` / ``< <line>``: a line the bridge sent to / read from a legacy actor's
  TCP port, exactly as on the wire (no line ending);
* ``amqp> <commander> <command id> <id sent on> <text>``: a command that entered on a
  side (``amqp``, ``legacy``, ``hub``) for the actor; ``amqp< ... <code> <keywords>`` each
  reply relayed back; ``amqp. ... <outcome> <seconds>`` its end;
* ``amqp* <code> <keywords>``: a broadcast of an AMQP actor (what its legacy clients see as
  unsolicited lines; replies to others' commands included).

Files rotate as the main log does (:class:`~bridge.service.logs.Rotation`): by size, or
one file per observing night.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

from .logs import Rotation


class _UtcFormatter(logging.Formatter):
    converter = time.gmtime

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802
        return time.strftime("%Y-%m-%dT%H:%M:%S", self.converter(record.created)) + \
            f".{int(record.msecs):03d}Z"


FORMATTER = _UtcFormatter("%(asctime)s %(message)s")


class TrafficLogs:
    """The traffic log files of one bridge (``directory/<actor>.log``).

    ``clock`` is the rotation's clock (injectable for tests).
    """

    def __init__(self, bridge_name: str, directory: str | Path, rotation: Rotation, *,
                 clock: Callable[[], float] = time.time) -> None:
        self.bridge_name = bridge_name
        self.directory = Path(directory)
        self.rotation = rotation
        self.clock = clock
        self._loggers: dict[str, logging.Logger] = {}

    def path(self, actor: str) -> Path:
        return self.directory / f"{actor}.log"

    def logger(self, actor: str) -> logging.Logger:
        """The logger of ``actor``'s file (made on first use; not propagated to the main log)."""
        logger = self._loggers.get(actor)
        if logger is None:
            logger = logging.getLogger(f"bridge.traffic.{self.bridge_name}.{actor}")
            logger.propagate = False
            logger.setLevel(logging.INFO)
            for old in list(logger.handlers):  # a previous bridge of the same name
                logger.removeHandler(old)
                old.close()
            handler = self.rotation.handler(self.path(actor), clock=self.clock)
            handler.setFormatter(FORMATTER)
            logger.addHandler(handler)
            self._loggers[actor] = logger
        return logger

    def sink(self, actor: str) -> Callable[[str], None]:
        """``write(text)``: one line in ``actor``'s traffic log."""
        info = self.logger(actor).info
        return lambda text: info("%s", text)

    def link_sink(self, actor: str) -> Callable[[str, str], None]:
        """``write(direction, line)`` for an :class:`~bridge.legacy.actor_link.ActorLink`."""
        info = self.logger(actor).info
        return lambda direction, line: info("%s %s", direction, line)

    def close(self) -> None:
        for logger in self._loggers.values():
            for handler in list(logger.handlers):
                logger.removeHandler(handler)
                handler.close()
        self._loggers.clear()
